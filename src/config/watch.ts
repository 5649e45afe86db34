/**
 * ConfigWatcher: keeps a ConfigSnapshot of a configuration directory (or files) current, and emits a
 * new snapshot when the valid configuration changes.
 *
 * Changes are noticed with fs.watch on every directory (for files named directly, on their
 * directories, so that editors that save by writing a new file and renaming it over the old one are
 * seen), and debounced (100 ms by default, at most 1 s while changes keep coming). Each rescan re-lists the paths
 * and re-reads only files whose size, mtime or inode changed.
 *
 * Bad input never takes served configuration away, because a half-edited file must not break proxies:
 * - a resource that becomes invalid keeps its last valid version (error WE0009 says so);
 * - a file that stops parsing as YAML, or cannot be read, keeps all its last valid resources (WE0010);
 * - a duplicate keeps the copy that was already served.
 * Only removing a document (or its file) removes a resource.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { resourceName } from '../api/istio/resource.ts';
import type { IstioResource } from '../api/istio/resource.ts';
import { Codes, codeOf } from './codes.ts';
import type { Diagnostic } from './diagnostic.ts';
import { resourceKey } from './document.ts';
import { listConfigFiles } from './files.ts';
import { loadText, readConfigFile } from './load.ts';
import type { LoadedFile, LoadOptions } from './load.ts';
import { ConfigSnapshot } from './store.ts';

export interface WatchOptions extends LoadOptions {
  /** Quiet time after the last change before rescanning (default 100 ms). */
  debounceMs?: number;
  /** Longest wait while changes keep arriving (default 1000 ms). */
  maxDelayMs?: number;
  /** Also rescan on this interval, for file systems where fs.watch misses events (default 0: off). */
  pollIntervalMs?: number;
}

interface WatcherEvents {
  /** A new snapshot, after the valid configuration changed. */
  snapshot: [snapshot: ConfigSnapshot, diagnostics: readonly Diagnostic[]];
  /** The diagnostics changed (they may change without the snapshot changing). */
  diagnostics: [diagnostics: readonly Diagnostic[]];
  /** A rescan failed unexpectedly; the last snapshot stays in force. Emitted only when listened for. */
  error: [error: Error];
}

interface CachedFile {
  signature: string;
  loaded: LoadedFile;
}

interface Served {
  resource: IstioResource;
  /** The file and document index it came from, to recognise it while its name is being edited. */
  file: string;
  index: number;
}

/** What one rescan decided: the entries to serve, in order, and what to say about them. */
interface Candidate extends Served {
  key: string;
}

function contentOf(r: IstioResource): string {
  return JSON.stringify([r.apiVersion, r.kind, r.metadata, r.spec]);
}

export class ConfigWatcher extends EventEmitter<WatcherEvents> {
  readonly #paths: readonly string[];
  readonly #options: WatchOptions;
  #snapshot: ConfigSnapshot = ConfigSnapshot.empty;
  #diagnostics: readonly Diagnostic[] = [];
  #cache = new Map<string, CachedFile>();
  #served = new Map<string, Served>();
  #watchers = new Map<string, { watcher: fs.FSWatcher; names: Set<string> | undefined }>();
  #watching = false;
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #pendingSince: number | undefined;
  #closed = false;

  constructor(paths: readonly string[], options: WatchOptions = {}) {
    super();
    this.#paths = [...paths];
    this.#options = options;
  }

  get snapshot(): ConfigSnapshot {
    return this.#snapshot;
  }

  get diagnostics(): readonly Diagnostic[] {
    return this.#diagnostics;
  }

