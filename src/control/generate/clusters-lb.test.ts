/** The DestinationRule annotation weft.dev/load-balancer → the cluster's load balancer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import { combineFiles, loadText } from '../../config/load.ts';
import { compileCluster } from '../../proxy/upstream/compile.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import { outboundClusters } from './clusters.ts';

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
`;

function rule(annotation: string | undefined, trafficPolicy = ''): string {
  const meta =
    annotation === undefined
      ? '{name: reviews}'
      : `{name: reviews, annotations: {weft.dev/load-balancer: ${annotation}}}`;
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: ${meta}
spec:
  host: reviews.default.svc.cluster.local
${trafficPolicy}  subsets: [{name: v1, labels: {version: v1}}]
`;
}

function of<K extends string>(resources: readonly IstioResource[], kind: K): IstioResource<never>[] {
  return resources.filter((r) => r.kind === kind) as IstioResource<never>[];
}

function clusters(dr: string, proxyless = false) {
  const { resources, diagnostics } = combineFiles([loadText('t.yaml', `${SERVICE}---\n${dr}`)]);
  assert.deepEqual(diagnostics, []);
  const source = new ConfigDiscoverySource();
  source.update(of(resources, 'ServiceEntry'), of(resources, 'WorkloadEntry'));
  const snap = buildSnapshot({
    version: 1,
    virtualServices: [],
    destinationRules: of(resources, 'DestinationRule'),
    gateways: [],
    sidecars: [],
    discovery: aggregate([source]),
  });
  return outboundClusters(snap.services, 'default', snap, { proxyless });
}

describe('DestinationRule weft.dev/load-balancer annotation', () => {
  it('peak-ewma selects PEAK_EWMA on the port and subset clusters, which the proxy accepts', () => {
    const out = clusters(rule('peak-ewma'));
    assert.equal(out.length, 2);
    for (const c of out) {
      assert.equal(c.lb_policy, undefined);
      assert.ok(c.load_balancing_policy, JSON.stringify(c));
      const compiled = compileCluster(normalize('google.protobuf.Any', c, 'cluster'), 'cluster');
      assert.equal(compiled.lbPolicy, 'PEAK_EWMA');
    }
  });

  it('overrides loadBalancer.simple, but not consistentHash', () => {
    const simple = clusters(rule('peak-ewma', '  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n'));
    assert.ok(simple.every((c) => c.load_balancing_policy !== undefined && c.lb_policy === undefined));
    const hashed = clusters(
      rule('peak-ewma', '  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n'),
    );
    assert.ok(hashed.every((c) => c.lb_policy === 'RING_HASH' && c.load_balancing_policy === undefined));
  });

  it('is ignored for proxyless gRPC clients, for unknown values, and when absent', () => {
    assert.ok(clusters(rule('peak-ewma'), true).every((c) => c.lb_policy === 'ROUND_ROBIN'));
    assert.ok(clusters(rule('fastest')).every((c) => c.lb_policy === 'LEAST_REQUEST'));
    assert.ok(clusters(rule(undefined)).every((c) => c.lb_policy === 'LEAST_REQUEST'));
  });
});
