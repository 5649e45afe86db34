/**
 * Locality load balancing end to end: the Weft control plane turns a DestinationRule's outlierDetection and
 * localityLbSetting into per-locality EDS priorities (and, for `distribute`, weights), and a Weft sidecar in
 * region1/zone1 keeps its traffic in its zone, fails over zone by zone as the local replicas fail and are
 * ejected, comes back when they recover, and splits traffic by `distribute` weights.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const HOST = 'hello.default.svc.cluster.local';
const RETRY_HOST = 'retry.default.svc.cluster.local';

interface Replica {
  readonly name: string;
  readonly locality: string;
  port: number;
  failing: boolean;
  /** Paths this replica was asked for. */
  hits: string[];
  close(): Promise<void>;
}

const REPLICAS: readonly [string, string][] = [
  ['z1-a', 'region1/zone1'],
  ['z1-b', 'region1/zone1'],
  ['z2', 'region1/zone2'],
  ['r2', 'region2/zone3'],
];

function mesh(replicas: readonly Replica[], localityLbSetting: string): string {
  const entries = replicas
    .map(
      (r) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${r.name}}
spec: {address: 127.0.0.1, ports: {http: ${r.port}}, locality: ${r.locality}, labels: {app: hello}}
`,
    )
    .join('');
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: hello}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: hello}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hello}
spec:
  host: ${HOST}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 200ms, baseEjectionTime: 1s, maxEjectionPercent: 100}
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: ${localityLbSetting}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: retry}
spec:
  hosts: [${RETRY_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: hello}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: retry}
spec:
  host: ${RETRY_HOST}
  trafficPolicy:
    # Priorities by locality, but no replica is ever ejected here: only retries move traffic.
    outlierDetection: {consecutive5xxErrors: 1000}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: retry}
spec:
  hosts: [${RETRY_HOST}]
  http:
  - match: [{uri: {prefix: /remote/}}]
    route: [{destination: {host: ${RETRY_HOST}}}]
    retries: {attempts: 3, retryOn: 5xx, retryRemoteLocalities: true}
  - route: [{destination: {host: ${RETRY_HOST}}}]
    retries: {attempts: 3, retryOn: 5xx}
${entries}`;
}

describe('locality load balancing through a Weft sidecar', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-locality-'));
  const replicas: Replica[] = [];
  let cp: ControlPlane;
  let proxy: ProxyProcess | undefined;
  let outbound = 0;

  const call = async (): Promise<string> => {
    const r = await request(outbound, { path: '/', headers: { host: HOST } });
    return r.status === 200 ? r.body : `status ${r.status}`;
  };
  const sample = async (n: number): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const who = await call();
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    return counts;
  };
  const only = (counts: Map<string, number>): string[] => [...counts.keys()].sort();
  const writeConfig = (setting: string): void =>
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(replicas, setting));

  before(async () => {
    for (const [name, locality] of REPLICAS) {
      const replica: Replica = { name, locality, port: 0, failing: false, hits: [], close: async () => {} };
      const up = await startHttpUpstream({
        handler: (req, res) => {
          req.resume();
          replica.hits.push(req.url ?? '');
          const flaky = (req.url ?? '').includes('/flaky') && locality === 'region1/zone1';
          if (replica.failing || flaky) res.writeHead(503).end('down');
          else res.writeHead(200).end(name);
        },
      });
      replica.port = up.port;
      replica.close = () => up.close();
      replicas.push(replica);
    }
    writeConfig('{failover: [{from: region1, to: region2}]}');
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    outbound = await closedPort();
    proxy = spawnWeftProxy([
      ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
      ...['--admin-port', String(await closedPort()), '--prometheus-port', String(await closedPort())],
      ...['--health-port', String(await closedPort())],
      ...['--type', 'sidecar', '--name', 'client-1', '--namespace', 'default', '--ip', '127.0.0.1'],
      ...['--labels', 'app=client', '--locality', 'region1/zone1'],
      ...['--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
    ]);
    await waitFor(async () => (await call()).startsWith('z1'), 20_000, 'the sidecar to route');
  });

  after(async () => {
    proxy?.kill();
    await proxy?.exited;
    await cp?.stop();
    for (const r of replicas) await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const byName = (name: string): Replica => replicas.find((r) => r.name === name)!;

  it('keeps every request in the caller zone while its replicas are healthy', async () => {
    assert.deepEqual(only(await sample(200)), ['z1-a', 'z1-b']);
  });

  it('fails over to the same region, then to the failover region, and comes back', async () => {
    byName('z1-a').failing = true;
    byName('z1-b').failing = true;
    // Each failing replica answers one 503 and is ejected; then zone2 (priority 1) takes everything.
    await waitFor(async () => (await call()) === 'z2', 10_000, 'failover to region1/zone2');
    assert.deepEqual(only(await sample(100)), ['z2']);

    byName('z2').failing = true;
    await waitFor(async () => (await call()) === 'r2', 10_000, 'failover to region2');
    assert.deepEqual(only(await sample(100)), ['r2']);

    for (const r of replicas) r.failing = false;
    // Ejections end after baseEjectionTime (1 s), checked every interval: the zone takes its traffic back.
    await waitFor(
      async () => only(await sample(20)).every((n) => n.startsWith('z1')),
      15_000,
      'traffic back in region1/zone1',
    );
    assert.deepEqual(only(await sample(100)), ['z1-a', 'z1-b']);
  });

  it('moves retries to another locality with retryRemoteLocalities, and not without it', async () => {
    const hitsOf = (p: string): string[] => replicas.filter((r) => r.hits.includes(p)).map((r) => r.name);
    // Both zone1 replicas answer 503 to /flaky: the first two tries use them (update_frequency 2, previous
    // hosts), the third leaves priority 0 and reaches region1/zone2.
    const remote = await request(outbound, { path: '/remote/flaky', headers: { host: RETRY_HOST } });
    assert.equal(remote.status, 200);
    assert.equal(remote.body, 'z2');
    assert.deepEqual(hitsOf('/remote/flaky').sort(), ['z1-a', 'z1-b', 'z2']);
    // Without it every try stays in the caller's zone, which fails them all.
    const local = await request(outbound, { path: '/local/flaky', headers: { host: RETRY_HOST } });
    assert.equal(local.status, 503);
    assert.deepEqual(hitsOf('/local/flaky').sort(), ['z1-a', 'z1-b']);
  });

  it('splits traffic by distribute weights once the rule changes', async () => {
    writeConfig(`{distribute: [{from: "region1/zone1/*", to: {"region1/zone1/*": 75, "region2/*": 25}}]}`);
    await waitFor(async () => (await sample(20)).has('r2'), 15_000, 'the distribute rule to arrive');
    const n = 400;
    const counts = await sample(n);

    // Localities are chosen by earliest deadline first: 3 of 4 picks to zone1, 1 to region2, never zone2.
    assert.equal(counts.get('z2'), undefined);
    assert.ok(Math.abs((counts.get('r2') ?? 0) - n / 4) <= 2, `region2 got ${counts.get('r2')} of ${n}`);
    assert.equal((counts.get('z1-a') ?? 0) + (counts.get('z1-b') ?? 0) + (counts.get('r2') ?? 0), n);
  });
});
