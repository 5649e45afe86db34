/**
 * `weft up` end to end, with every process real: a tiny mesh in a temp dir (two Node apps, `a` calling `b`
 * through its sidecar as an HTTP proxy, and the ingress gateway in front of `a`), then `weft status`,
 * `weft logs`, a crashing app restarted, and `weft down` leaving nothing behind. Spawns bin/weft.js, so
 * `npm run build` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.ts';
import { launcherNodeFlags, waitFor } from '../support/proxy.ts';
import { gatewayToService, processesMentioning, weft, WEFT } from '../support/weft-cli.ts';
import { closedPort } from '../support/servers.ts';
import type { RunState } from '../../src/up/run-state.ts';

/** `b`: answers who it is; /crash exits with code 3 (after answering). */
const B_APP = `
import http from 'node:http';
http.createServer((req, res) => {
  console.log('b got', req.method, req.url);
  res.end('hello from b\\n');
  if (req.url === '/crash') setTimeout(() => process.exit(3), 50);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('b listening on', process.env.PORT));
process.on('SIGTERM', () => {
  console.log('b stopping at', new Date().toISOString());
  process.exit(0);
});
`;

/** \`a\`: calls http://b:$B_PORT/ through HTTP_PROXY (an absolute-form request, as HTTP clients send to proxies). */
const A_APP = `
import http from 'node:http';
const proxy = new URL(process.env.HTTP_PROXY);
http.createServer((req, res) => {
  const out = http.request(
    { host: proxy.hostname, port: Number(proxy.port), path: 'http://b:' + process.env.B_PORT + req.url, headers: { host: 'b:' + process.env.B_PORT } },
    (up) => {
      let body = '';
      up.on('data', (c) => (body += c));
      up.on('end', () => res.end('a -> b ' + up.statusCode + ': ' + body));
    },
  );
  out.on('error', (e) => { res.statusCode = 502; res.end(String(e)); });
  out.end();
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('weft up / status / logs / down', { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-up-'));
  let up: ChildProcess;
  let upOut = '';
  let upExit: Promise<number | null>;
  let gatewayPort = 0;
  /** Both services' port (a random one, so that a concurrent test's mesh on 127.0.0.10+ does not collide). */
  let servicePort = 0;
  const run = (): RunState =>
    JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as RunState;

  before(async () => {
    gatewayPort = await closedPort();
    servicePort = await closedPort();
    fs.writeFileSync(path.join(dir, 'a.mjs'), A_APP);
    fs.writeFileSync(path.join(dir, 'b.mjs'), B_APP);
    fs.writeFileSync(
      path.join(dir, 'weft.yaml'),
      `
mesh: {name: tiny, controlPlane: {xdsPort: 0, debugPort: 0, dashboardPort: 0}}
gateway: {ports: [${gatewayPort}]}
workloads:
  - name: a
    command: [${JSON.stringify(process.execPath)}, a.mjs]
    env: {B_PORT: ${servicePort}}
    ports: [{port: ${servicePort}, name: http}]
  - name: b
    command: ${JSON.stringify(`exec ${process.execPath} b.mjs`)}
    ports: [{port: ${servicePort}, name: http}]
