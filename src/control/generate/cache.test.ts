/**
 * The generator's memoization: equal inputs give the very same objects (so the ADS server encodes each once),
 * a new configuration gives fresh ones, an endpoint-only snapshot rebuilds only the assignments whose endpoints
 * changed, and the endpoint fast path names exactly the clusters a change touches.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import { combineFiles, loadText } from '../../config/load.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate, changedEndpointKeys } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { DiscoveryState } from '../model/types.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { endpointClusterNames } from './endpoints.ts';
import { MeshGenerator } from './generator.ts';

const SERVICES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: shop }
spec:
  hosts: [web.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: web } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }, { number: 9090, name: grpc, protocol: GRPC }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

function workloadYaml(name: string, app: string, version: string, address: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop }
spec: { address: ${address}, labels: { app: ${app}, version: ${version} }, locality: eu/eu-a }
`;
}

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

function proxy(name: string, namespace: string): ProxyNode {
  return {
    id: `sidecar~10.9.0.1~${name}.${namespace}~${namespace}.svc.cluster.local`,
    type: 'sidecar',
    name,
    namespace,
    dnsDomain: `${namespace}.svc.cluster.local`,
    ipAddresses: ['10.9.0.1'],
    labels: { app: name },
    serviceAccount: 'default',
    workloadName: name,
    locality: { region: '', zone: '', subZone: '' },
    cluster: '',
    metadata: {},
  };
}

/** A small mesh whose workloads the test edits; builds snapshots the way the control plane does. */
class Mesh {
  readonly services = resources(SERVICES);
  readonly source = new ConfigDiscoverySource();
  discovery: DiscoveryState | undefined;
  snap!: MeshSnapshot;
  version = 0;

  constructor(workloads: string) {
    this.rebuild(workloads, true);
  }

  rebuild(workloads: string, full: boolean): Set<string> {
    const all = [...this.services, ...resources(workloads)];
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

const WORKLOADS = [
  workloadYaml('web-1', 'web', 'v1', '10.0.0.1'),
  workloadYaml('api-1', 'api', 'v1', '10.0.1.1'),
  workloadYaml('api-2', 'api', 'v2', '10.0.1.2'),
].join('---\n');

describe('generator memoization', () => {
  it('gives proxies with the same inputs the same objects, and other namespaces the same clusters', () => {
    const mesh = new Mesh(WORKLOADS);
    const generator = new MeshGenerator(() => mesh.snap);
    const a = proxy('client-a', 'shop');
    const b = proxy('client-b', 'shop');
    const other = proxy('client-c', 'other');
    const cdsA = generator.generate(a, TYPE_URL.cluster, null);
    assert.equal(generator.generate(b, TYPE_URL.cluster, null), cdsA, 'one cluster map per namespace');
    const cdsOther = generator.generate(other, TYPE_URL.cluster, null);
    for (const [name, cluster] of cdsA) assert.equal(cdsOther.get(name), cluster, `${name}: same object`);
    assert.equal(
      generator.generate(b, TYPE_URL.listener, null),
      generator.generate(a, TYPE_URL.listener, null),
    );
    const names = new Set([...cdsA.keys()]);
    const edsA = generator.generate(a, TYPE_URL.endpoint, names);
    assert.equal(edsA.size, names.size);
    const edsB = generator.generate(b, TYPE_URL.endpoint, names);
    for (const [name, cla] of edsA) assert.equal(edsB.get(name), cla);
  });

  it('rebuilds everything for a new configuration, and only changed assignments for endpoint-only snapshots', () => {
    const mesh = new Mesh(WORKLOADS);
    const generator = new MeshGenerator(() => mesh.snap);
    const p = proxy('client', 'shop');
    const cds = generator.generate(p, TYPE_URL.cluster, null);
    const names = new Set([...cds.keys()]);
    const eds = generator.generate(p, TYPE_URL.endpoint, names);

    // api-2 moves: an endpoint-only snapshot.
    const moved = WORKLOADS.replace('10.0.1.2', '10.0.1.22');
    mesh.rebuild(moved, false);
    assert.equal(generator.generate(p, TYPE_URL.cluster, null), cds, 'clusters survive an endpoint change');
    const after = generator.generate(p, TYPE_URL.endpoint, names);
    const changed = [...names].filter((n) => after.get(n) !== eds.get(n)).sort();
    assert.deepEqual(changed, [
      'outbound|8080|v2|api.shop.svc.cluster.local',
      'outbound|8080||api.shop.svc.cluster.local',
      'outbound|9090|v2|api.shop.svc.cluster.local',
      'outbound|9090||api.shop.svc.cluster.local',
    ]);
    assert.match(JSON.stringify(after.get('outbound|8080|v2|api.shop.svc.cluster.local')), /10\.0\.1\.22/);

    // The same content as a new configuration: new objects, equal content.
    mesh.rebuild(moved, true);
    const fresh = generator.generate(p, TYPE_URL.cluster, null);
    assert.notEqual(fresh, cds);
    for (const [name, cluster] of cds) {
      assert.notEqual(fresh.get(name), cluster);
      assert.deepEqual(fresh.get(name), cluster);
    }
  });

  it('names exactly the clusters an endpoint change touches, subsets included', () => {
    const mesh = new Mesh(WORKLOADS);
    const changed = mesh.rebuild(WORKLOADS.replace('10.0.0.1', '10.0.0.11'), false);
    assert.deepEqual([...changed], ['web.shop.svc.cluster.local|80']);
    assert.deepEqual(
      [...endpointClusterNames(changed, mesh.snap)],
      ['outbound|80||web.shop.svc.cluster.local'],
    );
    const apiChanged = mesh.rebuild(
      WORKLOADS.replace('10.0.0.1', '10.0.0.11').replace('10.0.1.1', '10.0.1.11'),
      false,
    );
    assert.deepEqual([...endpointClusterNames(apiChanged, mesh.snap)].sort(), [
      'outbound|8080|v1|api.shop.svc.cluster.local',
      'outbound|8080|v2|api.shop.svc.cluster.local',
      'outbound|8080||api.shop.svc.cluster.local',
      'outbound|9090|v1|api.shop.svc.cluster.local',
      'outbound|9090|v2|api.shop.svc.cluster.local',
      'outbound|9090||api.shop.svc.cluster.local',
    ]);
    // A workload no service selects changes nothing.
    const unchanged = mesh.rebuild(
      WORKLOADS.replace('10.0.0.1', '10.0.0.11').replace('10.0.1.1', '10.0.1.11') +
        '---\n' +
        workloadYaml('other-1', 'other', 'v1', '10.0.9.1'),
      false,
    );
    assert.equal(unchanged.size, 0);
  });
});
