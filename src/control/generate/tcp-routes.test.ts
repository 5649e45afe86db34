import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileListener } from '../../proxy/listener/compile.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const DB = 'db.data.svc.cluster.local';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: data }
spec:
  hosts: [${DB}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 3306, name: tcp-mysql, protocol: TCP }]
  endpoints: [{ address: 10.2.0.1, labels: { version: v1 } }, { address: 10.2.0.2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: data }
spec:
  host: ${DB}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: data }
spec:
  hosts: [${DB}]
  tcp:
    - match: [{ port: 3306, sourceLabels: { canary: 'true' } }]
      route: [{ destination: { host: ${DB}, subset: v2 } }]
    - route:
        - { destination: { host: ${DB}, subset: v1 }, weight: 80 }
        - { destination: { host: ${DB}, subset: v2 }, weight: 20 }
        - { destination: { host: ${DB}, subset: v1 }, weight: 0 }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: app }
spec:
  egress:
    - port: { number: 3306, protocol: TCP, name: tcp-mysql }
      bind: 127.0.0.1
      hosts: ['data/${DB}']
`;

describe('VirtualService tcp routes on a Sidecar egress TCP port', () => {
  const gen = generatorFromYaml(CONFIG);
  const tcpProxyOf = (labels: Record<string, string>): Record<string, unknown> => {
    const listeners = gen.generate(sidecarNode('client', 'app', labels), TYPE_URL.listener, null);
    const l = listeners.get('127.0.0.1_3306');
    assert.ok(l, 'a listener for the egress port');
    // The proxy's own compiler accepts what was generated.
    const { '@type': _type, ...normalized } = normalize('google.protobuf.Any', l, 'l') as Record<
      string,
      never
    >;
    compileListener(normalized, 'l');
    const chains = l.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[];
    // tcp_proxy is the chain's last filter (Istio's stats filter runs before it).
    return chains[0].filters.at(-1)!.typed_config;
  };

  it('splits by weight (weight 0 left out) for the catch-all route', () => {
    const cfg = tcpProxyOf({});
    assert.equal(cfg.cluster, undefined);
    assert.deepEqual(cfg.weighted_clusters, {
      clusters: [
        { name: `outbound|3306|v1|${DB}`, weight: 80 },
        { name: `outbound|3306|v2|${DB}`, weight: 20 },
      ],
    });
  });

  it('sends a proxy whose labels match the first route to its destination', () => {
    assert.equal(tcpProxyOf({ canary: 'true' }).cluster, `outbound|3306|v2|${DB}`);
  });
});
