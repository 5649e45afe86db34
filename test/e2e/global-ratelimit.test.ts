/**
 * Global rate limiting end to end, with every part real: the Weft control plane turns a RateLimitPolicy
 * into the rate limit filter on the inbound side of two replicas' sidecars; `weft ratelimit` counts in a
 * real redis-server; clients alternate between the two replicas, and the limits hold across both. Redis
 * killed mid-test shows the configured failure mode: open by default, closed with `failureMode: Deny`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { launcherNodeFlags, REPO, spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { TestRedis } from '../../src/ratelimit/testing/redis-server.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const REPLICA_IPS = ['127.0.0.2', '127.0.0.3'];

function mesh(o: { appPort: number; ingressPort: number; rlsPort: number; failureMode: string }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratelimit}
spec:
  hosts: [ratelimit.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8081, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.0.1, ports: {grpc: ${o.rlsPort}}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: ${o.ingressPort}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${o.appPort}
---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  global:
    service: ratelimit:8081
    timeout: 500ms
    failureMode: ${o.failureMode}
    # Hour windows: a test never straddles one by accident (it waits if it would).
    default: {requestsPerUnit: 15, unit: HOUR}
    perClient:
      key: {header: x-user}
      requestsPerUnit: 3
      unit: HOUR
      overrides: [{value: vip, requestsPerUnit: 5, unit: HOUR}]
`;
}

interface RateLimitService {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function startRateLimitService(configDir: string, redisUrl: string, port: number): RateLimitService {
  const child = spawn(
    process.execPath,
    [
      ...launcherNodeFlags(),
      path.join(REPO, 'dist/cli/main.js'),
      'ratelimit',
      ...['--config', configDir, '--redis', redisUrl, '--port', String(port), '--address', '127.0.0.1'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('global rate limits shared by two replicas (weft ratelimit + Redis)', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-global-rl-'));
  let redis: TestRedis;
  let rls: RateLimitService;
  let cp: ControlPlane;
  const proxies: ProxyProcess[] = [];
  let app: Awaited<ReturnType<typeof startHttpUpstream>>;
  let settings: Parameters<typeof mesh>[0];
  let turn = 0;

  /** One request, to each replica in turn. */
  const call = async (user?: string): Promise<number> => {
    const ip = REPLICA_IPS[turn++ % REPLICA_IPS.length];
    const r = await request(settings.ingressPort, {
      host: ip,
      path: '/',
      headers: user ? { 'x-user': user } : {},
    });
    return r.status;
  };
  const statuses = async (n: number, user?: string): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await call(user));
    return out;
  };
  const count = (list: number[], status: number): number => list.filter((s) => s === status).length;

  before(async () => {
    // Never start within a minute of the hour's end: every count below must fall in one window.
    const msIntoHour = Date.now() % 3_600_000;
    if (msIntoHour > 3_540_000) await new Promise((r) => setTimeout(r, 3_600_000 - msIntoHour + 1000));
    redis = await TestRedis.start();
    app = await startHttpUpstream();
    settings = {
      appPort: app.port,
      ingressPort: await closedPort(),
      rlsPort: await closedPort(),
      failureMode: 'Allow',
    };
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(settings));
    rls = startRateLimitService(dir, redis.url, settings.rlsPort);
    await waitFor(() => rls.output().includes('ratelimit ready'), 15_000, 'weft ratelimit to be ready');
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    for (const [i, ip] of REPLICA_IPS.entries()) {
      proxies.push(
        spawnWeftProxy([
          ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
          ...['--admin-port', String(await closedPort()), '--prometheus-port', String(await closedPort())],
          ...['--health-port', String(await closedPort())],
          ...['--type', 'sidecar', '--name', `api-${i}`, '--namespace', 'default', '--ip', ip],
          ...['--labels', 'app=api', '--metadata', 'WEFT_OUTBOUND_PORT=0'],
        ]),
      );
    }
    // Ready = both replicas answer through their sidecars; a probe by "probe" costs one per-client count.
    for (const ip of REPLICA_IPS)
      await waitFor(
        async () =>
          (await request(settings.ingressPort, { host: ip, path: '/', headers: { 'x-user': `probe-${ip}` } }))
            .status === 200,
        20_000,
        `the sidecar on ${ip}`,
      );
  });

  after(async () => {
    for (const p of proxies) p.kill();
    await Promise.all(proxies.map((p) => p.exited));
    await cp?.stop();
    await rls?.stop();
    await redis?.kill();
    await app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds a per-client limit across both replicas, with per-client overrides', async () => {
    const alice = await statuses(6, 'alice');
    assert.deepEqual(
      alice,
      [200, 200, 200, 429, 429, 429],
      'alice: 3 an hour, whichever replica she reaches',
    );
    const vip = await statuses(7, 'vip');
    assert.deepEqual(vip, [200, 200, 200, 200, 200, 429, 429], 'vip: the override, 5 an hour');
  });

  it('holds the default limit for all clients together', async () => {
    // 6 alice and 7 vip requests have counted against the default of 15 (fixed windows count refused hits
    // too), and so have the readiness probes, unless the service missed one's timeout at start-up and the
    // sidecar let it through uncounted (fail open): at most 2
    // more requests pass, then every client is refused, although carol's own count is far below her 3.
    const carol = await statuses(5, 'carol');
    const firstRefused = carol.indexOf(429);
    assert.ok(firstRefused >= 0 && firstRefused <= 2, `carol: ${carol.join(',')}`);
    assert.ok(
      carol.slice(firstRefused).every((s) => s === 429),
      `carol: ${carol.join(',')}`,
    );
    assert.deepEqual(await statuses(2), [429, 429]);
  });

  it('fails open when Redis dies (the default), and counts again once it is back', async () => {
    await redis.kill();
    const during = await statuses(4, 'alice');
    assert.deepEqual(during, [200, 200, 200, 200], 'the service cannot count: requests pass');
    redis = await TestRedis.start(redis.port);
    // Counting again shows in the answer's x-ratelimit headers (a fail-open pass has none).
    await waitFor(
      async () =>
        (
          await request(settings.ingressPort, {
            host: REPLICA_IPS[0],
            path: '/',
            headers: { 'x-user': 'dave' },
          })
        ).headers['x-ratelimit-remaining'] !== undefined,
      15_000,
      'the service to reach Redis again',
    );
    // A restarted Redis starts from zero (nothing was persisted): a new client has its 3, then the limit holds.
    const after = await statuses(5, 'erin');
    assert.equal(count(after, 200), 3);
    assert.equal(count(after, 429), 2);
  });

  it('fails closed with failureMode: Deny', async () => {
    settings = { ...settings, failureMode: 'Deny' };
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(settings));
    await redis.kill();
    await waitFor(async () => (await call('frank')) === 500, 15_000, 'requests refused while Redis is down');
    assert.deepEqual(await statuses(3, 'grace'), [500, 500, 500]);
  });
});
