/**
 * Zone-aware spill of locality failover (issue #8): the split formula itself, the per-caller EDS views it
 * yields (priority 0 = the caller region's zones that share the load, with their weights), the cases where
 * it must change nothing, and how a change of the caller's own service reaches the views.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import { combineFiles, loadText } from '../../config/load.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate, changedEndpointKeys } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { DiscoveryState, Endpoint } from '../model/types.ts';
import type { JsonObject } from '../../core/json.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { endpointClusterNames } from './endpoints.ts';
import { MeshGenerator } from './generator.ts';
import { callerSpreadOf, zoneAwareWeights } from './locality-lb.ts';

const zones = (entries: Record<string, number>): Map<string, number> => new Map(Object.entries(entries));
const record = (m: Map<string, number> | undefined): Record<string, number> | undefined =>
  m && Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));

/** Each zone's share of the caller's traffic under the weights. */
function shares(weights: Map<string, number>): Record<string, number> {
  const total = [...weights.values()].reduce((a, b) => a + b, 0);
  return Object.fromEntries([...weights].map(([z, w]) => [z, w / total]));
}

describe('zone-aware split (Envoy zone-aware routing, computed centrally)', () => {
  it('keeps u/c local and spills the rest by residual capacity: callers 50/25/25, capacity 1/3 each', () => {
    const capacity = zones({ a: 1, b: 1, c: 1 });
    const callers = zones({ a: 2, b: 1, c: 1 });
    // a keeps (1/3)/(1/2) = 2/3; the 1/3 left goes to b and c, each with room 1/3 - 1/4 = 1/12: 1/6 each.
    assert.deepEqual(record(zoneAwareWeights(capacity, callers, 'a')), { a: 4, b: 1, c: 1 });
    // b and c have more capacity than callers (1/3 > 1/4): everything local, as Istio's failover has it.
    assert.equal(zoneAwareWeights(capacity, callers, 'b'), undefined);
    assert.equal(zoneAwareWeights(capacity, callers, 'c'), undefined);
  });

  it('gives nothing to a zone without residual capacity, and balances every replica', () => {
    // Callers 3/1/2 of 6, capacity 1/3/2 of 6: a keeps 1/3; b has room 1/2 - 1/6, c none (1/3 - 1/3).
    const capacity = zones({ a: 1, b: 3, c: 2 });
    const callers = zones({ a: 3, b: 1, c: 2 });
    const fromA = zoneAwareWeights(capacity, callers, 'a')!;
    assert.deepEqual(record(fromA), { a: 1, b: 2 });
    // Load per zone when every caller replica sends one unit: a's callers spill, b's and c's stay local.
    const load = { a: 3 * shares(fromA).a, b: 3 * shares(fromA).b + 1, c: 2 };
    assert.deepEqual(load, { a: 1, b: 3, c: 2 }, 'each zone serves exactly its capacity');
  });

  it('weighs capacity by endpoint weight, and sends everything away from a zone with none', () => {
    // Capacity by weight: a 1 of 4 (one replica of weight 1), b 3 of 4 (one replica of weight 3).
    assert.deepEqual(record(zoneAwareWeights(zones({ a: 1, b: 3 }), zones({ a: 1, b: 1 }), 'a')), {
      a: 1,
      b: 1,
    });
    assert.equal(
      zoneAwareWeights(zones({ a: 3, b: 1 }), zones({ a: 1, b: 1 }), 'a'),
      undefined,
      'ratio 3/2 ≥ 1',
    );
    // Zone a has callers and no capacity: its traffic goes where there is room (c: 3/4 - 1/3; b: 1/4 - 1/3 < 0).
    assert.deepEqual(record(zoneAwareWeights(zones({ b: 1, c: 3 }), zones({ a: 1, b: 1, c: 1 }), 'a')), {
      c: 1,
    });
    // A caller zone with no caller replicas (the proxy is not one of its service's endpoints): nothing to say.
    assert.equal(zoneAwareWeights(zones({ a: 1, b: 5 }), zones({ b: 1, c: 1 }), 'a'), undefined);
  });

  it('keeps the ratios (to a millionth) when exact weights would be too large to send', () => {
    const capacity = zones({ a: 1_000_003, b: 999_983, c: 2_000_029 });
    const callers = zones({ a: 5_003, b: 1_999, c: 3_001 });
    const w = zoneAwareWeights(capacity, callers, 'a')!;
    const total = [...w.values()].reduce((x, y) => x + y, 0);
    assert.ok(total <= 1_000_003, `weights sum to ${total}`);
    const U = 1_000_003 + 999_983 + 2_000_029;
    const C = 5_003 + 1_999 + 3_001;
    const keep = 1_000_003 / U / (5_003 / C);
    assert.ok(Math.abs(shares(w).a - keep) < 1e-5, `a keeps ${shares(w).a}, want ${keep}`);
    const rb = 999_983 / U - 1_999 / C;
    const rc = 2_000_029 / U - 3_001 / C;
    assert.ok(rb > 0 && rc > 0);
    assert.ok(Math.abs(shares(w).b - ((1 - keep) * rb) / (rb + rc)) < 1e-5);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Per-caller views through the generator.

const HOST = 'hello.sample.svc.cluster.local';
const CLUSTER = `outbound|5000||${HOST}`;

const SERVICES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello, namespace: sample }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5000, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: client, namespace: sample }
spec:
  hosts: [client.sample.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }, { number: 9090, name: grpc, protocol: GRPC }]
  workloadSelector: { labels: { app: client } }
`;

function rule(trafficPolicy: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hello, namespace: sample }
spec:
  host: ${HOST}
  trafficPolicy:
${trafficPolicy.replace(/^/gm, '    ')}
`;
}