  /** Loads the configuration and starts watching; returns the first snapshot (not emitted). */
  start(): ConfigSnapshot {
    this.#watching = true;
    this.rescan();
    const poll = this.#options.pollIntervalMs ?? 0;
    if (poll > 0) {
      this.#poll = setInterval(() => this.#safeRescan(), poll);
      this.#poll.unref();
    }
    return this.#snapshot;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    this.#watching = false;
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  /**
   * One non-recursive watcher per directory: Node's recursive mode on Linux tracks files by inode and
   * loses a file replaced by rename, which is how many editors save.
   */
  #syncWatchers(walkedDirs: readonly string[]): void {
    const wanted = new Map<string, Set<string> | undefined>(walkedDirs.map((d) => [d, undefined]));
    for (const p of this.#paths) {
      if (walkedDirs.includes(p)) continue;
      // A file (or a path that does not exist yet): watch its directory for that name.
      const dir = path.dirname(p);
      if (wanted.has(dir) && wanted.get(dir) === undefined) continue;
      const names = wanted.get(dir) ?? new Set<string>();
      names.add(path.basename(p));
      wanted.set(dir, names);
    }
    for (const [dir, entry] of this.#watchers)
      if (!wanted.has(dir)) {
        entry.watcher.close();
        this.#watchers.delete(dir);
      }
    for (const [dir, names] of wanted) {
      const existing = this.#watchers.get(dir);
      if (existing) {
        existing.names = names;
        continue;
      }
      let watcher: fs.FSWatcher;
      try {
        watcher = fs.watch(dir, { persistent: false }, (_event, filename) => {
          const only = this.#watchers.get(dir)?.names;
          if (only && filename !== null && !only.has(filename.toString())) return;
          this.#schedule();
        });
      } catch {
        continue; // gone already; the next rescan will not list it
      }
      watcher.on('error', () => {
        // The directory went away: forget it, and let a rescan decide what is left.
        watcher.close();
        this.#watchers.delete(dir);
        this.#schedule();
      });
      const entry = { watcher, names };
      this.#watchers.set(dir, entry);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    const now = Date.now();
    this.#pendingSince ??= now;
    const debounce = this.#options.debounceMs ?? 100;
    const maxDelay = this.#options.maxDelayMs ?? 1000;
    const wait = Math.max(0, Math.min(debounce, this.#pendingSince + maxDelay - now));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#pendingSince = undefined;
      this.#safeRescan();
    }, wait);
  }

  #safeRescan(): void {
    if (this.#closed) return;
    try {
      this.rescan();
    } catch (err) {
      // An 'error' event without a listener would throw from a timer and end the process.
      if (this.listenerCount('error') > 0)
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
  }

  #loadFile(file: string): LoadedFile {
    let signature: string | undefined;
    try {
      const st = fs.statSync(file);
      signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      signature = undefined;
    }
    const cached = this.#cache.get(file);
    if (cached && signature !== undefined && cached.signature === signature) return cached.loaded;
    const read = readConfigFile(file, this.#options);
    const loaded: LoadedFile =
      'diagnostic' in read
        ? { file, parsed: false, documents: [], diagnostics: [read.diagnostic] }
        : loadText(file, read.text, { ...this.#options, fieldLines: false });
    if ('stat' in read)
      this.#cache.set(file, { signature: `${read.stat.ino}:${read.stat.size}:${read.stat.mtimeMs}`, loaded });
    else this.#cache.delete(file);
    return loaded;
  }

  /** Re-reads the configuration now; returns true when it produced a new snapshot. */
  rescan(): boolean {
    const listed = listConfigFiles(this.#paths);
    if (this.#watching) this.#syncWatchers(listed.dirs);
    const diagnostics: Diagnostic[] = [...listed.diagnostics];
    const loadedFiles = listed.files.map((f) => this.#loadFile(f));
    for (const cachedFile of [...this.#cache.keys()])
      if (!listed.files.includes(cachedFile)) this.#cache.delete(cachedFile);

    const servedFromFile = (file: string): Served[] =>
      [...this.#served.values()].filter((s) => s.file === file);
    const candidates: Candidate[] = [];
    const keep = (key: string, s: Served): void => void candidates.push({ key, ...s });

    for (const f of loadedFiles) {
      diagnostics.push(...f.diagnostics);
      const previous = servedFromFile(f.file);
      if (!f.parsed && previous.length > 0) {
        for (const d of f.documents) diagnostics.push(...d.diagnostics);
        diagnostics.push({
          ...codeOf(Codes.KeptLastValidFile),
          message: `file cannot be read or parsed; serving its ${previous.length} last valid resource(s)`,
          file: f.file,
        });
        for (const s of previous)
          keep(resourceKey(s.resource.kind, s.resource.metadata.namespace, s.resource.metadata.name), s);
        continue;
      }
      for (const doc of f.documents) {
        diagnostics.push(...doc.diagnostics);
        if (doc.resource && doc.key) {
          keep(doc.key, { resource: doc.resource, file: f.file, index: doc.index });
          continue;
        }
        if (doc.skipped) continue;
        // An invalid document: serve what it last was, if anything.
        const last = doc.key ? this.#served.get(doc.key) : previous.find((s) => s.index === doc.index);
        if (!last) continue;
        const key = resourceKey(
          last.resource.kind,
          last.resource.metadata.namespace,
          last.resource.metadata.name,
        );
        keep(key, last);
        diagnostics.push({
          ...codeOf(Codes.KeptLastValidResource),
          message: `resource is invalid; serving its last valid version (${last.file}:${last.resource.source.line})`,
          file: f.file,
          line: doc.line,
          resource: resourceName(last.resource),
        });
      }
    }

    // Duplicates: the copy served before wins, otherwise the first in file order.
    const chosen = new Map<string, Candidate>();
    for (const c of candidates) {
      const current = chosen.get(c.key);
      if (!current) {
        chosen.set(c.key, c);
        continue;
      }
      if (current.resource === c.resource) continue; // kept twice: by its key and by its position
      const servedBefore = this.#served.get(c.key);
      const winner =
        servedBefore && servedBefore.file === c.file && servedBefore.file !== current.file ? c : current;
      const loser = winner === c ? current : c;
      chosen.set(c.key, winner);
      diagnostics.push({
        ...codeOf(Codes.DuplicateResource),
        message: `duplicate of the resource at ${winner.file}:${winner.resource.source.line}; this one is ignored`,
        file: loser.file,
        line: loser.resource.source.line,
        resource: resourceName(loser.resource),
      });
    }

    const next = [...chosen.values()];
    const changed =
      next.length !== this.#served.size ||
      next.some((c) => {
        const before = this.#served.get(c.key);
        return (
          !before || (before.resource !== c.resource && contentOf(before.resource) !== contentOf(c.resource))
        );
      });
    this.#served = new Map(next.map((c) => [c.key, { resource: c.resource, file: c.file, index: c.index }]));
    const diagnosticsChanged = JSON.stringify(diagnostics) !== JSON.stringify(this.#diagnostics);
    this.#diagnostics = diagnostics;
    if (changed || this.#snapshot.version === 0) {
      this.#snapshot = new ConfigSnapshot(
        next.map((c) => c.resource),
        this.#snapshot.version + 1,
      );
      if (this.#snapshot.version > 1) this.emit('snapshot', this.#snapshot, diagnostics);
    }
    if (diagnosticsChanged) this.emit('diagnostics', diagnostics);
    return changed;
  }
}
