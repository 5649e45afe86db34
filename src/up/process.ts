/**
 * A child process of `weft up`: its own process group (so the terminal's Ctrl-C reaches only the supervisor,
 * which then stops everything in order, and a shell command's children stop with it), output appended to a
 * log file, and stop = SIGTERM then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The process could not be started. */
  readonly error?: string;
}

export function describeExit(e: Exit): string {
  if (e.error !== undefined) return e.error;
  if (e.signal !== null) return `killed by ${e.signal}`;
  return `exited with code ${e.code}`;
}

/** Every live child, killed (SIGKILL) if the supervisor itself exits without stopping them. */
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;

  constructor(
    file: string,
    args: readonly string[],
    o: { cwd?: string; env?: NodeJS.ProcessEnv; log: string },
  ) {
    const fd = fs.openSync(o.log, 'a');
    try {
      this.child = spawn(file, args, {
        cwd: o.cwd,
        env: o.env ?? process.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    this.pid = this.child.pid ?? 0;
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('error', (err: NodeJS.ErrnoException) => {
        // Only a failed spawn leaves no pid; other errors (a failed kill) change nothing.
        if (this.child.pid === undefined)
          resolve({ code: null, signal: null, error: `cannot run ${file}: ${err.code ?? err.message}` });
      });
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    }).then((e) => {
      this.#exit = e;
      live.delete(this);
      return e;
    });
    if (this.pid !== 0) live.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const p of live) p.signal('SIGKILL');
      });
    }
  }

  get exit(): Exit | undefined {
    return this.#exit;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.pid === 0 || this.#exit) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL to the whole group if it is still running after `graceMs`. */
  async stop(graceMs: number): Promise<Exit> {
    if (this.#exit) return this.#exit;
    this.signal('SIGTERM');
    const timer = sleep(graceMs, 'timeout' as const);
    if ((await Promise.race([this.exited, timer])) === 'timeout') this.signal('SIGKILL');
    return this.exited;
  }
}

const BIN_WEFT = fileURLToPath(new URL('../../bin/weft.js', import.meta.url));

/** The Node flags in bin/weft.js's shebang (heap limits), so children run exactly as `weft ...` does. */
function launcherFlags(): string[] {
  const first = fs.readFileSync(BIN_WEFT, 'utf8').split('\n')[0];
  return first.split(/\s+/).filter((w) => w.startsWith('--'));
}

/** `weft ARGS...` as a managed child, with this Node binary. */
export function spawnWeft(args: readonly string[], log: string): ManagedProcess {
  return new ManagedProcess(process.execPath, [...launcherFlags(), BIN_WEFT, ...args], { log });
}

/** Starts the line weft up writes into an app's log before each (re)start. */
export const RUN_MARK = '--- weft up: ';

/** The last `lines` lines of a log file (its last 8 KB), for failure reports. */
export function logTail(file: string, lines = 8): string[] {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 8192);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const all = buf.toString('utf8').split('\n');
    // Only the last run's output: weft up marks each (re)start of an app in its log.
    const mark = all.findLastIndex((l) => l.startsWith(RUN_MARK));
    return all
      .slice(mark + 1)
      .filter((l) => l.trim() !== '')
      .slice(-lines);
  } catch {
    return [];
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** GET http://host:port/path answers 2xx or 3xx (Kubernetes' httpGet probe rule). */
export function httpReady(port: number, path: string, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The body of GET http://127.0.0.1:port/path, or '' when it fails (a sidecar's admin page). */
export function adminText(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
      res.on('error', () => resolve(''));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
  });
}

export function tcpReady(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host, timeout: 1000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => s.destroy());
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
  });
}