const OUTLIER = 'outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m }';

let addressSeq = 0;
/** `count` WorkloadEntries of `app` in `locality`. */
function replicas(app: string, locality: string, count: number, extra = ''): string {
  let out = '';
  for (let i = 0; i < count; i++) {
    addressSeq += 1;
    const address = `10.${app === 'hello' ? 1 : 2}.${Math.floor(addressSeq / 250)}.${addressSeq % 250}`;
    out += `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${app}-${addressSeq}, namespace: sample }
spec: { address: ${address}, locality: ${locality}, labels: { app: ${app} }${extra} }
`;
  }
  return out;
}

/** The destination: 1 in zone-a, 3 in zone-b, 2 in zone-c of region1; 2 in region2. */
const HELLO =
  replicas('hello', 'region1/zone-a', 1) +
  replicas('hello', 'region1/zone-b', 3) +
  replicas('hello', 'region1/zone-c', 2) +
  replicas('hello', 'region2/zone-x', 2);

/** The callers' own service: 3 in zone-a, 1 in zone-b, 2 in zone-c (and some elsewhere, which do not count). */
const CLIENTS =
  replicas('client', 'region1/zone-a', 3) +
  replicas('client', 'region1/zone-b', 1) +
  replicas('client', 'region1/zone-c', 2) +
  replicas('client', 'region2/zone-x', 4);

function resources(text: string): IstioResource[] {
  const { resources: list, diagnostics } = combineFiles([loadText('test.yaml', text)]);
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return list;
}

function of<K extends string>(list: readonly IstioResource[], kind: K): IstioResource<never>[] {
  return list.filter((r) => r.kind === kind) as IstioResource<never>[];
}

/** Builds snapshots the way the control plane does: full, or endpoint-only since the last one. */
class Mesh {
  readonly source = new ConfigDiscoverySource();
  discovery: DiscoveryState | undefined;
  snap!: MeshSnapshot;
  version = 0;

  constructor(yaml: string) {
    this.rebuild(yaml, true);
  }

  rebuild(yaml: string, full: boolean): Set<string> {
    const all = resources(yaml);
    this.source.update(of(all, 'ServiceEntry'), of(all, 'WorkloadEntry'));
    const before = this.discovery;
    this.discovery = aggregate([this.source], before);
    const changed = before ? changedEndpointKeys(before, this.discovery) : new Set<string>();
    this.version += 1;
    this.snap =
      full || !this.snap
        ? buildSnapshot({
            version: this.version,
            destinationRules: of(all, 'DestinationRule'),
            discovery: this.discovery,
          })
        : buildSnapshot({ version: this.version, discovery: this.discovery, endpointsOnlySince: this.snap });
    return changed;
  }
}

let proxySeq = 0;
function proxy(
  locality: string,
  labels: Record<string, string> = { app: 'client' },
  type: ProxyNode['type'] = 'sidecar',
): ProxyNode {
  const [region = '', zone = '', subZone = ''] = locality.split('/');
  proxySeq += 1;
  return {
    id: `${type}~10.9.0.${proxySeq}~p${proxySeq}.sample~sample.svc.cluster.local`,
    type,
    name: `p${proxySeq}`,
    namespace: 'sample',
    dnsDomain: 'sample.svc.cluster.local',
    ipAddresses: [`10.9.0.${proxySeq}`],
    labels,
    serviceAccount: 'default',
    workloadName: `p${proxySeq}`,
    locality: { region, zone, subZone },
    cluster: '',
    metadata: {},
  };
}

