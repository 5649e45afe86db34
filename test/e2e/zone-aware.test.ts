/**
 * Zone-aware spill end to end (issue #8): the Weft control plane weighs the caller's own service spread over
 * zones against the destination's, and a Weft sidecar in region1/zone-a whose zone holds half of its
 * service's replicas but a sixth of the destination's capacity keeps only its fair share local, spills the
 * rest to the zone with room, and none to the zone without; a destination spread like the callers keeps
 * everything local; a local replica ejected by outlier detection gets nothing until it recovers.
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

const SMALL = 'small.default.svc.cluster.local';
const MATCHED = 'matched.default.svc.cluster.local';
const CLIENT = 'client.default.svc.cluster.local';

interface Replica {
  readonly name: string;
  readonly app: 'small' | 'matched';
  readonly zone: string;
  port: number;
  failing: boolean;
  close(): Promise<void>;
}

/**
 * The destinations: `small` has 1 of its 6 replicas in zone-a, 3 in zone-b, 2 in zone-c; `matched` is spread
 * like the callers.
 */
const PLACEMENT: Record<Replica['app'], Record<string, number>> = {
  small: { 'zone-a': 1, 'zone-b': 3, 'zone-c': 2 },
  matched: { 'zone-a': 3, 'zone-b': 1, 'zone-c': 2 },
};

/**
 * The callers' service: these WorkloadEntries (never called) plus the sidecar under test, which registers
 * itself in zone-a: 3 in zone-a, 1 in zone-b, 2 in zone-c.
 */
const CALLER_ENTRIES: readonly [string, string][] = [
  ['127.0.1.1', 'zone-a'],
  ['127.0.1.2', 'zone-a'],
  ['127.0.1.3', 'zone-b'],
  ['127.0.1.4', 'zone-c'],
  ['127.0.1.5', 'zone-c'],
];

const CALLERS = { 'zone-a': 3, 'zone-b': 1, 'zone-c': 2 };

function clientConfig(): string {
  const entries = CALLER_ENTRIES.map(
    ([address, zone], i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-${i}}
spec: {address: ${address}, locality: region1/${zone}, labels: {app: client}}
`,
  ).join('');
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: client}
spec:
  hosts: [${CLIENT}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: client}}
${entries}`;
}

function destinationConfig(replicas: readonly Replica[]): string {
  const services = (['small', 'matched'] as const)
    .map(
      (app) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${app}}
spec:
  hosts: [${app}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ${app}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${app}}
spec:
  host: ${app}.default.svc.cluster.local
  trafficPolicy:
    # Istio's default locality failover (outlier detection on, no localityLbSetting).
    outlierDetection: {consecutive5xxErrors: 1, interval: 200ms, baseEjectionTime: 1s, maxEjectionPercent: 100}
    loadBalancer: {simple: ROUND_ROBIN}
`,
    )
    .join('');
  const entries = replicas
    .map(
      (r) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${r.name}}
spec: {address: 127.0.0.1, ports: {http: ${r.port}}, locality: region1/${r.zone}, labels: {app: ${r.app}}}
`,
    )
    .join('');
  return services + entries;
}

/** The share of a zone-a caller's requests that stays in zone-a (Envoy's zone-aware formula). */
function expectedLocalShare(app: Replica['app']): number {
  const total = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);
  const capacity = PLACEMENT[app]['zone-a'] / total(PLACEMENT[app]);
  const callers = CALLERS['zone-a'] / total(CALLERS);
  return Math.min(1, capacity / callers);
}

