/**
 * Resilience policies written as Istio YAML, served by the Weft control plane to a Weft sidecar (`weft proxy`
 * from dist/), exercised against real upstreams that count what reaches them:
 * - VirtualService `timeout` (504 UT, no retry) and `retries.perTryTimeout` (a timed-out try is retried);
 * - DestinationRule connectionPool overflow: 503 UO over http2MaxRequests, and over http1MaxPendingRequests
 *   behind tcp.maxConnections;
 * - the `weft.dev/load-balancer: peak-ewma` annotation favouring a fast replica over a slow one;
 * - Istio's default retry policy on a route without `retries`: connect-failure and 503 retried, 500 not;
 * - DestinationRule connectionPool.tcp.idleTimeout closing an idle TCP connection through a Sidecar egress port;
 * - connectionPool.http.h2UpgradePolicy UPGRADE: HTTP/1.1 from the application reaches an HTTP/2-only upstream,
 *   and http2KeepAlive PINGs it;
 * - connectionPool.tcp.maxConnectionDuration: a kept-alive upstream connection is closed once it is that old.
 * Counts are exact where the behaviour is deterministic; the load balancer's share is statistical.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';

const CONTROL_IP = '127.0.93.1';
const SIDECAR_IP = '127.0.93.2';
const SUFFIX = 'default.svc.cluster.local';
const host = (name: string): string => `${name}.${SUFFIX}`;
const clusterStat = (name: string, stat: string): string => `cluster.outbound|80||${host(name)}.${stat}`;

/** Long enough that no test path answers in time (each is cancelled well before). */
const NEVER_MS = 5_000;
const SLOW_REPLICA_MS = 50;
const TCP_IDLE = '1s';
const LIFETIME = '2s';
const TICK_MS = 150;
const GUARD_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An HTTP upstream on `ip`; see `handle` for what its paths do. */
interface App {
  readonly name: string;
  readonly ip: string;
  port: number;
  server: http.Server;
}

