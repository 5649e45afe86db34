// Starting, watching and reliably ending the benchmark's processes, plus small loopback helpers.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SpawnOptions {
  /** Send stdout and stderr to this file (long-running servers); otherwise they are captured in memory. */
  readonly logFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Asked first when stopping, before any signal (e.g. an admin "quit" that lets a profiler write its file). */
  readonly gracefulStop?: () => Promise<void>;
}

const CAPTURE_LIMIT = 1 << 20;

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string | undefined;
  readonly exited: Promise<void>;
  readonly gracefulStop: (() => Promise<void>) | undefined;
  readonly child: ChildProcess;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  #done = false;
  #stdout = '';
  #stderr = '';

  constructor(
    name: string,
    child: ChildProcess,
    logFile: string | undefined,
    gracefulStop?: () => Promise<void>,
  ) {
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    this.name = name;
    this.pid = child.pid;
    this.child = child;
    this.logFile = logFile;
    this.gracefulStop = gracefulStop;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.#stdout.length < CAPTURE_LIMIT) this.#stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.#stderr.length < CAPTURE_LIMIT) this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.#done = true;
        resolve();
      });
    });
  }

  get hasExited(): boolean {
    return this.#done;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** The last lines of what the process printed, for error messages. */
  outputTail(maxChars = 2000): string {
    let text = this.#stdout + this.#stderr;
    if (this.logFile !== undefined) {
      try {
        text = readFileSync(this.logFile, 'utf8');
      } catch {
        text = '';
      }
    }
    return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
  }

  describeExit(): string {
    return this.exitSignal !== null ? `signal ${this.exitSignal}` : `exit code ${String(this.exitCode)}`;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

async function exitedWithin(proc: ManagedProcess, ms: number): Promise<boolean> {
  if (proc.hasExited) return true;
  // The timer is cancelled once the race is decided, so a pending wait never holds the event loop open.
  const cancel = new AbortController();
  try {
    return await Promise.race([proc.exited.then(() => true), sleep(ms, false, { signal: cancel.signal })]);
  } finally {
    cancel.abort();
  }
}

/**
 * Every process the benchmark starts, each in its own process group (detached), so that stopping one
 * also ends whatever it forked (nginx workers, a proxy's helpers).
 */
export class ProcessGroup {
  readonly #procs: ManagedProcess[] = [];

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): ManagedProcess {
    let fd: number | undefined;
    if (options.logFile !== undefined) fd = openSync(options.logFile, 'w');
    try {
      const child = spawn(command, args, {
        detached: true,
        stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
        env: options.env ?? process.env,
        cwd: options.cwd,
      });
      // A failed exec reports through 'error' and then 'close'; the listener keeps it from being thrown.
      child.on('error', () => {});
      const proc = new ManagedProcess(name, child, options.logFile, options.gracefulStop);
      this.#procs.push(proc);
      return proc;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Graceful hook, then SIGTERM, then SIGKILL; each step bounded in time. */
  async stop(proc: ManagedProcess, graceMs = 5000): Promise<void> {
    if (!proc.hasExited && proc.gracefulStop) {
      try {
        await proc.gracefulStop();
      } catch {
        // Fall through to signals.
      }
      await exitedWithin(proc, graceMs);
    }
    if (!proc.hasExited) {
      killGroup(proc.pid, 'SIGTERM');
      await exitedWithin(proc, graceMs);
    }
    // Also after a clean exit of the leader: its children may outlive it.
    killGroup(proc.pid, 'SIGKILL');
    await exitedWithin(proc, 2000);
  }

  async stopAll(): Promise<void> {
    // Reverse start order: proxies before the upstream they talk to.
    const procs = [...this.#procs].reverse();
    await Promise.all(procs.map((proc) => this.stop(proc)));
  }

  /** Last resort on an interrupt or on process exit: synchronous, no waiting. */
  killAllNow(): void {
    for (const proc of this.#procs) killGroup(proc.pid, 'SIGKILL');
  }
}

/** Runs a command to completion with captured output; killed (and rejected) after timeoutMs. */
export async function runToCompletion(
  group: ProcessGroup,
  name: string,
  command: string,
  args: readonly string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string }> {
  const proc = group.spawn(name, command, args, { env });
  if (!(await exitedWithin(proc, timeoutMs))) {
    await group.stop(proc, 1000);
    throw new Error(`${name} did not finish within ${timeoutMs} ms: ${command} ${args.join(' ')}`);
  }
  if (proc.exitCode !== 0) {
    throw new Error(
      `${name} failed (${proc.describeExit()}): ${command} ${args.join(' ')}\n${proc.outputTail()}`,
    );
  }
  return { stdout: proc.stdout, stderr: proc.stderr };
}

const handedOut = new Set<number>();

/** A port that was free a moment ago (for programs that need a fixed port in their config). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const found = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(found));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port');
}

export interface HttpResult {
  readonly status: number;
  readonly body: Buffer;
}

/** One request on a fresh connection (no agent: nothing is left open), bounded by timeoutMs. */
export async function httpRequest(url: string, timeoutMs: number, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` until it returns true; fails at the deadline or as soon as one of `watched` exits. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  watched: readonly ManagedProcess[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const dead = watched.find((proc) => proc.hasExited);
    if (dead) {
      throw new Error(
        `${dead.name} exited (${dead.describeExit()}) while waiting for ${what}:\n${dead.outputTail()}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  const logs = watched.map((proc) => `--- ${proc.name}:\n${proc.outputTail()}`).join('\n');
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (${lastError})` : ''}\n${logs}`,
  );
}
