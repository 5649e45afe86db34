/**
 * Loading configuration: files or directories of YAML (multi-document) or JSON → Istio resources plus
 * diagnostics. Bad input never throws: an unreadable file, broken YAML, a document that is not a
 * resource, an invalid resource — each becomes a diagnostic, and the resource it concerns is left out
 * without affecting the others.
 */
import fs from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { resourceName } from '../api/istio/resource.ts';
import type { IstioResource } from '../api/istio/resource.ts';
import { Codes, codeOf } from './codes.ts';
import type { Diagnostic, PathSegment } from './diagnostic.ts';
import { checkDocument } from './document.ts';
import type { DocumentOutcome } from './document.ts';
import { listConfigFiles, unreadable } from './files.ts';
import { setFieldLocator } from './locations.ts';

export interface LoadOptions {
  /** Larger files are refused with a diagnostic (default 8 MiB): a config file is never that big, and parsing one costs memory. */
  maxFileBytes?: number;
  /** Cluster domain for short host names (default cluster.local). */
  domainSuffix?: string;
  /** Remember each field's line for later diagnostics (lineOfField); keeps syntax trees alive. Default true. */
  fieldLines?: boolean;
}

export const DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024;
/** YAML aliases allowed per document: enough for real files, too few for an alias "billion laughs" bomb. */
const MAX_ALIAS_COUNT = 100;

export interface LoadedDocument extends DocumentOutcome {
  /** Position of the document in its file, from 0. */
  index: number;
  line: number;
}

export interface LoadedFile {
  file: string;
  /** Read and parsed as YAML without syntax errors (the documents may still be invalid resources). */
  parsed: boolean;
  documents: LoadedDocument[];
  /** Problems with the file as a whole (unreadable, too large, not parseable at all). */
  diagnostics: Diagnostic[];
}

export interface LoadResult {
  resources: IstioResource[];
  diagnostics: Diagnostic[];
}

/** Offset of the node at `path` in the document, or of the deepest existing parent. */
function offsetOf(doc: Document, path: readonly PathSegment[]): number | undefined {
  let node: unknown = doc.contents;
  let best = isMap(node) || isSeq(node) || isScalar(node) ? node.range?.[0] : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      if (isScalar(pair.key) && pair.key.range) best = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (!(isMap(item) || isSeq(item) || isScalar(item))) break;
      if (item.range) best = item.range[0];
      node = item;
    } else break;
  }
  return best;
}

function describeError(err: unknown): string {
  if (err instanceof RangeError) return 'too deeply nested to parse';
  return err instanceof Error ? err.message : String(err);
}

/** Parses and checks the text of one file. */
export function loadText(file: string, text: string, options: LoadOptions = {}): LoadedFile {
  const result: LoadedFile = { file, parsed: true, documents: [], diagnostics: [] };
  const lineCounter = new LineCounter();
  let docs: Document[];
  try {
    const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch (err) {
    result.parsed = false;
    result.diagnostics.push({ ...codeOf(Codes.YamlSyntax), message: describeError(err), file });
    return result;
  }
  const lineAt = (offset: number | undefined): number =>
    offset === undefined ? 1 : lineCounter.linePos(offset).line;
  docs.forEach((doc, index) => {
    const start = doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0;
    const { line, col } = lineCounter.linePos(start);
    if (doc.errors.length > 0) {
      result.parsed = false;
      result.documents.push({
        index,
        line,
        diagnostics: doc.errors.map((e) => ({
          ...codeOf(Codes.YamlSyntax),
          message: e.message.split('\n')[0],
          file,
          line: e.linePos?.[0].line ?? line,
        })),
      });
      return;
    }
    if (doc.contents === null) return; // an empty document, e.g. after a trailing ---
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      result.parsed = false;
      result.documents.push({
        index,
        line,
        diagnostics: [{ ...codeOf(Codes.YamlSyntax), message: describeError(err), file, line }],
      });
      return;
    }
    if (value === null || value === undefined) return; // only comments
    let outcome: DocumentOutcome;
    try {
      outcome = checkDocument(value, {
        source: { file, line, column: col },
        lineOf: (path) => lineAt(offsetOf(doc, path) ?? start),
        domainSuffix: options.domainSuffix,
      });
    } catch (err) {
      // Checks are written not to throw; pathological input (say, nesting deep enough to exhaust the
      // stack in the validator) must still not take the loader down.
      outcome = { diagnostics: [{ ...codeOf(Codes.NotAResource), message: describeError(err), file, line }] };
    }
    if (outcome.resource && options.fieldLines !== false)
      setFieldLocator(outcome.resource, (path) => lineAt(offsetOf(doc, path) ?? start));
    result.documents.push({ index, line, ...outcome });
  });
  return result;
}

export type ReadOutcome = { text: string; stat: fs.Stats } | { diagnostic: Diagnostic; missing: boolean };

/** Reads a file's text, refusing files over the size limit. */
export function readConfigFile(file: string, options: LoadOptions = {}): ReadOutcome {
  const max = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  try {
    const stat = fs.statSync(file);
    if (stat.size > max)
      return {
        missing: false,
        diagnostic: {
          ...codeOf(Codes.FileUnreadable),
          message: `file is ${stat.size} bytes, more than the limit of ${max}`,
          file,
        },
      };
    return { text: fs.readFileSync(file, 'utf8'), stat };
  } catch (err) {
    return { diagnostic: unreadable(file, err), missing: (err as NodeJS.ErrnoException).code === 'ENOENT' };
  }
}

/** Reads and checks one file. */
export function loadFile(file: string, options: LoadOptions = {}): LoadedFile {
  const read = readConfigFile(file, options);
  if ('diagnostic' in read) return { file, parsed: false, documents: [], diagnostics: [read.diagnostic] };
  return loadText(file, read.text, options);
}

/**
 * Gathers the resources of several files, in order. A resource whose kind, namespace and name were
 * already seen is a duplicate: it is left out with an error, and the first one stays.
 */
export function combineFiles(files: readonly LoadedFile[]): LoadResult {
  const resources: IstioResource[] = [];
  const diagnostics: Diagnostic[] = [];
  const firstSeen = new Map<string, IstioResource>();
  for (const f of files) {
    diagnostics.push(...f.diagnostics);
    for (const doc of f.documents) {
      diagnostics.push(...doc.diagnostics);
      if (!doc.resource || !doc.key) continue;
      const first = firstSeen.get(doc.key);
      if (first) {
        diagnostics.push({
          ...codeOf(Codes.DuplicateResource),
          message: `duplicate of the resource at ${first.source.file}:${first.source.line}; this one is ignored`,
          file: f.file,
          line: doc.line,
          resource: resourceName(doc.resource),
        });
        continue;
      }
      firstSeen.set(doc.key, doc.resource);
      resources.push(doc.resource);
    }
  }
  return { resources, diagnostics };
}

/** Loads files and directories (recursively: *.yaml, *.yml, *.json) into valid resources and diagnostics. */
export function loadConfig(paths: readonly string[], options: LoadOptions = {}): LoadResult {
  const listed = listConfigFiles(paths);
  const combined = combineFiles(listed.files.map((f) => loadFile(f, options)));
  return { resources: combined.resources, diagnostics: [...listed.diagnostics, ...combined.diagnostics] };
}
