/**
 * ConfigWatcher: keeps a ConfigSnapshot of a configuration directory (or files) current, and emits a
 * new snapshot when the valid configuration changes.
 *
 * Changes are noticed with fs.watch on every directory (for files named directly, on their
 * directories, so that editors that save by writing a new file and renaming it over the old one are
 * seen), and debounced (100 ms by default, at most 1 s while changes keep coming). A rescan after events that
 * name existing files re-reads just those (when their size, mtime or inode changed); anything else (a file
 * added or removed, an event without a name, polling, rescan()) re-lists the paths and re-checks every file.
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
import { isConfigFileName, listConfigFiles } from './files.ts';
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

interface FileResult {
  loaded: LoadedFile;
  candidates: Candidate[];
  diagnostics: Diagnostic[];
}

/** The config files of one full listing, in order, with the directories walked. */
interface Listing {
  files: string[];
  set: Set<string>;
  dirs: string[];
  diagnostics: Diagnostic[];
}

function contentOf(r: IstioResource): string {
  return JSON.stringify([r.apiVersion, r.kind, r.metadata, r.spec, r.conditions]);
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
  /** The config files listed by the last full listing, in order, and the directories walked. */
  #listed: Listing | undefined;
  /**
   * Paths fs.watch named since the last rescan; 'all' when it could not say (a null file name, a
   * directory event, polling), which means re-listing and re-statting everything.
   */
  #dirty: Set<string> | 'all' = 'all';
  #filesRead = 0;
  #perFile = new Map<string, FileResult>();
  #duplicateDiagnostics: Diagnostic[] = [];

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

  /** How many times a file has been read and parsed (the cost of keeping up). */
  get filesRead(): number {
    return this.#filesRead;
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
          const name = filename?.toString() ?? null;
          if (only && name !== null && !only.has(name)) return;
          this.#markDirty(name === null ? null : path.join(dir, name), only !== undefined);
          this.#schedule();
        });
      } catch {
        continue; // gone already; the next rescan will not list it
      }
      watcher.on('error', () => {
        // The directory went away: forget it, and let a rescan decide what is left.
        watcher.close();
        this.#watchers.delete(dir);
        this.#dirty = 'all';
        this.#schedule();
      });
      const entry = { watcher, names };
      this.#watchers.set(dir, entry);
    }
  }

  /**
   * Remembers what changed, so a rescan re-reads only that: with tens of thousands of files, statting
   * and re-listing all of them on every edit costs seconds. A name that is not a config file name (a new
   * subdirectory, say) falls back to a full rescan, as does an event without a name.
   */
  #markDirty(file: string | null, named: boolean): void {
    if (this.#dirty === 'all') return;
    if (file === null || (!named && !isConfigFileName(path.basename(file)))) {
      if (file !== null && path.basename(file).startsWith('.')) return; // editors' swap files
      this.#dirty = 'all';
      return;
    }
    this.#dirty.add(file);
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
      this.#rescan(false);
    } catch (err) {
      // An 'error' event without a listener would throw from a timer and end the process.
      if (this.listenerCount('error') > 0)
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
  }

  #loadFile(file: string, recheck: boolean): LoadedFile {
    if (!recheck) {
      const cached = this.#cache.get(file);
      if (cached) return cached.loaded;
    }
    let signature: string | undefined;
    try {
      const st = fs.statSync(file);
      signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      signature = undefined;
    }
    const cached = this.#cache.get(file);
    if (cached && signature !== undefined && cached.signature === signature) return cached.loaded;
    this.#filesRead++;
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

  /** Re-reads the whole configuration now; returns true when it produced a new snapshot. */
  rescan(): boolean {
    return this.#rescan(true);
  }

  /**
   * The list of files is kept from the last full listing while every changed path is an existing,
   * already listed file (the common edit); anything else (a file added, removed or renamed) lists again.
   */
  #currentListing(dirty: ReadonlySet<string> | 'all'): Listing {
    if (dirty !== 'all' && this.#listed) {
      const listed = this.#listed;
      const stillListed = [...dirty].every((f) => {
        if (!listed.set.has(f)) return false;
        try {
          return fs.statSync(f).isFile();
        } catch {
          return false;
        }
      });
      if (stillListed) return listed;
    }
    const fresh = listConfigFiles(this.#paths);
    this.#listed = { ...fresh, set: new Set(fresh.files) };
    return this.#listed;
  }

  #rescan(full: boolean): boolean {
    const dirty = full ? 'all' : this.#dirty;
    this.#dirty = new Set();
    const listing = this.#listed;
    const listed = this.#currentListing(dirty);
    if (this.#watching) this.#syncWatchers(listed.dirs);
    if (dirty !== 'all' && listed === listing && this.#rescanEdited(dirty)) return this.#lastChanged;
    return this.#rescanAll(listed, dirty);
  }

  #lastChanged = false;

  /** What one file contributes: the entries it asks to serve, in order, and what to say about it. */
  #fileResult(f: LoadedFile, servedFromFile: (file: string) => readonly Served[]): FileResult {
    const candidates: Candidate[] = [];
    const diagnostics: Diagnostic[] = [...f.diagnostics];
    const keep = (key: string, s: Served): void => void candidates.push({ key, ...s });
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
      return { loaded: f, candidates, diagnostics };
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
    return { loaded: f, candidates, diagnostics };
  }

  /**
   * The common edit — existing files changed, the same resources in them, none of them involved in a
   * duplicate — touches only those files' entries: with tens of thousands of files, going over all of
   * them for every edit would cost tens of milliseconds. Returns false when the edit needs the full pass.
   */
  #rescanEdited(dirty: ReadonlySet<string>): boolean {
    const results = new Map<string, FileResult>();
    for (const file of dirty) {
      const before = this.#perFile.get(file);
      if (!before) return false;
      const loaded = this.#loadFile(file, true);
      if (loaded === before.loaded) continue;
      const result = this.#fileResult(loaded, (f) => before.candidates.filter((c) => c.file === f));
      const keys = new Set<string>();
      for (const c of result.candidates) {
        if (keys.has(c.key)) return false;
        keys.add(c.key);
      }
      if (keys.size !== before.candidates.length) return false;
      for (const c of before.candidates) {
        if (!keys.has(c.key) || this.#served.get(c.key)?.file !== file) return false;
      }
      results.set(file, result);
    }
    const replaced = new Map<string, IstioResource>();
    let diagnosticsChanged = false;
    for (const [file, result] of results) {
      const before = this.#perFile.get(file);
      if (JSON.stringify(before?.diagnostics) !== JSON.stringify(result.diagnostics))
        diagnosticsChanged = true;
      this.#perFile.set(file, result);
      for (const c of result.candidates) {
        const served = this.#served.get(c.key);
        if (served && served.resource !== c.resource && contentOf(served.resource) !== contentOf(c.resource))
          replaced.set(c.key, c.resource);
        this.#served.set(c.key, { resource: c.resource, file: c.file, index: c.index });
      }
    }
    if (diagnosticsChanged) this.#diagnostics = this.#collectDiagnostics();
    this.#lastChanged = replaced.size > 0;
    if (this.#lastChanged) {
      this.#snapshot = this.#snapshot.replacing(replaced, this.#snapshot.version + 1);
      this.emit('snapshot', this.#snapshot, this.#diagnostics);
    }
    if (diagnosticsChanged) this.emit('diagnostics', this.#diagnostics);
    return true;
  }

  #collectDiagnostics(): Diagnostic[] {
    const listed = this.#listed;
    const all: Diagnostic[] = [...(listed?.diagnostics ?? [])];
    for (const file of listed?.files ?? []) {
      const r = this.#perFile.get(file);
      if (r) for (const d of r.diagnostics) all.push(d);
    }
    all.push(...this.#duplicateDiagnostics);
    return all;
  }

  #rescanAll(listed: Listing, dirty: ReadonlySet<string> | 'all'): boolean {
    const loadedFiles = listed.files.map((f) => this.#loadFile(f, dirty === 'all' || dirty.has(f)));
    for (const cachedFile of [...this.#cache.keys()])
      if (!listed.set.has(cachedFile)) this.#cache.delete(cachedFile);

    const servedByFile = new Map<string, Served[]>();
    for (const s of this.#served.values()) {
      const list = servedByFile.get(s.file);
      if (list) list.push(s);
      else servedByFile.set(s.file, [s]);
    }
    const perFile = new Map<string, FileResult>();
    const candidates: Candidate[] = [];
    for (const f of loadedFiles) {
      const result = this.#fileResult(f, (file) => servedByFile.get(file) ?? []);
      perFile.set(f.file, result);
      for (const c of result.candidates) candidates.push(c);
    }

    // Duplicates: the copy served before wins, otherwise the first in file order.
    const duplicates: Diagnostic[] = [];
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
      duplicates.push({
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
    this.#perFile = perFile;
    this.#duplicateDiagnostics = duplicates;
    const diagnostics = this.#collectDiagnostics();
    const diagnosticsChanged = JSON.stringify(diagnostics) !== JSON.stringify(this.#diagnostics);
    this.#diagnostics = diagnostics;
    this.#lastChanged = changed;
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