describe('resilience policies from Istio YAML through the control plane', { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-policies-'));
  let cp: ControlPlane | undefined;
  let sidecar: ProxyProcess | undefined;
  let outbound = 0;
  let admin = 0;
  let tcpPort = 0;
  let tcpUpstream: net.Server;
  const tcpAccepted: net.Socket[] = [];
  /** Attempts that reached an upstream, by `app path`. */
  const attempts = new Map<string, number>();
  /** Held requests' release functions, by `app path`. */
  const held = new Map<string, () => void>();
  const release = (app: string, p: string): void => {
    held.get(`${app} ${p}`)!();
    held.delete(`${app} ${p}`);
  };
  const apps: App[] = [];
  /** An upstream that speaks HTTP/2 only (cleartext, prior knowledge), and the versions its requests came in. */
  let h2Only: http2.Http2Server;
  const h2Versions: string[] = [];
  let h2Pings = 0;
  /** Connections the `lifetime` app accepted, and how many are open. */
  let lifetimeAccepted = 0;
  let lifetimeOpen = 0;

  const seen = (app: string, p: string): number => attempts.get(`${app} ${p}`) ?? 0;

  function handle(name: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = req.url ?? '';
    const n = (attempts.get(`${name} ${p}`) ?? 0) + 1;
    attempts.set(`${name} ${p}`, n);
    req.resume();
    const answer = (status: number, body = name): void => {
      if (!res.destroyed) res.writeHead(status, { 'x-upstream': name, 'x-attempt': String(n) }).end(body);
    };
    const later = (ms: number, status = 200): void => {
      const t = setTimeout(() => answer(status), ms);
      res.on('close', () => clearTimeout(t));
    };
    if (p.startsWith('/hold')) return void held.set(`${name} ${p}`, () => answer(200));
    if (p.endsWith('/slow')) return later(NEVER_MS);
    if (p.endsWith('/once-slow')) return n === 1 ? later(NEVER_MS) : answer(200);
    if (p.endsWith('/503-once')) return answer(n === 1 ? 503 : 200);
    if (p.endsWith('/503-always')) return answer(503);
    if (p.endsWith('/500')) return answer(500);
    if (name === 'ewma-slow') return later(SLOW_REPLICA_MS);
    answer(200);
  }

  async function startApp(name: string, ip: string): Promise<App> {
    const server = http.createServer((req, res) => handle(name, req, res));
    await new Promise<void>((r) => server.listen(0, ip, r));
    const app = { name, ip, port: (server.address() as AddressInfo).port, server };
    apps.push(app);
    return app;
  }

  function service(name: string, endpoints: { ip: string; port: number }[]): string {
    return [
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${host(name)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ${name}}}
`,
      ...endpoints.map(
        (e, i) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-${i}}
spec: {address: ${e.ip}, ports: {http: ${e.port}}, labels: {app: ${name}}}
`,
      ),
    ].join('---\n');
  }

  /** A DestinationRule for `name` with this connectionPool (YAML flow style). */
  const poolRule = (name: string, connectionPool: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${host(name)}
  trafficPolicy:
    connectionPool: ${connectionPool}
`;

  const call = (name: string, p: string): Promise<Reply> =>
    request(outbound, { host: SIDECAR_IP, path: p, headers: { host: host(name) } });

  async function stats(): Promise<Map<string, number>> {
    const r = await request(admin, { path: '/stats?format=json' });
    const list = (JSON.parse(r.body) as { stats: { name: string; value?: number }[] }).stats;
    return new Map(list.map((s) => [s.name, s.value ?? 0]));
  }
  const stat = async (name: string): Promise<number> => (await stats()).get(name) ?? 0;

  before(async () => {
    const timeouts = await startApp('timeouts', '127.0.93.31');
    const pool = await startApp('pool', '127.0.93.32');
    const queue = await startApp('queue', '127.0.93.33');
    const flaky = await startApp('flaky', '127.0.93.34');
    const live = await startApp('halfdead', '127.0.93.35');
    const fast = await startApp('ewma-fast', '127.0.93.37');
    const slow = await startApp('ewma-slow', '127.0.93.38');
    const aging = await startApp('lifetime', '127.0.93.41');
    // Only the proxy may close these connections (node:http would close an idle one after 5 s).
    aging.server.keepAliveTimeout = 120_000;
    aging.server.on('connection', (sock: net.Socket) => {
      lifetimeOpen++;
      lifetimeAccepted++;
      sock.on('close', () => lifetimeOpen--);
    });
    tcpUpstream = net.createServer((s) => {
      tcpAccepted.push(s);
      s.on('error', () => undefined);
      // Echoes the first chunk, then reads without answering.
      s.once('data', (d: Buffer) => s.write(d));
    });
    await new Promise<void>((r) => tcpUpstream.listen(0, '127.0.93.39', r));
    tcpPort = await closedPort();
    h2Only = http2.createServer((req, res) => {
      h2Versions.push(req.httpVersion);
      res.writeHead(200, { 'x-upstream-version': req.httpVersion }).end('h2');
    });
    h2Only.on('session', (session) => session.on('ping', () => h2Pings++));
    await new Promise<void>((r) => h2Only.listen(0, '127.0.93.40', r));
    const h2Endpoint = { ip: '127.0.93.40', port: (h2Only.address() as AddressInfo).port };
    const yaml = [
      service('timeouts', [timeouts]),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: timeouts}
spec:
  hosts: [${host('timeouts')}]
  http:
  - match: [{uri: {prefix: /per-try/}}]
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}
    route: [{destination: {host: ${host('timeouts')}}}]
  - timeout: 300ms
    route: [{destination: {host: ${host('timeouts')}}}]
`,
      service('pool', [pool]),
      poolRule('pool', `{http: {http2MaxRequests: 1, http1MaxPendingRequests: 1}}`),
      service('queue', [queue]),
      poolRule('queue', `{tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}`),
      service('flaky', [flaky]),
      // Nothing listens on the dead endpoint's address: connecting to it is refused at once.
      service('halfdead', [live, { ip: '127.0.93.36', port: live.port }]),
      service('ewma', [fast, slow]),
      service('lifetime', [aging]),
      poolRule('lifetime', `{tcp: {maxConnectionDuration: ${LIFETIME}}}`),
      service('h2up', [h2Endpoint]),
      service('h2no', [h2Endpoint]),
      poolRule('h2up', `{http: {h2UpgradePolicy: UPGRADE, http2KeepAlive: {interval: 200ms, timeout: 1s}}}`),
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ewma
  annotations: {weft.dev/load-balancer: peak-ewma}
spec:
  host: ${host('ewma')}
`,
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tcpidle}
spec:
  hosts: [${host('tcpidle')}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${tcpPort}, name: tcp, protocol: TCP}]
  workloadSelector: {labels: {app: tcpidle}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: tcpidle-0}
spec: {address: 127.0.93.39, ports: {tcp: ${(tcpUpstream.address() as AddressInfo).port}}, labels: {app: tcpidle}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcpidle}
spec:
  host: ${host('tcpidle')}
  trafficPolicy:
    connectionPool: {tcp: {idleTimeout: ${TCP_IDLE}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
  - port: {number: ${tcpPort}, name: tcp, protocol: TCP}
    bind: ${SIDECAR_IP}
    hosts: [./${host('tcpidle')}]
  - hosts: ['./*']
`,
    ].join('---\n');
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), yaml);
    cp = new ControlPlane({ configPaths: [dir], host: CONTROL_IP, xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    outbound = await closedPort();
    admin = await closedPort();
    sidecar = spawnWeftProxy([
      ...['--xds-address', `${CONTROL_IP}:${started.xdsPort}`],
      ...['--admin-port', String(admin), '--prometheus-port', '0', '--health-port', '0'],
      ...['--type', 'sidecar', '--name', 'client-1', '--namespace', 'default', '--ip', SIDECAR_IP],
      ...['--labels', 'app=client'],
      ...['--metadata', `WEFT_OUTBOUND_PORT=${outbound}`, '--metadata', `WEFT_OUTBOUND_BIND=${SIDECAR_IP}`],
    ]);
    for (const name of ['timeouts', 'pool', 'queue', 'flaky', 'halfdead', 'ewma'])
      await waitFor(async () => (await call(name, '/ready')).status === 200, 30_000, `${name} to route`);
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(tcpPort, SIDECAR_IP);
          s.once('connect', () => {
            resolve(true);
            s.destroy();
          });
          s.once('error', () => resolve(false));
        }),
      30_000,
      'the TCP egress listener',
    );
  });

  after(async () => {
    for (const answer of held.values()) answer();
    sidecar?.kill();
    await sidecar?.exited;
    await cp?.stop();
    for (const s of tcpAccepted) s.destroy();
    await new Promise((r) => tcpUpstream?.close(r));
    await new Promise((r) => h2Only?.close(r));
    for (const a of apps) {
      a.server.closeAllConnections();
      await new Promise((r) => a.server.close(r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers 504 UT once the VirtualService timeout passes, without retrying it', async () => {
    const before = await stat(clusterStat('timeouts', 'upstream_rq_timeout'));
    const r = await call('timeouts', '/t/slow');
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    // Istio's default retry policy is on this route, but a route timeout is never retried.
    assert.equal(seen('timeouts', '/t/slow'), 1);
    assert.equal(await stat(clusterStat('timeouts', 'upstream_rq_timeout')), before + 1);
  });

  it('retries a try that exceeds perTryTimeout, and the next try answers', async () => {
    const r = await call('timeouts', '/per-try/once-slow');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-attempt'], '2');
    assert.equal(seen('timeouts', '/per-try/once-slow'), 2);
  });

  it('gives up with 504 UT after attempts + 1 tries that each time out', async () => {
    const r = await call('timeouts', '/per-try/slow');
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.equal(seen('timeouts', '/per-try/slow'), 3);
  });

  it('answers 503 UO at once over http2MaxRequests, and frees the slot when the request ends', async () => {
    const overflowBefore = await stat(clusterStat('pool', 'upstream_rq_pending_overflow'));
    const first = call('pool', '/hold/a');
    await waitFor(() => seen('pool', '/hold/a') === 1, 10_000, 'the first request to reach the upstream');
    const second = await call('pool', '/hold/b');
    assert.equal(second.status, 503);
    assert.match(second.body, /reset reason: overflow/);
    assert.equal(seen('pool', '/hold/b'), 0, 'the overflowed request never reached the upstream');
    assert.equal(await stat(clusterStat('pool', 'upstream_rq_pending_overflow')), overflowBefore + 1);
    release('pool', '/hold/a');
    assert.equal((await first).status, 200);
    const third = call('pool', '/hold/c');
    await waitFor(() => seen('pool', '/hold/c') === 1, 10_000, 'a new request to reach the upstream');
    release('pool', '/hold/c');
    assert.equal((await third).status, 200);
  });

  it('queues one request behind tcp.maxConnections 1 (http1MaxPendingRequests), overflows the next', async () => {
    const pending = clusterStat('queue', 'circuit_breakers.default.rq_pending_open');
    const a = call('queue', '/hold/a');
    await waitFor(() => seen('queue', '/hold/a') === 1, 10_000, 'the first request to reach the upstream');
    const b = call('queue', '/hold/b');
    await waitFor(async () => (await stat(pending)) === 1, 10_000, 'the second request to queue');
    const c = await call('queue', '/hold/c');
    assert.equal(c.status, 503);
    assert.match(c.body, /reset reason: overflow/);
    assert.equal(seen('queue', '/hold/b'), 0);
    release('queue', '/hold/a');
    assert.equal((await a).status, 200);
    // The queued request goes out on the connection the first one freed.
    await waitFor(() => seen('queue', '/hold/b') === 1, 10_000, 'the queued request to reach the upstream');
    release('queue', '/hold/b');
    assert.equal((await b).status, 200);
    assert.equal(seen('queue', '/hold/c'), 0);
  });

  it('peak-ewma (DestinationRule annotation) sends clearly more to the fast replica than to the slow one', async () => {
    // One request at a time: every host has 0 active requests at each pick, so a least-request or random
    // balancer splits ~50/50 (binomial σ ≈ 8.7 for 300); only a latency-aware one can tell the replicas apart.
    const n = 300;
    for (let i = 0; i < 30; i++) assert.equal((await call('ewma', '/warm')).status, 200);
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await call('ewma', '/count');
      assert.equal(r.status, 200);
      const who = String(r.headers['x-upstream']);
      counts[who] = (counts[who] ?? 0) + 1;
    }
    assert.equal((counts['ewma-fast'] ?? 0) + (counts['ewma-slow'] ?? 0), n, JSON.stringify(counts));
    // 225 is over 8σ above an even split: it cannot pass by chance without peak EWMA.
    assert.ok((counts['ewma-fast'] ?? 0) >= 225, JSON.stringify(counts));
  });

  it("Istio's default retry policy retries a 503 (retriable-status-codes): two attempts, then 200", async () => {
    const r = await call('flaky', '/d/503-once');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-attempt'], '2');
    assert.equal(seen('flaky', '/d/503-once'), 2);
  });

  it("Istio's default retry policy gives up after its 2 retries, and does not retry a 500", async () => {
    const always = await call('flaky', '/d/503-always');
    assert.equal(always.status, 503);
    assert.equal(seen('flaky', '/d/503-always'), 3);
    const error = await call('flaky', '/d/500');
    assert.equal(error.status, 500);
    assert.equal(seen('flaky', '/d/500'), 1);
  });

  it("Istio's default retry policy retries a connect failure on the other endpoint", async () => {
    const before = await stats();
    const n = 20;
    for (let i = 0; i < n; i++) {
      const r = await call('halfdead', `/c/${i}`);
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(seen('halfdead', `/c/${i}`), 1);
    }
    const after = await stats();
    const delta = (s: string): number =>
      (after.get(clusterStat('halfdead', s)) ?? 0) - (before.get(clusterStat('halfdead', s)) ?? 0);
    // Half the first picks go to the dead endpoint (none in 20 has odds of 2^-20); each is retried exactly once.
    const failures = delta('upstream_cx_connect_fail');
    assert.ok(failures >= 1, `connect failures: ${failures}`);
    assert.equal(delta('upstream_rq_retry'), failures);
  });

  it('closes an idle TCP connection after the DestinationRule tcp.idleTimeout', async () => {
    const idleStat = `tcp.outbound_${SIDECAR_IP}_${tcpPort}.idle_timeout`;
    const before = await stat(idleStat);
    const s = net.connect(tcpPort, SIDECAR_IP);
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.write('hello');
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), GUARD_MS);
      s.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    assert.equal(closed, true, 'the idle connection was closed (the default would be 1 h)');
    assert.equal(got, 'hello');
    assert.equal(await stat(idleStat), before + 1);
  });

  it('keeps a TCP connection open while bytes flow, past the idle timeout', async () => {
    const idleStat = `tcp.outbound_${SIDECAR_IP}_${tcpPort}.idle_timeout`;
    const before = await stat(idleStat);
    const s = net.connect(tcpPort, SIDECAR_IP);
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (let i = 0; i < 20 && !s.destroyed; i++) {
      s.write('.');
      await sleep(TICK_MS);
    }
    assert.equal(s.destroyed, false, 'the active connection is still open after 3 s');
    assert.equal(await stat(idleStat), before);
    s.destroy();
  });

  it('sends HTTP/1.1 from the application as HTTP/2 to a host whose DestinationRule says h2UpgradePolicy UPGRADE', async () => {
    await waitFor(async () => (await call('h2up', '/')).status === 200, 30_000, 'h2up to route');
    const r = await call('h2up', '/up');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream-version'], '2.0');
    // The same HTTP/2-only endpoint behind a host without the rule gets HTTP/1.1, which it cannot read.
    const seenBefore = h2Versions.length;
    const plain = await call('h2no', '/no');
    assert.equal(plain.status, 503);
    assert.equal(h2Versions.length, seenBefore);
    // http2KeepAlive: the kept-alive HTTP/2 connection is PINGed every 200 ms.
    await waitFor(() => h2Pings >= 2, GUARD_MS, 'HTTP/2 PINGs from the sidecar');
  });

  it('closes a kept-alive upstream connection at maxConnectionDuration; the next request opens another', async () => {
    await waitFor(async () => (await call('lifetime', '/')).status === 200, 30_000, 'lifetime to route');
    await waitFor(() => lifetimeOpen === 0, GUARD_MS, 'the upstream connection to close at its duration');
    const accepted = lifetimeAccepted;
    assert.equal((await call('lifetime', '/again')).status, 200);
    assert.equal(lifetimeAccepted, accepted + 1);
    // Kept alive while it is young: a second request reuses that connection.
    assert.equal((await call('lifetime', '/reused')).status, 200);
    assert.equal(lifetimeAccepted, accepted + 1);
  });
});
