/**
 * DestinationRule connectionPool.tcp.idleTimeout as Istio translates it: the idle_timeout of the outbound
 * tcp_proxy chains sending to the rule's host (the rule's top-level policy only; for weighted routes, the
 * first destination's rule), never an inbound chain's; and, without http.idleTimeout, the idle timeout of the
 * host's clusters' upstream HTTP connections.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { compileListener } from '../../proxy/listener/compile.ts';
import type { ListenerConfig } from '../../proxy/listener/types.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const DB = 'db.data.svc.cluster.local';
const CACHE = 'cache.data.svc.cluster.local';
const QUEUE = 'queue.data.svc.cluster.local';
const LEGACY = 'legacy.data.svc.cluster.local';
const CLIENT = 'client.app.svc.cluster.local';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: data }
spec:
  hosts: [${DB}]
  addresses: [10.96.0.5]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP }]
  endpoints: [{ address: 10.2.0.1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: data }
spec:
  host: ${DB}
  trafficPolicy:
    connectionPool: { tcp: { idleTimeout: 90s } }
    portLevelSettings:
      - port: { number: 5432 }
        connectionPool: { tcp: { idleTimeout: 7s, maxConnections: 10 } }
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy: { connectionPool: { tcp: { idleTimeout: 5s }, http: { idleTimeout: 4s } } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cache, namespace: data }
spec:
  hosts: [${CACHE}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 6379, name: tcp-redis, protocol: TCP }]
  endpoints: [{ address: 10.2.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cache-here, namespace: app }
spec:
  host: ${CACHE}
  exportTo: ['.']
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 1m30ms } } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: queue, namespace: data }
spec:
  hosts: [${QUEUE}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: tcp-q, protocol: TCP }]
  endpoints: [{ address: 10.2.0.3 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: queue, namespace: data }
spec:
  hosts: [${QUEUE}]
  tcp:
    - route:
        - { destination: { host: ${DB}, port: { number: 5432 }, subset: v1 }, weight: 60 }
        - { destination: { host: ${CACHE}, port: { number: 6379 } }, weight: 40 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: legacy, namespace: data }
spec:
  hosts: [${LEGACY}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: legacy }]
  endpoints: [{ address: 10.2.0.4 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: legacy, namespace: data }
spec:
  host: ${LEGACY}
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 45s }, http: { idleTimeout: 20s } } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: client, namespace: app }
spec:
  hosts: [${CLIENT}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: tcp-in, protocol: TCP }]
  workloadSelector: { labels: { app: client } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: client, namespace: app }
spec:
  host: ${CLIENT}
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 11s } } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: app }
spec:
  ingress:
    - port: { number: 9000, protocol: TCP, name: tcp-in }
      defaultEndpoint: 127.0.0.1:9001
  egress:
    - { port: { number: 5432, protocol: TCP, name: tcp-pg }, bind: 127.0.0.1, hosts: ['data/*'] }
    - { port: { number: 6379, protocol: TCP, name: tcp-redis }, bind: 127.0.0.1, hosts: ['data/*'] }
    - { port: { number: 7000, protocol: TCP, name: tcp-q }, bind: 127.0.0.1, hosts: ['data/*'] }
    - { port: { number: 8000 }, bind: 127.0.0.1, hosts: ['data/*'] }
    - hosts: ['data/*', './*']
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - { port: { number: 5432, name: tcp-pg, protocol: TCP }, hosts: ['*'] }
    - { port: { number: 6379, name: tcp-redis, protocol: TCP }, hosts: ['*'] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  tcp:
    - match: [{ port: 5432 }]
      route: [{ destination: { host: ${DB}, port: { number: 5432 } } }]
    - match: [{ port: 6379 }]
      route: [{ destination: { host: ${CACHE}, port: { number: 6379 } } }]
`;

function routerNode(): ProxyNode {
  return {
    ...sidecarNode('ingress', 'istio-system'),
    id: 'router~10.9.0.9~ingress-1.istio-system~istio-system.svc.cluster.local',
    type: 'router',
    labels: { istio: 'ingressgateway' },
  };
}

type Chain = { name?: string; filters: { name: string; typed_config: JsonObject }[] };

/** The tcp_proxy of a chain (its last filter), as generated. */
function tcpProxyOf(chain: Chain | undefined): JsonObject {
  assert.ok(chain, 'the chain exists');
  const last = chain.filters.at(-1)!;
  assert.equal(last.name, 'envoy.filters.network.tcp_proxy');
  return last.typed_config;
}

/** What the proxy's own compiler makes of a generated listener. */
function compiled(listener: JsonObject): ListenerConfig {
  const { '@type': _type, ...normalized } = normalize('google.protobuf.Any', listener, 'l') as Record<
    string,
    never
  >;
  return compileListener(normalized, 'l');
}

function compiledIdleMs(listener: JsonObject, chain = 0): number {
  const c = compiled(listener);
  const filter = (chain < 0 ? c.defaultFilterChain! : c.filterChains[chain]).filters.at(-1)!;
  assert.equal(filter.kind, 'tcp_proxy');
  return filter.kind === 'tcp_proxy' ? filter.tcpProxy.idleTimeoutMs : -1;
}

