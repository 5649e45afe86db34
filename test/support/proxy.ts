/** Starts real Weft proxies for tests: in this process (fast) or as a `weft proxy` child process. */
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadBootstrap } from '../../src/proxy/bootstrap/load.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import type { ProxyServerOptions } from '../../src/proxy/server.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function writeBootstrap(doc: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-test-'));
  const file = path.join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

export interface RunningProxy {
  readonly server: ProxyServer;
  port(listener?: string): number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

export async function startProxy(doc: unknown, opts: ProxyServerOptions = {}): Promise<RunningProxy> {
  const file = writeBootstrap(doc);
  const server = new ProxyServer(await loadBootstrap(file), {
    drainMs: 200,
    onQuit: () => undefined,
    ...opts,
  });
  await server.start();
  return {
    server,
    port: (name = 'http') => {
      const p = server.listenerPort(name);
      if (p === undefined) throw new Error(`no listener ${name}`);
      return p;
    },
    adminPort: server.adminPort() ?? 0,
    stop: () => server.stop(200),
  };
}

export interface ProxyProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** The Node flags bin/weft.js starts with (from its shebang), so spawned proxies run as `npx weft` does. */
export function launcherNodeFlags(): string[] {
  const first = readFileSync(path.join(REPO, 'bin/weft.js'), 'utf8').split('\n')[0];
  return first.split(/\s+/).filter((w) => w.startsWith('--'));
}

/** Runs `weft proxy --bootstrap FILE` from the build (dist/), with the launcher's Node flags. */
export function spawnProxy(file: string, args: string[] = []): ProxyProcess {
  return spawnWeftProxy(['--bootstrap', file, ...args]);
}

/** Runs `weft proxy ARGS...` from the build (dist/), with the launcher's Node flags. */
export function spawnWeftProxy(args: string[]): ProxyProcess {
  const child = spawn(
    process.execPath,
    [
      ...launcherNodeFlags(),
      ...(process.env.WEFT_NODE_ARGS ?? '').split(' ').filter(Boolean),
      path.join(REPO, 'dist/cli/main.js'),
      'proxy',
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return tracked(child);
}

/** A spawned child (stdout and stderr piped) with its output collected and its exit awaited. */
export function tracked(child: ChildProcessByStdio<null, Readable, Readable>): ProxyProcess {
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    pid: child.pid ?? 0,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
  };
}

/** Waits until `fn` returns a truthy value, polling; throws after `ms`. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* keep polling */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
