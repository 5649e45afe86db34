/**
 * Transparent mode's fallback: `weft up` asked for transparent mode by a user who is not root (here the
 * `nobody` user, through setpriv) says why it cannot capture traffic, runs the mesh in explicit mode, and the
 * app is reached through its sidecar as usual. Needs root to switch user (CI is root); spawns bin/weft.js:
 * `npm run build` first.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { launcherNodeFlags, waitFor } from '../support/proxy.ts';
import { processesMentioning, WEFT } from '../support/weft-cli.ts';

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const FIRST_IP = '127.0.76.10';

const asNobody = (args: readonly string[]): string[] => [
  ...NOBODY,
  process.execPath,
  ...launcherNodeFlags(),
  WEFT,
  ...args,
];

/** GET through an explicit proxy (absolute form), as an app behind HTTP_PROXY sends it. */
function viaProxy(port: number, url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: url, headers: { host: new URL(url).host }, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
  });
}

describe('weft up --mode transparent without root', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-fallback-'));
  let up: ChildProcess | undefined;

  after(async () => {
    if (up && up.exitCode === null) {
      const exited = new Promise((r) => up?.once('exit', r));
      up.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    }
    for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says why, runs in explicit mode, and serves through the sidecar', async () => {
    fs.chmodSync(dir, 0o777);
    fs.writeFileSync(
      path.join(dir, 'weft.yaml'),
      `mesh: {name: fallback, mode: transparent, controlPlane: {xdsPort: 0, debugPort: 0, dashboardPort: 0}}
workloads:
  - name: web
    command: python3 -m http.server --bind $HOST $PORT
    ports: [{port: 8080, name: http}]
`,
      { mode: 0o644 },
    );
    let out = '';
    up = spawn('setpriv', asNobody(['up', dir, '--first-ip', FIRST_IP]), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    up.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => /stop: weft down/.test(out) || up?.exitCode !== null, 60_000, `weft up:\n${out}`);
    assert.match(
      out,
      /^weft: transparent mode is unavailable here \(transparent mode needs root [^\n]*\); running in explicit mode \(HTTP_PROXY\)$/m,
      out,
    );
    assert.match(out, /\(explicit mode\)/);
    assert.match(out, /is up: 1 of 1 instances ready/);
    const proxyPort = Number(/curl -x http:\/\/127\.0\.0\.1:(\d+) /.exec(out)?.[1]);
    assert.equal(await viaProxy(proxyPort, 'http://web.default.svc.cluster.local:8080/'), 200);
    // Nothing of transparent mode was made: the run records no namespaces.
    const run = JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as {
      network?: unknown;
    };
    assert.equal(run.network, undefined);
    // Asynchronously: a synchronous call would keep this process from reaping weft up, whose zombie would
    // look alive to weft down.
    const down = await promisify(execFile)('setpriv', asNobody(['down', dir]), { encoding: 'utf8' });
    assert.match(down.stdout, /mesh fallback stopped/);
  });
});
