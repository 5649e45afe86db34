/**
 * No request lost while a workload restarts or the mesh goes down, under load, with every process real: `front`
 * (1 replica) calls `back` (2 replicas) through its sidecar; clients send steady traffic through the ingress
 * gateway while `weft restart back` replaces back's apps one at a time, then while `weft restart front`
 * replaces the only front (each new app starts on new ports beside the old one, its sidecar is switched to it,
 * then the old one drains), then while `weft down` stops everything (gateway first, then apps, then
 * sidecars). Spawns bin/weft.js, so `npm run build` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { launcherNodeFlags, waitFor } from '../support/proxy.ts';
import { gatewayToService, processesMentioning, weft, WEFT } from '../support/weft-cli.ts';
import { closedPort } from '../support/servers.ts';
import type { RunState } from '../../src/up/run-state.ts';

/** A range of its own, so that weft-up.test.ts's mesh (127.0.0.10+) can run at the same time. */
const FIRST_IP = '127.0.73.10';

/** `back`: 20 ms per request; on SIGTERM stops accepting, finishes what it has, then exits. */
const BACK_APP = `
import http from 'node:http';
let draining = false;
const server = http.createServer((req, res) => {
  setTimeout(() => {
    if (draining) res.setHeader('connection', 'close');
    res.end('back ' + process.env.WEFT_INSTANCE + '\\n');
  }, 20);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  draining = true;
  console.log('back stopping at', new Date().toISOString());
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
`;

/** `front`: 20 ms of its own, then calls back through HTTP_PROXY and answers with back's status and body. */
const FRONT_APP = `
import http from 'node:http';
const proxy = new URL(process.env.HTTP_PROXY);
const agent = new http.Agent({ keepAlive: true });
let draining = false;
const server = http.createServer((req, res) => {
  setTimeout(() => {
    const out = http.request(
      { host: proxy.hostname, port: Number(proxy.port), path: 'http://back:' + process.env.BACK_PORT + '/', agent },
      (up) => {
        let body = '';
        up.on('data', (c) => (body += c));
        up.on('end', () => {
          res.statusCode = up.statusCode;
          if (draining) res.setHeader('connection', 'close');
          res.end('front -> ' + body);
        });
      },
    );
    out.on('error', (e) => { res.statusCode = 502; res.end(String(e)); });
    out.end();
  }, 20);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  draining = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
`;

type Outcome = 'ok' | 'bad-status' | 'refused' | 'reset' | 'cut';

/** Requests that got a response (a status line) through the gateway, in the whole file. */
let answered = 0;

/**
 * One request on a fresh connection (so that a refusal is unambiguous): ok = 200 with front's whole body;
 * refused = the connection was refused; reset = reset before any byte of a response (a connection the kernel
 * had queued when the gateway closed its listener is reset, not refused: whether the gateway had read such a
 * request is checked against its access log); cut = a response cut short, or none within 10 s.
 */
function probe(port: number): Promise<{ outcome: Outcome; detail: string }> {
  return new Promise((resolve) => {
    let connected = 0;
    let done = false;
    const finish = (outcome: Outcome, detail: string): void => {
      if (done) return;
      done = true;
      resolve({ outcome, detail });
    };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      answered++;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) finish('bad-status', `${res.statusCode}: ${body}`);
        else if (!/^front -> back back-[01]\n$/.test(body))
          finish('cut', `incomplete body ${JSON.stringify(body)}`);
        else finish('ok', body);
      });
      res.on('error', (e) => finish('cut', `response: ${e.message}`));
      res.on('aborted', () => finish('cut', 'response aborted'));
    });
    req.on('socket', (s) => s.once('connect', () => (connected = Date.now())));
    req.on('timeout', () => req.destroy(new Error('no response in 10 s')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const detail = `${e.code ?? ''} ${e.message}${connected ? ` ${Date.now() - connected} ms after connecting` : ''}`;
      if (connected === 0 && e.code === 'ECONNREFUSED') finish('refused', detail);
      else if (e.code === 'ECONNRESET') finish('reset', detail);
      else finish('cut', detail);
    });
  });
}

