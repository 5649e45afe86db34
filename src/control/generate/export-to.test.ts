import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import type { MeshGenerator } from './generator.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: public, namespace: a }
spec:
  hosts: [public.a.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: private, namespace: a }
spec:
  hosts: [private.a.svc.cluster.local]
  exportTo: ['.']
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: for-b, namespace: a }
spec:
  hosts: [for-b.a.svc.cluster.local]
  exportTo: [b]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.3 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: public-local, namespace: a }
spec:
  hosts: [public.a.svc.cluster.local]
  exportTo: ['.']
  http: [{ timeout: 7s, route: [{ destination: { host: public.a.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: public-local, namespace: a }
spec:
  host: public.a.svc.cluster.local
  exportTo: ['.']
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`;

const proxy = (namespace: string): ProxyNode => sidecarNode(`client-${namespace}`, namespace);

function generator(): MeshGenerator {
  return generatorFromYaml(CONFIG);
}

const cluster = (host: string): string => `outbound|80||${host}.a.svc.cluster.local`;

describe('exportTo (ServiceEntry, VirtualService, DestinationRule)', () => {
  const gen = generator();
  const clustersOf = (ns: string): Map<string, Record<string, unknown>> =>
    gen.generate(proxy(ns), TYPE_URL.cluster, null) as Map<string, Record<string, unknown>>;

  it('shows a service only to the namespaces it is exported to', () => {
    const names = (ns: string): string[] =>
      [...clustersOf(ns).keys()].filter((n) => n.startsWith('outbound|')).sort();
    assert.deepEqual(names('a'), [cluster('private'), cluster('public')]);
    assert.deepEqual(names('b'), [cluster('for-b'), cluster('public')]);
    assert.deepEqual(names('c'), [cluster('public')]);
  });

  it('applies a VirtualService and a DestinationRule exported to "." only in their own namespace', () => {
    const route = (ns: string): Record<string, unknown> => {
      const rc = gen.generate(proxy(ns), TYPE_URL.route, new Set(['virtualOutbound'])).get('virtualOutbound');
      assert.ok(rc, `virtualOutbound for ${ns}`);
      const vhosts = rc.virtual_hosts as {
        domains: string[];
        routes: { route: Record<string, unknown> }[];
      }[];
      const vh = vhosts.find((v) => v.domains.includes('public.a.svc.cluster.local:80'));
      assert.ok(vh, `a virtual host for public in ${ns}`);
      return vh.routes[0].route;
    };
    assert.equal(route('a').timeout, '7s');
    assert.equal(route('b').timeout, '0s', "namespace b gets the default route, not a's VirtualService");
    assert.equal(clustersOf('a').get(cluster('public'))?.lb_policy, 'RANDOM');
    assert.notEqual(clustersOf('b').get(cluster('public'))?.lb_policy, 'RANDOM');
  });
});
