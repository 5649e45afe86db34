/** DIR/.weft/run.json: what `weft up` is running, for `weft status`, `weft logs` and `weft down`. */
import fs from 'node:fs';
import path from 'node:path';

export type InstanceState = 'starting' | 'ready' | 'crashed' | 'restarting' | 'stopped';

export interface RunInstance {
  workload: string;
  instance: string;
  namespace: string;
  ip: string;
  appPid?: number;
  sidecarPid?: number;
  admin: number;
  outbound: number;
  ports: { service: number; private: number }[];
  state: InstanceState;
  restarts: number;
  appLog: string;
  sidecarLog: string;
  /** Transparent mode: the app's network namespace and its address there. */
  netns?: string;
  appIp?: string;
}

export interface RunState {
  /** The `weft up` supervisor. */
  pid: number;
  mesh: string;
  dir: string;
  startedAt: string;
  stoppedAt?: string;
  /** The supervisor's control socket (`weft restart` talks to it). */
  control?: string;
  controlPlane: { pid?: number; xdsPort: number; debugPort: number; dashboardPort: number; log: string };
  gateway?: { pid?: number; ports: number[]; admin: number; log: string };
  instances: RunInstance[];
  /** Transparent mode: the run's network namespaces and iptables chain (netns.ts), removed by weft down. */
  network?: { runId: string; subnet: string };
}

/** Written whole and renamed into place, so readers never see half a file. */
export function writeRunState(file: string, state: RunState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export function readRunState(dir: string): RunState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, '.weft', 'run.json'), 'utf8')) as RunState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path.join(dir, '.weft', 'run.json')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
