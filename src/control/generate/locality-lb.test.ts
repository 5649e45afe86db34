import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { TYPE_URL } from '../xds/types.ts';
import type { ProxyNode } from '../xds/types.ts';
import { localityMatches } from './locality-lb.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const SERVICE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: helloworld, namespace: sample }
spec:
  hosts: [helloworld.sample.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5000, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: helloworld } }
`;

const ENTRIES: [string, string, string][] = [
  ['10.0.1.1', 'region1/zone1', 'a'],
  ['10.0.1.2', 'region1/zone1', 'b'],
  ['10.0.2.1', 'region1/zone2', 'a'],
  ['10.0.3.1', 'region2/zone3', 'a'],
  ['10.0.4.1', 'region3/zone4', 'b'],
];

const WORKLOADS = ENTRIES.map(
  ([address, locality, rack], i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: hw-${i}, namespace: sample }
spec:
  address: ${address}
  locality: ${locality}
  labels: { app: helloworld, version: v${(i % 2) + 1}, rack: ${rack} }
`,
).join('');

function rule(trafficPolicy: string, subsets = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: helloworld, namespace: sample }
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
${trafficPolicy.replace(/^/gm, '    ')}
${subsets}`;
}

const OUTLIER = `outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m }`;
const CLUSTER = 'outbound|5000||helloworld.sample.svc.cluster.local';

function caller(locality: string, labels: Record<string, string> = {}): ProxyNode {
  const [region = '', zone = '', subZone = ''] = locality.split('/');
  return { ...sidecarNode('curl', 'sample', labels), locality: { region, zone, subZone } };
}

interface Group {
  locality: string;
  priority: number;
  weight: number;
  addresses: string[];
}

function groups(yaml: string, proxy: ProxyNode, cluster = CLUSTER): Group[] {
  const cla = generatorFromYaml(yaml)
    .generate(proxy, TYPE_URL.endpoint, new Set([cluster]))
    .get(cluster);
  assert.ok(cla, `an assignment for ${cluster}`);
  return (cla.endpoints as JsonObject[]).map((g) => {
    const l = g.locality as JsonObject;
    return {
      locality: [l.region as string | undefined, l.zone as string | undefined].filter(Boolean).join('/'),
      priority: (g.priority as number | undefined) ?? 0,
      weight: g.load_balancing_weight as number,
      addresses: (g.lb_endpoints as JsonObject[]).map(
        (e) =>
          ((e.endpoint as JsonObject).address as { socket_address: { address: string } }).socket_address
            .address,
      ),
    };
  });
}

function priorities(list: Group[]): Record<string, number> {
  return Object.fromEntries(list.map((g) => [g.locality, g.priority]));
}

describe('DestinationRule localityLbSetting → per-caller EDS priorities and weights', () => {
  it("failover (Istio's default): priorities by locality match, failover target before other regions", () => {
    const yaml =
      SERVICE +
      WORKLOADS +
      rule(`${OUTLIER}\nloadBalancer:\n  localityLbSetting:\n    failover: [{ from: region1, to: region2 }]`);
    // Istio's task: 0 same zone, (1 same zone other sub-zone: none here), 2 same region, 3 failover target, 4 other.
    assert.deepEqual(priorities(groups(yaml, caller('region1/zone1'))), {
      'region1/zone1': 0,
      'region1/zone2': 1,
      'region2/zone3': 2,
      'region3/zone4': 3,
    });
    // Without a failover rule for its region, every other region ranks the same.
    assert.deepEqual(priorities(groups(yaml, caller('region2/zone3'))), {
      'region2/zone3': 0,
      'region1/zone1': 1,
      'region1/zone2': 1,
      'region3/zone4': 1,
    });
  });

  it('applies the default failover whenever outlierDetection is set, and nothing without it', () => {
    const withOutlier = groups(SERVICE + WORKLOADS + rule(OUTLIER), caller('region1/zone2'));
    assert.deepEqual(priorities(withOutlier), {
      'region1/zone2': 0,
      'region1/zone1': 1,
      'region2/zone3': 2,
      'region3/zone4': 2,
    });
    const without = groups(
      SERVICE + WORKLOADS + rule('loadBalancer: { simple: ROUND_ROBIN }'),
      caller('region1/zone2'),
    );
    assert.ok(without.every((g) => g.priority === 0));
    const disabled = groups(
      SERVICE + WORKLOADS + rule(`${OUTLIER}\nloadBalancer: { localityLbSetting: { enabled: false } }`),
      caller('region1/zone2'),
    );
    assert.ok(disabled.every((g) => g.priority === 0));
  });

  it('failoverPriority orders by the caller labels the endpoints share, in the order listed', () => {
    const yaml =
      SERVICE +
      WORKLOADS +
      rule(`${OUTLIER}\nloadBalancer:\n  localityLbSetting:\n    failoverPriority: [version, rack]`);
    const list = groups(yaml, caller('region9/zoneX', { version: 'v1', rack: 'a' }));
    const byAddress = Object.fromEntries(list.flatMap((g) => g.addresses.map((a) => [a, g.priority])));
    // v1 = entries 0, 2, 4; rack a = 0, 2, 3. Both match: 0; version only: 1; neither: 2.
    assert.deepEqual(byAddress, {
      '10.0.1.1': 0,
      '10.0.2.1': 0,
      '10.0.4.1': 1,
      '10.0.1.2': 2,
      '10.0.3.1': 2,
    });
    // A topology label compares localities; `key=value` names the value itself.
    const topo =
      SERVICE +
      WORKLOADS +
      rule(
        `${OUTLIER}\nloadBalancer:\n  localityLbSetting:\n    failoverPriority: [topology.kubernetes.io/region, rack=b]`,
      );
    const t = groups(topo, caller('region1/zone2', { rack: 'a' }));
    const tb = Object.fromEntries(t.flatMap((g) => g.addresses.map((a) => [a, g.priority])));
    assert.deepEqual(tb, { '10.0.1.2': 0, '10.0.1.1': 1, '10.0.2.1': 1, '10.0.3.1': 2, '10.0.4.1': 2 });
  });

  it('distribute: weights from the rule matching the caller, unnamed localities dropped, weighted cluster', () => {
    const yaml =
      SERVICE +
      WORKLOADS +
      rule(`loadBalancer:
  localityLbSetting:
    distribute:
      - from: region1/zone1/*
        to: { "region1/zone1/*": 80, "region2/*": 20 }
      - from: "region1/*"
        to: { "region1/*": 100 }`);
    const z1 = groups(yaml, caller('region1/zone1'));
    assert.deepEqual(
      z1.map((g) => [g.locality, g.priority, g.weight]),
      [
        ['region1/zone1', 0, 80_000],
        ['region2/zone3', 0, 20_000],
      ],
    );
    // Two localities share one pattern's percent.
    const z2 = groups(yaml, caller('region1/zone2'));
    assert.deepEqual(
      z2.map((g) => [g.locality, g.weight]),
      [
        ['region1/zone1', 50_000],
        ['region1/zone2', 50_000],
      ],
    );
    // No rule for the caller: every locality, weighted by its endpoints.
    const other = groups(yaml, caller('region3/zone4'));
    assert.equal(other.length, 4);
    assert.deepEqual(
      other.map((g) => g.weight),
      [2, 1, 1, 1],
    );
    const cluster = generatorFromYaml(yaml)
      .generate(caller('region1/zone1'), TYPE_URL.cluster, null)
      .get(CLUSTER);
    assert.deepEqual((cluster?.common_lb_config as JsonObject | undefined)?.locality_weighted_lb_config, {});
  });

  it('a subset policy replaces the rule load balancer settings, as Istio merges them', () => {
    const subsets = `  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: false } } }
    - name: v2
      labels: { version: v2 }`;
    const yaml = SERVICE + WORKLOADS + rule(OUTLIER, subsets);
    const v1 = groups(yaml, caller('region1/zone1'), 'outbound|5000|v1|helloworld.sample.svc.cluster.local');
    assert.ok(v1.every((g) => g.priority === 0));
    const v2 = groups(yaml, caller('region1/zone1'), 'outbound|5000|v2|helloworld.sample.svc.cluster.local');
    assert.deepEqual(priorities(v2), { 'region1/zone1': 0, 'region2/zone3': 1 });
  });

  it('shares one assignment object between callers of one locality, and only then', () => {
    const generator = generatorFromYaml(SERVICE + WORKLOADS + rule(OUTLIER));
    const get = (p: ProxyNode): JsonObject | undefined =>
      generator.generate(p, TYPE_URL.endpoint, new Set([CLUSTER])).get(CLUSTER);
    const a = get({ ...caller('region1/zone1'), id: 'sidecar~10.9.0.2~a.sample~sample.svc.cluster.local' });
    const b = get({ ...caller('region1/zone1'), id: 'sidecar~10.9.0.3~b.sample~sample.svc.cluster.local' });
    const c = get(caller('region1/zone2'));
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  it("matches locality patterns as Istio does ('*' or a missing part matches anything)", () => {
    const l = { region: 'r1', zone: 'z1', subZone: 's1' };
    assert.ok(localityMatches(l, 'r1'));
    assert.ok(localityMatches(l, 'r1/*'));
    assert.ok(localityMatches(l, 'r1/z1/s1'));
    assert.ok(localityMatches(l, '*'));
    assert.ok(!localityMatches(l, 'r1/z2'));
    assert.ok(!localityMatches(l, 'r2/*'));
  });
});