describe('zone-aware spill through a Weft sidecar', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-zone-aware-'));
  const replicas: Replica[] = [];
  let cp: ControlPlane;
  let proxy: ProxyProcess | undefined;
  let outbound = 0;

  const call = async (host: string): Promise<string> => {
    const r = await request(outbound, { path: '/', headers: { host } });
    return r.status === 200 ? r.body : `status ${r.status}`;
  };
  /** Requests per zone (and per non-200 status). */
  const sample = async (host: string, n: number): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const who = await call(host);
      const zone = replicas.find((r) => r.name === who)?.zone ?? who;
      counts.set(zone, (counts.get(zone) ?? 0) + 1);
    }
    return counts;
  };

  before(async () => {
    for (const app of ['small', 'matched'] as const) {
      for (const [zone, count] of Object.entries(PLACEMENT[app])) {
        for (let i = 0; i < count; i++) {
          const replica: Replica = {
            name: `${app}-${zone}-${i}`,
            app,
            zone,
            port: 0,
            failing: false,
            close: async () => {},
          };
          const up = await startHttpUpstream({
            handler: (req, res) => {
              req.resume();
              if (replica.failing) res.writeHead(503).end('down');
              else res.writeHead(200).end(replica.name);
            },
          });
          replica.port = up.port;
          replica.close = () => up.close();
          replicas.push(replica);
        }
      }
    }
    // The callers' service first: the destinations appear only once the sidecar has registered itself as one
    // of its replicas, so the first view it gets of them already weighs the final spread of callers.
    fs.writeFileSync(path.join(dir, 'client.yaml'), clientConfig());
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    outbound = await closedPort();
    proxy = spawnWeftProxy([
      ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
      ...['--admin-port', String(await closedPort()), '--prometheus-port', String(await closedPort())],
      ...['--health-port', String(await closedPort())],
      ...['--type', 'sidecar', '--name', 'client-sidecar', '--namespace', 'default', '--ip', '127.0.0.1'],
      ...['--labels', 'app=client', '--locality', 'region1/zone-a'],
      ...['--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
    ]);
    const callerCount = CALLER_ENTRIES.length + 1;
    await waitFor(
      () => cp.mesh.endpoints(CLIENT, 8080).length === callerCount,
      20_000,
      'the sidecar to register as a client replica',
    );
    fs.writeFileSync(path.join(dir, 'destinations.yaml'), destinationConfig(replicas));
    await waitFor(
      async () => (await call(SMALL)).startsWith('small') && (await call(MATCHED)).startsWith('matched'),
      20_000,
      'the sidecar to route to both destinations',
    );
  });

  after(async () => {
    proxy?.kill();
    await proxy?.exited;
    await cp?.stop();
    for (const r of replicas) await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("keeps zone-a's fair share local and spills the rest to the zone with room", async () => {
    const n = 600;
    const share = expectedLocalShare('small');
    assert.equal(share, 1 / 3, 'zone-a has 1/6 of the capacity and 1/2 of the callers');
    const counts = await sample(SMALL, n);
    const local = counts.get('zone-a') ?? 0;
    // Within four standard deviations of a binomial draw (the proxy's choice is closer still: EDF on weights).
    const band = 4 * Math.sqrt(n * share * (1 - share));
    assert.ok(
      Math.abs(local - n * share) <= band,
      `zone-a served ${local} of ${n}, expected ${n * share} ± ${band.toFixed(1)}`,
    );
    // zone-b has room (1/2 of the capacity, 1/6 of the callers); zone-c has exactly what its callers need.
    assert.equal(counts.get('zone-c'), undefined, 'zone-c, without residual capacity, gets nothing');
    assert.equal(
      local + (counts.get('zone-b') ?? 0),
      n,
      `every request answered: ${JSON.stringify([...counts])}`,
    );
  });

  it('keeps everything local when zone-a has the capacity for its callers', async () => {
    assert.equal(expectedLocalShare('matched'), 1);
    const n = 600;
    const counts = await sample(MATCHED, n);
    const local = counts.get('zone-a') ?? 0;
    assert.ok(local >= 0.95 * n, `zone-a served ${local} of ${n}: ${JSON.stringify([...counts])}`);
  });

  it('sends nothing to an ejected local replica, keeps the split off zone-c, and comes back', async () => {
    const local = replicas.find((r) => r.app === 'small' && r.zone === 'zone-a')!;
    local.failing = true;
    // Its first 503 ejects it: zone-a's locality weight drops to nothing, and priority 0 (3 of 4 healthy,
    // × 1.4 overprovisioning) still takes all the load, so zone-b serves it all.
    await waitFor(
      async () => {
        const counts = await sample(SMALL, 10);
        return counts.size === 1 && counts.has('zone-b');
      },
      10_000,
      'zone-a ejected',
    );
    assert.deepEqual([...(await sample(SMALL, 100))], [['zone-b', 100]]);
    local.failing = false;
    await waitFor(async () => (await sample(SMALL, 12)).has('zone-a'), 15_000, 'zone-a back after ejection');
    const counts = await sample(SMALL, 300);
    assert.equal(counts.get('zone-c'), undefined);
    assert.ok(
      Math.abs((counts.get('zone-a') ?? 0) - 100) <= 4 * Math.sqrt(300 * (2 / 9)),
      JSON.stringify([...counts]),
    );
  });
});