const SUBSCRIPTIONS = new Map<string, ReadonlySet<string>>();

/** locality → [priority, weight, endpoint count] of a caller's assignment. */
function view(
  generator: MeshGenerator,
  p: ProxyNode,
  cluster = CLUSTER,
): Record<string, [number, number, number]> {
  // One set per cluster, as the ADS server hands every proxy with the same subscription the same set: the
  // generator then shares results between callers it deems equal, which is what must not mix views up.
  let names = SUBSCRIPTIONS.get(cluster);
  if (!names) SUBSCRIPTIONS.set(cluster, (names = new Set([cluster])));
  const cla = generator.generate(p, TYPE_URL.endpoint, names).get(cluster);
  assert.ok(cla, `an assignment for ${cluster}`);
  return Object.fromEntries(
    (cla.endpoints as JsonObject[]).map((g) => {
      const l = g.locality as JsonObject;
      const name = [l.region, l.zone, l.sub_zone]
        .filter((x): x is string => typeof x === 'string' && x !== '')
        .join('/');
      return [
        name,
        [
          (g.priority as number | undefined) ?? 0,
          g.load_balancing_weight as number,
          (g.lb_endpoints as []).length,
        ],
      ];
    }),
  );
}

const generatorOf = (yaml: string): MeshGenerator => {
  const mesh = new Mesh(yaml);
  return new MeshGenerator(() => mesh.snap);
};

/** Istio's failover view for a caller in region1/zone-a with this destination (what it was before #8). */
const ISTIO_FROM_A = {
  'region1/zone-a': [0, 1, 1],
  'region1/zone-b': [1, 3, 3],
  'region1/zone-c': [1, 2, 2],
  'region2/zone-x': [2, 2, 2],
};