/** `clients` loops, each sending a request every `everyMs`, until stop() is called. */
function load(port: number, clients: number, everyMs: number) {
  const counts: Record<Outcome, number> = { ok: 0, 'bad-status': 0, refused: 0, reset: 0, cut: 0 };
  const failures: string[] = [];
  let sent = 0;
  let running = true;
  const loops = Array.from({ length: clients }, async (_, n) => {
    await sleep((n * everyMs) / clients);
    while (running) {
      const start = Date.now();
      sent++;
      const r = await probe(port);
      counts[r.outcome]++;
      if (r.outcome === 'bad-status' || r.outcome === 'cut' || r.outcome === 'reset')
        failures.push(`${new Date().toISOString()} ${r.outcome}: ${r.detail}`);
      await sleep(Math.max(0, everyMs - (Date.now() - start)));
    }
  });
  return {
    counts,
    failures,
    get sent() {
      return sent;
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('weft restart and weft down under load', { timeout: 150_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-restart-'));
  let up: ChildProcess;
  let upOut = '';
  let upExit: Promise<number | null>;
  let gatewayPort = 0;
  const run = (): RunState =>
    JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as RunState;

  before(async () => {
    gatewayPort = await closedPort();
    const servicePort = await closedPort();
    fs.writeFileSync(path.join(dir, 'front.mjs'), FRONT_APP);
    fs.writeFileSync(path.join(dir, 'back.mjs'), BACK_APP);
    fs.writeFileSync(
      path.join(dir, 'weft.yaml'),
      `
mesh: {name: rolling, controlPlane: {xdsPort: 0, debugPort: 0, dashboardPort: 0}}
gateway: {ports: [${gatewayPort}]}
workloads:
  - name: front
    command: [${JSON.stringify(process.execPath)}, front.mjs]
    env: {BACK_PORT: ${servicePort}}
    ports: [{port: ${servicePort}, name: http}]
  - name: back
    replicas: 2
    command: [${JSON.stringify(process.execPath)}, back.mjs]
    ports: [{port: ${servicePort}, name: http}]
`,
    );
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      gatewayToService(gatewayPort, 'front.default.svc.cluster.local', servicePort) +
        `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gateway-access-log, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  accessLogging: [{providers: [{name: envoy}]}]
`,
    );
    up = spawn(process.execPath, [...launcherNodeFlags(), WEFT, 'up', dir, '--first-ip', FIRST_IP], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (c: Buffer) => (upOut += c.toString()));
    up.stderr!.on('data', (c: Buffer) => (upOut += c.toString()));
    upExit = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
    await waitFor(
      () => /is up: 3 of 3 instances ready/.test(upOut) && /stop: weft down/.test(upOut),
      60_000,
      `weft up to be ready; output:\n${upOut}`,
    );
    // Both back replicas answer through the gateway (front's sidecar has both endpoints).
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const r = await probe(gatewayPort);
        if (r.outcome === 'ok') seen.add(r.detail);
        return seen.size === 2;
      },
      20_000,
      'both back replicas through the gateway',
    );
  });

  after(async () => {
    if (up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([upExit, sleep(30_000)]);
    }
    for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('weft restart names an unknown workload, or a directory with no mesh, and fails', async () => {
    const unknown = await weft(['restart', 'nope', dir]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.err,
      /restart nope failed: no workload "nope" in mesh rolling \(workloads: front, back\)/,
    );
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-restart-none-'));
    try {
      const none = await weft(['restart', 'back', empty]);
      assert.equal(none.code, 1);
      assert.match(none.err, /no mesh is running in /);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('weft restart back replaces both apps one at a time, and every request under load gets 200', async (t) => {
    const before = run().instances.filter((i) => i.workload === 'back');
    const traffic = load(gatewayPort, 5, 100); // 50 requests/s
    await sleep(1000);
    const r = await weft(['restart', 'back', dir]);
    await sleep(1000);
    await traffic.stop();
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    const lines = r.out.split('\n');
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    // One at a time, each new app ready and routed to before the old one stops; back-1 only after back-0.
    for (const n of [0, 1]) {
      const started = at(new RegExp(`back-${n} app\\s+starting \\(restart requested\\)`));
      const ready = at(new RegExp(`back-${n} app\\s+ready in \\d+ ms`));
      const switched = at(
        new RegExp(`back-${n} app\\s+serving on port \\d+ \\(sidecar switched in \\d+ ms\\)`),
      );
      const stopped = at(new RegExp(`back-${n} app\\s+old app stopped in \\d+ ms`));
      assert.ok(started >= 0 && started < ready && ready < switched && switched < stopped, r.out);
    }
    assert.ok(at(/back-1 app\s+starting/) > at(/back-0 app\s+old app stopped/), r.out);
    assert.match(r.out, /weft: restarted back in [\d.]+ s/);
    const afterwards = run().instances.filter((i) => i.workload === 'back');
    for (const [n, i] of afterwards.entries()) {
      assert.notEqual(i.appPid, before[n].appPid, `${i.instance} has a new app`);
      assert.notEqual(i.ports[0].private, before[n].ports[0].private, `${i.instance}'s app moved ports`);
      assert.equal(i.state, 'ready');
      assert.equal(i.restarts, 0, 'a requested restart is not a crash');
    }
    const { counts } = traffic;
    const summary = `sent ${traffic.sent}: ${JSON.stringify(counts)}\n${traffic.failures.join('\n')}`;
    assert.ok(traffic.sent >= 60, summary);
    assert.equal(counts.ok, traffic.sent, summary);
    assert.doesNotMatch(upOut, /back-\d app\s+failed/);
    // How many calls front's sidecar retried on the other replica (a 503 from a sidecar whose app was down).
    const front = run().instances.find((i) => i.workload === 'front')!;
    const stats = await new Promise<string>((resolve) => {
      http
        .get({ host: '127.0.0.1', port: front.admin, path: '/stats', agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        })
        .on('error', () => resolve(''));
    });
    const retries =
      /^cluster\.outbound\|\d+\|\|back\.default\.svc\.cluster\.local\.upstream_rq_retry: (\d+)$/m.exec(stats);
    t.diagnostic(
      `sent ${traffic.sent}: ${JSON.stringify(counts)}; front's sidecar retried ${retries?.[1] ?? '?'} calls to back`,
    );
  });

  it('weft restart front replaces the only front app, and every request under load gets 200', async () => {
    const before = run().instances.find((i) => i.workload === 'front')!;
    const traffic = load(gatewayPort, 5, 100); // 50 requests/s
    await sleep(1000);
    const r = await weft(['restart', 'front', dir]);
    await sleep(1000);
    await traffic.stop();
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(
      r.out,
      /front-0 app\s+serving on port \d+ \(sidecar switched in \d+ ms\); stopping the old app/,
    );
    const afterwards = run().instances.find((i) => i.workload === 'front')!;
    assert.notEqual(afterwards.appPid, before.appPid);
    assert.equal(afterwards.state, 'ready');
    // No other replica to retry on: only the switch before the old app stops keeps every request whole.
    const summary = `sent ${traffic.sent}: ${JSON.stringify(traffic.counts)}\n${traffic.failures.join('\n')}`;
    assert.ok(traffic.sent >= 60, summary);
    assert.equal(traffic.counts.ok, traffic.sent, summary);
    const generated = fs.readFileSync(path.join(dir, '.weft/generated/weft-up.yaml'), 'utf8');
    assert.match(generated, new RegExp(`defaultEndpoint: 127\\.0\\.0\\.1:${afterwards.ports[0].private}\\b`));
  });

  it('weft down under load: the gateway refuses new requests, but every request it took gets a whole 200', async (t) => {
    const traffic = load(gatewayPort, 5, 100);
    await sleep(1000);
    const r = await weft(['down', dir]);
    await sleep(300);
    await traffic.stop();
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.equal(await upExit, 0);
    const { counts } = traffic;
    const summary = `sent ${traffic.sent}: ${JSON.stringify(counts)}\n${traffic.failures.join('\n')}`;
    assert.ok(counts.ok >= 30, summary);
    assert.ok(counts.refused > 0, `the clients went on until after the gateway closed; ${summary}`);
    assert.equal(counts['bad-status'], 0, summary);
    assert.equal(counts.cut, 0, summary);
    assert.equal(counts.ok + counts.refused + counts.reset, traffic.sent, summary);
    // Every request the gateway read is in its access log (written out before it exits): as many as got an
    // answer, all 200. So a reset request (if any) was one the gateway never took, as a refused one.
    const logged = [
      ...fs
        .readFileSync(path.join(dir, '.weft/logs/gateway.log'), 'utf8')
        .matchAll(/"GET \/ HTTP\/1\.1" (\d+) /g),
    ].map((m) => m[1]);
    assert.equal(logged.length, answered, `${logged.length} logged, ${answered} answered; ${summary}`);
    assert.deepEqual(new Set(logged), new Set(['200']), summary);
    t.diagnostic(`sent ${traffic.sent}: ${JSON.stringify(counts)}; the gateway logged ${logged.length}`);
    assert.ok(counts.reset <= 5, `more resets than a listener's backlog at close would explain; ${summary}`);
    assert.match(
      upOut,
      /stopping rolling: gateway \(drain\), then apps, then sidecars \(drain\), then control plane/,
    );
    assert.deepEqual(processesMentioning(dir), []);
  });
});
