/** DestinationRule trafficPolicy.portLevelSettings (rule and subset level) → the clusters of each port. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const SHOP = 'shop.default.svc.cluster.local';
const UNLIMITED = 4294967295;

const SERVICE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [${SHOP}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - { number: 80, name: http, protocol: HTTP }
    - { number: 9090, name: http-admin, protocol: HTTP }
    - { number: 7070, name: http-lb-only, protocol: HTTP }
  endpoints: [{ address: 10.1.0.1, labels: { version: v1 } }, { address: 10.1.0.2, labels: { version: v2 } }]
`;

const RULE = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: default }
spec:
  host: ${SHOP}
  trafficPolicy:
    loadBalancer: { simple: RANDOM }
    outlierDetection: { consecutive5xxErrors: 5 }
    connectionPool: { tcp: { maxConnections: 100 } }
    portLevelSettings:
      - port: { number: 9090 }
        loadBalancer: { simple: ROUND_ROBIN }
        outlierDetection: { consecutive5xxErrors: 2, interval: 3s }
        connectionPool: { http: { http1MaxPendingRequests: 7 } }
      - port: { number: 7070 }
        loadBalancer: { simple: ROUND_ROBIN }
      - port: { number: 1234 }
        loadBalancer: { simple: ROUND_ROBIN }
  subsets:
    - name: v1
      labels: { version: v1 }
    - name: v2
      labels: { version: v2 }
      trafficPolicy:
        connectionPool: { tcp: { maxConnections: 10 } }
        portLevelSettings:
          - port: { number: 80 }
            loadBalancer: { simple: LEAST_REQUEST }
`;

interface Cluster {
  lb_policy?: string;
  outlier_detection?: Record<string, unknown>;
  circuit_breakers?: { thresholds: Record<string, unknown>[] };
}

const gen = generatorFromYaml(`${SERVICE}---${RULE}`);
const generated = gen.generate(sidecarNode('client', 'default'), TYPE_URL.cluster, null);
const clusters = generated as unknown as ReadonlyMap<string, Cluster>;

function clusterOf(port: number, subset = ''): Cluster {
  const c = clusters.get(`outbound|${port}|${subset}|${SHOP}`);
  assert.ok(c, `cluster outbound|${port}|${subset}|${SHOP}`);
  return c;
}

const threshold = (c: Cluster): Record<string, unknown> => c.circuit_breakers!.thresholds[0];

describe('DestinationRule portLevelSettings → clusters', () => {
  it("overrides the rule's loadBalancer, outlierDetection and connectionPool on that port's cluster only", () => {
    const admin = clusterOf(9090);
    assert.equal(admin.lb_policy, 'ROUND_ROBIN');
    assert.equal(admin.outlier_detection?.consecutive_5xx, 2);
    assert.equal(admin.outlier_detection?.interval, '3s');
    assert.equal(threshold(admin).max_pending_requests, 7);
    // connectionPool is replaced as a whole: the rule's tcp.maxConnections does not reach the port.
    assert.equal(threshold(admin).max_connections, UNLIMITED);

    const http = clusterOf(80);
    assert.equal(http.lb_policy, 'RANDOM');
    assert.equal(http.outlier_detection?.consecutive_5xx, 5);
    assert.equal(http.outlier_detection?.interval, undefined);
    assert.equal(threshold(http).max_connections, 100);
    assert.equal(threshold(http).max_pending_requests, UNLIMITED);
  });

  it("applies the rule's port-level settings to that port's subset clusters too", () => {
    const v1 = clusterOf(9090, 'v1');
    assert.equal(v1.lb_policy, 'ROUND_ROBIN');
    assert.equal(v1.outlier_detection?.consecutive_5xx, 2);
    assert.equal(threshold(v1).max_pending_requests, 7);
    const v1Http = clusterOf(80, 'v1');
    assert.equal(v1Http.lb_policy, 'RANDOM');
    assert.equal(v1Http.outlier_detection?.consecutive_5xx, 5);
  });

  it("lets a subset's trafficPolicy override the rule's port level, and its own port level win on its port", () => {
    // Port 9090: the rule's port level, then the subset's connectionPool over it.
    const admin = clusterOf(9090, 'v2');
    assert.equal(admin.lb_policy, 'ROUND_ROBIN');
    assert.equal(admin.outlier_detection?.consecutive_5xx, 2);
    assert.equal(threshold(admin).max_connections, 10);
    assert.equal(threshold(admin).max_pending_requests, UNLIMITED);
    // Port 80: the subset's port-level loadBalancer, on the subset's cluster of that port only.
    assert.equal(clusterOf(80, 'v2').lb_policy, 'LEAST_REQUEST');
    assert.equal(clusterOf(7070, 'v2').lb_policy, 'ROUND_ROBIN');
    assert.equal(clusterOf(80, 'v1').lb_policy, 'RANDOM');
  });

  it('ignores port-level settings for a port the service does not have', () => {
    assert.deepEqual([...clusters.keys()].filter((name) => name.includes(SHOP)).sort(), [
      `outbound|7070|v1|${SHOP}`,
      `outbound|7070|v2|${SHOP}`,
      `outbound|7070||${SHOP}`,
      `outbound|80|v1|${SHOP}`,
      `outbound|80|v2|${SHOP}`,
      `outbound|80||${SHOP}`,
      `outbound|9090|v1|${SHOP}`,
      `outbound|9090|v2|${SHOP}`,
      `outbound|9090||${SHOP}`,
    ]);
    assert.equal(clusterOf(80).lb_policy, 'RANDOM');
  });

  it('does not inherit the rule-level settings a port level leaves out (Istio: defaults apply)', () => {
    // Port 7070's port level sets only loadBalancer.
    const lbOnly = clusterOf(7070);
    assert.equal(lbOnly.lb_policy, 'ROUND_ROBIN');
    assert.equal(lbOnly.outlier_detection, undefined);
    assert.equal(threshold(lbOnly).max_connections, UNLIMITED);
  });
});