describe('zone-aware failover views', () => {
  it("spills a small zone's excess to the zones with room, in priority 0; the rest keep failover order", () => {
    const g = generatorOf(SERVICES + HELLO + CLIENTS + rule(OUTLIER));
    // Callers 3/1/2 and capacity 1/3/2 in region1: zone-a keeps 1/3, zone-b takes 2/3, zone-c has no room
    // and stays the first failover target; region2 after it.
    assert.deepEqual(view(g, proxy('region1/zone-a')), {
      'region1/zone-a': [0, 1, 1],
      'region1/zone-b': [0, 2, 3],
      'region1/zone-c': [1, 2, 2],
      'region2/zone-x': [2, 2, 2],
    });
    // Zone-b and zone-c callers have the capacity they need locally: Istio's view, everything local.
    assert.deepEqual(view(g, proxy('region1/zone-b')), {
      'region1/zone-b': [0, 3, 3],
      'region1/zone-a': [1, 1, 1],
      'region1/zone-c': [1, 2, 2],
      'region2/zone-x': [2, 2, 2],
    });
    assert.equal(view(g, proxy('region1/zone-c'))['region1/zone-c'][0], 0);
    assert.equal(
      Object.values(view(g, proxy('region1/zone-c'))).filter(([priority]) => priority === 0).length,
      1,
    );
  });

  it('computes the example of the issue exactly: callers 2/1/1, one replica per zone', () => {
    const hello =
      replicas('hello', 'region1/zone-a', 1) +
      replicas('hello', 'region1/zone-b', 1) +
      replicas('hello', 'region1/zone-c', 1);
    const clients =
      replicas('client', 'region1/zone-a', 2) +
      replicas('client', 'region1/zone-b', 1) +
      replicas('client', 'region1/zone-c', 1);
    const g = generatorOf(SERVICES + hello + clients + rule(OUTLIER));
    assert.deepEqual(view(g, proxy('region1/zone-a')), {
      'region1/zone-a': [0, 4, 1],
      'region1/zone-b': [0, 1, 1],
      'region1/zone-c': [0, 1, 1],
    });
  });

  it('leaves the view as it was with equal capacity, and for gateways, lone clients and callers without a service', () => {
    // Capacity spread like the callers (3/1/2): ratio 1 in every zone.
    const matched =
      replicas('hello', 'region1/zone-a', 3) +
      replicas('hello', 'region1/zone-b', 1) +
      replicas('hello', 'region1/zone-c', 2);
    const even = view(generatorOf(SERVICES + matched + CLIENTS + rule(OUTLIER)), proxy('region1/zone-a'));
    assert.deepEqual(even, {
      'region1/zone-a': [0, 3, 3],
      'region1/zone-b': [1, 1, 1],
      'region1/zone-c': [1, 2, 2],
    });

    const g = generatorOf(SERVICES + HELLO + CLIENTS + rule(OUTLIER));
    assert.deepEqual(
      view(g, proxy('region1/zone-a', { istio: 'ingressgateway', app: 'client' }, 'router')),
      ISTIO_FROM_A,
    );
    assert.deepEqual(
      view(g, proxy('region1/zone-a', { app: 'curl' })),
      ISTIO_FROM_A,
      'no service selects it',
    );
    // The only replica of its service, or all of them in one zone: nothing to balance against.
    const lone = generatorOf(SERVICES + HELLO + replicas('client', 'region1/zone-a', 1) + rule(OUTLIER));
    assert.deepEqual(view(lone, proxy('region1/zone-a')), ISTIO_FROM_A);
    const oneZone = generatorOf(SERVICES + HELLO + replicas('client', 'region1/zone-a', 5) + rule(OUTLIER));
    assert.deepEqual(view(oneZone, proxy('region1/zone-a')), ISTIO_FROM_A);
  });

  it('counts each healthy caller workload of the region once, whatever its ports', () => {
    const replica = (zone: string, address: string, healthy = true, region = 'r1'): Endpoint => ({
      address,
      port: 80,
      labels: {},
      locality: { region, zone, subZone: '' },
      weight: 1,
      serviceAccount: 'default',
      namespace: 'ns',
      workloadName: `w-${address}`,
      healthy,
    });
    const list = [
      replica('a', '10.0.0.1'),
      { ...replica('a', '10.0.0.1'), port: 81 },
      replica('a', '10.0.0.2'),
      replica('b', '10.0.0.3'),
      replica('b', '10.0.0.4', false),
      replica('c', '10.0.0.5', true, 'r2'),
    ];
    assert.deepEqual(callerSpreadOf(list, 'r1'), { byZone: zones({ a: 2, b: 1 }), key: 'a=2,b=1' });
    // Unhealthy replicas send nothing: with zone-b's out, the callers sit in one zone and nothing spills.
    assert.equal(callerSpreadOf(list.slice(0, 3).concat(list[4]), 'r1'), undefined);
  });

  it('lets explicit settings win: distribute, failoverPriority, enabled: false, no outlierDetection', () => {
    const distribute = generatorOf(
      SERVICES +
        HELLO +
        CLIENTS +
        rule(`loadBalancer:
  localityLbSetting:
    distribute: [{ from: "region1/zone-a/*", to: { "region1/zone-a/*": 90, "region1/zone-c/*": 10 } }]`),
    );
    assert.deepEqual(view(distribute, proxy('region1/zone-a')), {
      'region1/zone-a': [0, 90_000, 1],
      'region1/zone-c': [0, 10_000, 2],
    });
    const priority = generatorOf(
      SERVICES +
        HELLO +
        CLIENTS +
        rule(
          `${OUTLIER}\nloadBalancer: { localityLbSetting: { failoverPriority: [topology.kubernetes.io/zone] } }`,
        ),
    );
    const p = view(priority, proxy('region1/zone-a'));
    assert.deepEqual(
      Object.entries(p)
        .filter(([, [priorityOf]]) => priorityOf === 0)
        .map(([l]) => l),
      ['region1/zone-a'],
    );
    const disabled = generatorOf(
      SERVICES +
        HELLO +
        CLIENTS +
        rule(`${OUTLIER}\nloadBalancer: { localityLbSetting: { enabled: false } }`),
    );
    assert.ok(
      Object.values(view(disabled, proxy('region1/zone-a'))).every(([q, w, n]) => q === 0 && w === n),
    );
    const noOutlier = generatorOf(SERVICES + HELLO + CLIENTS + rule('loadBalancer: { simple: ROUND_ROBIN }'));
    assert.ok(
      Object.values(view(noOutlier, proxy('region1/zone-a'))).every(([q, w, n]) => q === 0 && w === n),
    );
  });

  it('splits a spilling zone over its sub-zones by capacity', () => {
    const hello =
      replicas('hello', 'region1/zone-a/rack1', 1) +
      replicas('hello', 'region1/zone-a/rack2', 1, ', weight: 2') +
      replicas('hello', 'region1/zone-b/rack1', 6);
    const clients =
      replicas('client', 'region1/zone-a/rack1', 3) + replicas('client', 'region1/zone-b/rack9', 1);
    const g = generatorOf(SERVICES + hello + clients + rule(OUTLIER));
    // Capacity a 3/9, b 6/9; callers a 3/4, b 1/4: a keeps (1/3)/(3/4) = 4/9, b takes 5/9. rack1 : rack2 = 1 : 2.
    assert.deepEqual(view(g, proxy('region1/zone-a/rack1')), {
      'region1/zone-a/rack1': [0, 4, 1],
      'region1/zone-a/rack2': [0, 8, 1],
      'region1/zone-b/rack1': [0, 15, 6],
    });
    // Without a spill the sub-zone keeps its own priority, as in Istio.
    assert.deepEqual(view(g, proxy('region1/zone-b/rack1')), {
      'region1/zone-b/rack1': [0, 6, 6],
      'region1/zone-a/rack1': [1, 1, 1],
      'region1/zone-a/rack2': [1, 2, 1],
    });
  });

  it('gives callers of one locality but different services their own views', () => {
    const others =
      replicas('other', 'region1/zone-a', 1) +
      replicas('other', 'region1/zone-b', 1) +
      replicas('other', 'region1/zone-c', 1);
    const yaml =
      SERVICES +
      HELLO +
      CLIENTS +
      others.replaceAll('10.2.', '10.3.') +
      `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: sample }
spec:
  hosts: [other.sample.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: other } }
` +
      rule(OUTLIER);
    const g = generatorOf(yaml);
    const client = view(g, proxy('region1/zone-a'));
    // Callers 1/1/1 against capacity 1/3/2: zone-a keeps (1/6)/(1/3) = 1/2; b has room 1/2 - 1/3, c 1/3 - 1/3.
    const other = view(g, proxy('region1/zone-a', { app: 'other' }));
    assert.deepEqual(client['region1/zone-b'], [0, 2, 3]);
    assert.deepEqual(other['region1/zone-a'], [0, 1, 1]);
    assert.deepEqual(other['region1/zone-b'], [0, 1, 3]);
    assert.equal(other['region1/zone-c'][0], 1);
    // And one object per distinct view: two clients in zone-a share theirs.
    const a = g.generate(proxy('region1/zone-a'), TYPE_URL.endpoint, new Set([CLUSTER])).get(CLUSTER);
    const b = g.generate(proxy('region1/zone-a'), TYPE_URL.endpoint, new Set([CLUSTER])).get(CLUSTER);
    assert.equal(a, b);
  });

  it("follows the caller's own service as it scales, through the endpoint fast path", () => {
    const mesh = new Mesh(SERVICES + HELLO + CLIENTS + rule(OUTLIER));
    const g = new MeshGenerator(() => mesh.snap);
    const p = proxy('region1/zone-a');
    const before = view(g, p);
    assert.equal(before['region1/zone-b'][0], 0);

    // Two zone-a callers go away: callers 1/1/2 of 4 against capacity 1/6 in zone-a: it still spills,
    // now keeping (1/6)/(1/4) = 2/3.
    const fewer =
      SERVICES +
      HELLO +
      CLIENTS.split('---\n')
        .filter((d, i) => i !== 1 && i !== 2)
        .join('---\n');
    const changed = mesh.rebuild(fewer + rule(OUTLIER), false);
    assert.deepEqual([...changed].sort(), [
      'client.sample.svc.cluster.local|8080',
      'client.sample.svc.cluster.local|9090',
    ]);
    const names = endpointClusterNames(changed, mesh.snap);
    assert.ok(names.has(CLUSTER), 'the destination of the callers whose spread changed is pushed');
    assert.deepEqual(view(g, p), {
      'region1/zone-a': [0, 2, 1],
      'region1/zone-b': [0, 1, 3],
      'region1/zone-c': [1, 2, 2],
      'region2/zone-x': [2, 2, 2],
    });

    // A change of the destination alone names only its own cluster, as before.
    const moved = mesh.rebuild(fewer.replace('10.1.0.1,', '10.1.0.201,') + rule(OUTLIER), false);
    assert.deepEqual([...endpointClusterNames(moved, mesh.snap)], [CLUSTER]);
  });
});
