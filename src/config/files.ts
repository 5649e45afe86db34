/** Which files a list of paths (files or directories) names as configuration. */
import fs from 'node:fs';
import path from 'node:path';
import { Codes, codeOf } from './codes.ts';
import type { Diagnostic } from './diagnostic.ts';

/** Extensions read from directories; a file named explicitly is read whatever its name. */
export const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** `weft up`'s mesh description sits beside the Istio resources of its directory but is not one of them. */
const MESH_DESCRIPTION_FILES = new Set(['weft.yaml', 'weft.yml']);

export function isConfigFileName(name: string): boolean {
  // Hidden files are editors' swap and backup files (.#x.yaml, .x.yaml.swp) or tools' state.
  return (
    !name.startsWith('.') &&
    !MESH_DESCRIPTION_FILES.has(name) &&
    CONFIG_EXTENSIONS.includes(path.extname(name).toLowerCase())
  );
}

/**
 * The configuration files under `paths`, in a stable order: each path in the order given, directories
 * walked recursively in name order (hidden entries skipped, symlinks followed once).
 */
export function listConfigFiles(paths: readonly string[]): {
  files: string[];
  /** The directories walked (to watch them). */
  dirs: string[];
  diagnostics: Diagnostic[];
} {
  const files: string[] = [];
  const dirs: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  const addFile = (file: string): void => {
    const key = path.resolve(file);
    if (seenFiles.has(key)) return;
    seenFiles.add(key);
    files.push(file);
  };
  const walk = (dir: string): void => {
    let real: string;
    let entries: fs.Dirent[];
    try {
      real = fs.realpathSync(dir);
      if (seenDirs.has(real)) return;
      seenDirs.add(real);
      entries = fs.readdirSync(dir, { withFileTypes: true });
      dirs.push(dir);
    } catch (err) {
      diagnostics.push(unreadable(dir, err));
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      // node_modules holds packages' own JSON and YAML, never the mesh's configuration.
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const st = fs.statSync(full);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue; // a dangling link is not configuration
        }
      }
      if (isDir) walk(full);
      else if (isFile && isConfigFileName(entry.name)) addFile(full);
    }
  };
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (err) {
      diagnostics.push(unreadable(p, err));
      continue;
    }
    if (st.isDirectory()) walk(p);
    else addFile(p);
  }
  return { files, dirs, diagnostics };
}

export function unreadable(file: string, err: unknown): Diagnostic {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === 'ENOENT' ? 'no such file or directory' : code ? `${code}` : String(err);
  return { ...codeOf(Codes.FileUnreadable), message: `cannot read: ${reason}`, file };
}