`,
    );
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      gatewayToService(gatewayPort, 'a.default.svc.cluster.local', servicePort),
    );
    up = spawn(process.execPath, [...launcherNodeFlags(), WEFT, 'up', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (c: Buffer) => (upOut += c.toString()));
    up.stderr!.on('data', (c: Buffer) => (upOut += c.toString()));
    upExit = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
  });

  after(async () => {
    if (up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([upExit, new Promise((r) => setTimeout(r, 30_000))]);
    }
    for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts the control plane, then each sidecar and app, then reports the mesh up', async () => {
    await waitFor(
      // The summary is written line by line: wait for its last line.
      () => /is up: 2 of 2 instances ready/.test(upOut) && /stop: weft down/.test(upOut),
      60_000,
      `weft up to be ready; output:\n${upOut}`,
    );
    const lines = upOut.split('\n');
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    assert.ok(at(/control-plane\s+ready in \d+ ms/) >= 0, upOut);
    for (const i of ['a-0', 'b-0']) {
      // The app starts only once its sidecar is ready.
      assert.ok(at(new RegExp(`${i} sidecar\\s+ready in`)) < at(new RegExp(`${i} app\\s+starting`)), upOut);
      assert.ok(at(new RegExp(`${i} app\\s+ready in`)) > 0, upOut);
    }
    assert.ok(at(/gateway\s+ready in/) > 0, upOut);
    assert.match(upOut, new RegExp(`gateway\\s+http://127\\.0\\.0\\.1:${gatewayPort}/`));
    const st = run();
    assert.deepEqual(
      st.instances.map((i) => [i.instance, i.ip, i.state]),
      [
        ['a-0', '127.0.0.10', 'ready'],
        ['b-0', '127.0.0.11', 'ready'],
      ],
    );
  });

  it("a's app reaches b through its sidecar, and the gateway reaches a", async () => {
    const a = run().instances[0];
    const direct = await request(a.ports[0].private, { path: '/hi' });
    assert.equal(direct.body, 'a -> b 200: hello from b\n');
    const viaGateway = await waitFor(
      async () => {
        const r = await request(gatewayPort, { path: '/' });
        return r.status === 200 ? r : undefined;
      },
      20_000,
      'the gateway route',
    );
    assert.equal(viaGateway?.body, 'a -> b 200: hello from b\n');
  });

  it('weft status lists both instances with their addresses and state', async () => {
    const r = await weft(['status', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^mesh tiny: running \(weft up pid \d+/);
    assert.match(r.out, /control-plane\s+-\s+127\.0\.0\.1\s+xds \d+, debug \d+.*running/);
    assert.match(
      r.out,
      new RegExp(
        `a-0\\s+default\\s+127\\.0\\.0\\.10\\s+${servicePort}→\\d+, out \\d+, admin \\d+\\s+ready\\s+0`,
      ),
    );
    assert.match(
      r.out,
      new RegExp(
        `b-0\\s+default\\s+127\\.0\\.0\\.11\\s+${servicePort}→\\d+, out \\d+, admin \\d+\\s+ready\\s+0`,
      ),
    );
  });

  it("weft logs b shows b's output", async () => {
    const r = await weft(['logs', 'b', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /b listening on \d+/);
    assert.match(r.out, /b got GET \/hi/);
    const unknown = await weft(['logs', 'nope', dir]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.err,
      /no workload "nope" in mesh tiny \(workloads: a, b; also control-plane, gateway\)/,
    );
  });

  it('weft logs -f follows what is written', async () => {
    const follow = spawn(process.execPath, [...launcherNodeFlags(), WEFT, 'logs', 'b', dir, '-f'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follow.stdout.on('data', (c: Buffer) => (followed += c.toString()));
    try {
      await waitFor(() => followed.includes('b got GET /hi'), 10_000, 'the existing lines');
      await request(run().instances[0].ports[0].private, { path: '/followed' });
      await waitFor(() => followed.includes('b got GET /followed'), 10_000, 'a new line');
    } finally {
      follow.kill('SIGTERM');
    }
  });

  it('restarts a crashed app after a backoff and reports it', async () => {
    const before = run().instances[1].appPid;
    const a = run().instances[0];
    await request(a.ports[0].private, { path: '/crash' });
    await waitFor(
      () => /b-0 app\s+failed: exited with code 3; restarting in 1 s/.test(upOut),
      10_000,
      'the crash report',
    );
    await waitFor(
      () => run().instances[1].state === 'ready' && run().instances[1].appPid !== before,
      15_000,
      'b restarted',
    );
    assert.equal(run().instances[1].restarts, 1);
    const again = await request(a.ports[0].private, { path: '/again' });
    assert.equal(again.body, 'a -> b 200: hello from b\n');
  });

  it('weft down stops everything, apps first, and weft up exits 0', async () => {
    const st = run();
    const pids = [
      st.pid,
      st.controlPlane.pid!,
      st.gateway!.pid!,
      ...st.instances.flatMap((i) => [i.appPid!, i.sidecarPid!]),
    ];
    const r = await weft(['down', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /weft: mesh tiny stopped/);
    assert.equal(await upExit, 0);
    assert.match(upOut, /weft: mesh "tiny" stopped/);
    for (const pid of pids)
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} still runs`);
    assert.deepEqual(processesMentioning(dir), []);
    assert.deepEqual(
      run().instances.map((i) => i.state),
      ['stopped', 'stopped'],
    );
    // Apps first: b had stopped before its sidecar began to drain.
    const logs = path.join(dir, '.weft/logs');
    const stopped = /b stopping at (\S+)/.exec(fs.readFileSync(path.join(logs, 'b-0.app.log'), 'utf8'));
    const draining = /^(\S+) .*draining/m.exec(fs.readFileSync(path.join(logs, 'b-0.sidecar.log'), 'utf8'));
    assert.ok(stopped && draining, 'both logs say when they stopped');
    assert.ok(Date.parse(stopped[1]) <= Date.parse(draining[1]), `${stopped[1]} vs ${draining[1]}`);
    const status = await weft(['status', dir]);
    assert.match(status.out, /^mesh tiny: not running \(stopped at /);
  });
});

describe('weft up that cannot start', { timeout: 30_000 }, () => {
  it('fails before anything starts, naming the file, path and field', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-up-bad-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'weft.yaml'),
        'workloads:\n  - {name: a, command: x}\n  - {name: b, command: x, ports: [{port: 70000, name: http}]}\n',
      );
      const r = await weft(['up', dir]);
      assert.equal(r.code, 1);
      assert.match(r.err, /is not a valid mesh; nothing started/);
      assert.ok(
        r.err.includes(
          `${path.join(dir, 'weft.yaml')}: workloads[1].ports[0].port: must be 1-65535, got 70000`,
        ),
        r.err,
      );
      assert.equal(fs.existsSync(path.join(dir, '.weft')), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a fixed port that is taken, and starts nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-up-busy-'));
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    try {
      fs.writeFileSync(
        path.join(dir, 'weft.yaml'),
        `mesh: {controlPlane: {xdsPort: 0, debugPort: 0, dashboardPort: 0}}\ngateway: {ports: [${port}]}\nworkloads: [{name: a, command: x}]\n`,
      );
      const r = await weft(['up', dir]);
      assert.equal(r.code, 1);
      assert.ok(
        r.err.includes(
          `${path.join(dir, 'weft.yaml')}: gateway.ports[0]: port ${port} is in use on 127.0.0.1`,
        ),
        r.err,
      );
      assert.equal(fs.existsSync(path.join(dir, '.weft')), false);
      const down = await weft(['down', dir]);
      assert.equal(down.code, 0);
      assert.match(down.out, /no mesh has run in .*; nothing to stop/);
    } finally {
      busy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