describe('DestinationRule connectionPool.tcp.idleTimeout', () => {
  const gen = generatorFromYaml(CONFIG);
  const sidecar = gen.generate(sidecarNode('client', 'app'), TYPE_URL.listener, null);
  const listener = (name: string): JsonObject => {
    const l = sidecar.get(name);
    assert.ok(l, `listener ${name}`);
    return l;
  };
  const firstChain = (l: JsonObject): Chain => (l.filter_chains as Chain[])[0];

  it("sets a sidecar TCP egress chain's idle_timeout from the rule's top-level policy, not its port level or subsets", () => {
    const l = listener('127.0.0.1_5432');
    assert.equal(tcpProxyOf(firstChain(l)).idle_timeout, '90s');
    assert.equal(compiledIdleMs(l), 90_000);
  });

  it("takes the rule the proxy's namespace sees (an exportTo '.' rule in its own namespace)", () => {
    const l = listener('127.0.0.1_6379');
    assert.equal(tcpProxyOf(firstChain(l)).idle_timeout, '60.03s');
    assert.equal(compiledIdleMs(l), 60_030);
  });

  it("gives weighted tcp routes the first destination's rule (top level, not the subset's)", () => {
    const proxy = tcpProxyOf(firstChain(listener('127.0.0.1_7000')));
    assert.deepEqual((proxy.weighted_clusters as JsonObject).clusters, [
      { name: `outbound|5432|v1|${DB}`, weight: 60 },
      { name: `outbound|6379||${CACHE}`, weight: 40 },
    ]);
    assert.equal(proxy.idle_timeout, '90s');
  });

  it("sets the TCP side of a sniffed egress port, whose HTTP side keeps the cluster's", () => {
    const l = listener('127.0.0.1_8000');
    assert.equal(tcpProxyOf(l.default_filter_chain as Chain).idle_timeout, '45s');
    assert.equal(compiledIdleMs(l, -1), 45_000);
  });

  it("leaves the inbound chain alone, even with a rule for the workload's own service", () => {
    const inbound = [...sidecar.values()].find((l) => l.traffic_direction === 'INBOUND');
    assert.ok(inbound, 'an inbound listener');
    const proxy = tcpProxyOf(firstChain(inbound));
    assert.equal(proxy.cluster, 'inbound|9000||');
    assert.equal(proxy.idle_timeout, undefined);
    assert.equal(compiledIdleMs(inbound), 3_600_000);
  });

  it('sets the chains of a captured outbound listener (by VIP and port)', () => {
    const node = sidecarNode('client', 'app');
    const captured = gen.generate(
      { ...node, id: node.id.replace('client.', 'captured.'), metadata: { INTERCEPTION_MODE: 'REDIRECT' } },
      TYPE_URL.listener,
      null,
    );
    const l = captured.get('virtualOutbound');
    assert.ok(l, 'the captured outbound listener');
    const chain = (l.filter_chains as Chain[]).find((c) => c.name === '10.96.0.5_5432');
    assert.equal(tcpProxyOf(chain).idle_timeout, '90s');
  });

  it("sets a gateway's TCP server chains from the rules its namespace sees", () => {
    const gw = gen.generate(routerNode(), TYPE_URL.listener, null);
    const db = gw.get('0.0.0.0_5432');
    const cache = gw.get('0.0.0.0_6379');
    assert.ok(db && cache, 'both gateway TCP listeners');
    assert.equal(tcpProxyOf(firstChain(db)).idle_timeout, '90s');
    // The app namespace's rule is not exported to istio-system, and the cache has no other.
    assert.equal(tcpProxyOf(firstChain(cache)).idle_timeout, undefined);
    assert.equal(compiledIdleMs(cache), 3_600_000);
  });

  it("bounds idle upstream HTTP connections too, unless http.idleTimeout does (each cluster's merged policy)", () => {
    const clusters = gen.generate(sidecarNode('client', 'app'), TYPE_URL.cluster, null);
    const commonIdle = (name: string): unknown => {
      const c = clusters.get(name);
      assert.ok(c, `cluster ${name}`);
      const options = (c.typed_extension_protocol_options as Record<string, JsonObject> | undefined)?.[
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
      ];
      return (options?.common_http_protocol_options as JsonObject | undefined)?.idle_timeout;
    };
    // Port level replaces the rule's connection pool for 5432; the subset's http.idleTimeout wins over its tcp one.
    assert.equal(commonIdle(`outbound|5432||${DB}`), '7s');
    assert.equal(commonIdle(`outbound|5432|v1|${DB}`), '4s');
    assert.equal(commonIdle(`outbound|6379||${CACHE}`), '60.03s');
    assert.equal(commonIdle(`outbound|8000||${LEGACY}`), '20s');
    assert.equal(commonIdle(`outbound|7000||${QUEUE}`), undefined);
  });
});
