/**
 * Auto-registered workloads kept across control-plane restarts: a JSON file in the state dir, rewritten
 * (write, then rename) shortly after registrations change. A file that does not parse is ignored — the
 * proxies re-register as they reconnect, as they would without it.
 */
import fs from 'node:fs';
import type { Workload } from './types.ts';

export const REGISTRATIONS_FILE = 'registrations.json';

interface Entry {
  readonly id: string;
  readonly workload: Workload;
}

function isWorkload(v: unknown): v is Workload {
  if (typeof v !== 'object' || v === null) return false;
  const w = v as Record<string, unknown>;
  return (
    typeof w.name === 'string' &&
    typeof w.namespace === 'string' &&
    typeof w.address === 'string' &&
    typeof w.serviceAccount === 'string' &&
    typeof w.weight === 'number' &&
    typeof w.healthy === 'boolean' &&
    typeof w.origin === 'string' &&
    typeof w.labels === 'object' &&
    w.labels !== null &&
    typeof w.ports === 'object' &&
    w.ports !== null &&
    typeof w.locality === 'object' &&
    w.locality !== null
  );
}

/** The entries of `file`; [] when it is missing or not a registrations file (`onError` says why). */
export function loadRegistrations(file: string, onError: (message: string) => void): Entry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      onError(`cannot read ${file}: ${(err as Error).message}`);
    return [];
  }
  try {
    const parsed: unknown = JSON.parse(text);
    const list = (parsed as { registrations?: unknown }).registrations;
    if (!Array.isArray(list)) throw new Error('no "registrations" list');
    return list.filter(
      (e): e is Entry =>
        typeof e === 'object' &&
        e !== null &&
        typeof (e as Entry).id === 'string' &&
        isWorkload((e as Entry).workload),
    );
  } catch (err) {
    onError(`ignoring ${file}: ${(err as Error).message}`);
    return [];
  }
}

export function saveRegistrations(file: string, entries: readonly Entry[]): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ registrations: entries }) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}
