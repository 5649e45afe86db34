/**
 * `weft control-plane --mesh-config FILE`: Istio's MeshConfig as YAML (the `mesh` value of Istio's ConfigMap),
 * read once at start. A file that does not load stops the start with every problem, each naming the file,
 * the line where YAML knows it, and the field.
 */
import fs from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { validateMeshConfig } from '../../api/istio/mesh-config.ts';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';

export class MeshConfigError extends Error {
  readonly problems: readonly string[];

  constructor(file: string, problems: readonly string[]) {
    super(`mesh config ${file} is invalid:\n  ${problems.join('\n  ')}`);
    this.name = 'MeshConfigError';
    this.problems = problems;
  }
}

/** `a.b[2].c` → the line of that node in the document, or of its nearest ancestor there (a missing field). */
function lineOf(doc: Document, lines: LineCounter, field: string): number | undefined {
  const segments = field.match(/[^.[\]]+/g) ?? [];
  let node: unknown = doc.contents;
  let found = node;
  for (const s of segments) {
    if (isMap(node)) node = node.get(s, true);
    else if (isSeq(node)) node = node.get(Number(s), true);
    else break;
    if (node === undefined) break;
    found = node;
  }
  const range = (found as { range?: [number, number, number] } | undefined)?.range;
  return range ? lines.linePos(range[0]).line : undefined;
}

/** Parses and validates MeshConfig text; throws MeshConfigError listing every problem. */
export function parseMeshConfig(file: string, text: string): MeshConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0)
    throw new MeshConfigError(
      file,
      doc.errors.map((e) => `${file}:${lines.linePos(e.pos[0]).line}: YAML: ${e.message.split('\n')[0]}`),
    );
  // The ConfigMap form (`mesh: |` holding the YAML) is read too: the same file istioctl users have.
  let value: unknown = doc.toJS();
  if (typeof value === 'object' && value !== null && 'mesh' in value && typeof value.mesh === 'string')
    return parseMeshConfig(`${file} (mesh)`, (value as { mesh: string }).mesh);
  if (value === null) value = {};
  const { config, problems } = validateMeshConfig(value);
  if (!config)
    throw new MeshConfigError(
      file,
      problems.map((p) => {
        const line = lineOf(doc, lines, p.field);
        return `${file}${line === undefined ? '' : `:${line}`}: ${p.field || '(top level)'}: ${p.message}`;
      }),
    );
  return config;
}

export function loadMeshConfigFile(file: string): MeshConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeshConfigError(file, [`${file}: cannot read: ${(err as Error).message}`]);
  }
  return parseMeshConfig(file, text);
}
