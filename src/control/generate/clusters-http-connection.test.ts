/**
 * How outbound clusters hold their HTTP connections: connectionPool.http.h2UpgradePolicy and MeshConfig
 * h2UpgradePolicy (clusters that speak HTTP/2), http.useClientProtocol and sniffed ports (clusters that keep each
 * request's protocol), http.http2KeepAlive, tcp.maxConnectionDuration.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';
import type { FromYamlOptions } from './testing.ts';

const SECURITY = {
  trustDomain: 'cluster.local',
  trustBundle: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
};

function service(name: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - { number: 80, name: http, protocol: HTTP }
    - { number: 81, name: web }
    - { number: 82, name: tcp, protocol: TCP }
    - { number: 83, name: grpc, protocol: GRPC }
  endpoints: [{ address: 10.1.0.1, labels: { version: v1 } }]
`;
}

const RULES = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: up, namespace: default }
spec:
  host: up.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { h2UpgradePolicy: UPGRADE, http2KeepAlive: { interval: 30s } } }
    portLevelSettings:
      - port: { number: 82 }
        connectionPool: { http: { h2UpgradePolicy: DO_NOT_UPGRADE } }
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy:
        connectionPool: { http: { h2UpgradePolicy: DO_NOT_UPGRADE } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: keep, namespace: default }
spec:
  host: keep.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { h2UpgradePolicy: DO_NOT_UPGRADE }, tcp: { maxConnectionDuration: 90s } }
`;

const CLIENT_PROTOCOL = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: client, namespace: default }
spec:
  host: client.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { useClientProtocol: true, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 50 } }
`;

const YAML = [
  service('up'),
  service('keep'),
  service('plain'),
  service('client'),
  RULES,
  CLIENT_PROTOCOL,
].join('---');

type Cluster = Record<string, unknown>;

function clustersWith(opts: FromYamlOptions): (name: string) => Cluster {
  const generated = generatorFromYaml(YAML, opts).generate(
    sidecarNode('client', 'default'),
    TYPE_URL.cluster,
    null,
  ) as unknown as ReadonlyMap<string, Cluster>;
  return (name) => {
    const c = generated.get(name);
    assert.ok(c, name);
    return c;
  };
}

const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** 'h2', 'h1', 'downstream' (each request's own) or 'none' (no protocol options: the proxy's HTTP/1.1 default). */
function upstreamProtocol(c: Cluster): string {
  const typed = c.typed_extension_protocol_options as Record<string, Record<string, unknown>> | undefined;
  if (typed?.[HTTP_OPTIONS]?.use_downstream_protocol_config !== undefined) return 'downstream';
  const explicit = typed?.[HTTP_OPTIONS]?.explicit_http_config as Record<string, unknown> | undefined;
  if (explicit === undefined) return 'none';
  return explicit.http2_protocol_options !== undefined ? 'h2' : 'h1';
}

function alpn(c: Cluster): unknown {
  const ts = c.transport_socket_matches as { transport_socket: { typed_config: Cluster } }[] | undefined;
  const ctx = ts?.[0].transport_socket.typed_config.common_tls_context as Cluster | undefined;
  return ctx?.alpn_protocols;
}

const name = (host: string, port: number, subset = ''): string =>
  `outbound|${port}|${subset}|${host}.default.svc.cluster.local`;

describe('h2UpgradePolicy → outbound clusters', () => {
  it("upgrades a rule's HTTP and sniffed ports, not where its port level or subset says DO_NOT_UPGRADE", () => {
    const cluster = clustersWith({});
    assert.equal(upstreamProtocol(cluster(name('up', 80))), 'h2');
    // The rule vouches that the undeclared port is HTTP, as Istio reads it.
    assert.equal(upstreamProtocol(cluster(name('up', 81))), 'h2');
    assert.equal(upstreamProtocol(cluster(name('up', 82))), 'none');
    assert.equal(upstreamProtocol(cluster(name('up', 83))), 'h2');
    assert.equal(upstreamProtocol(cluster(name('up', 80, 'v1'))), 'none');
    // Without a rule or mesh setting nothing changes; gRPC ports are HTTP/2 anyway.
    assert.equal(upstreamProtocol(cluster(name('plain', 80))), 'none');
    assert.equal(upstreamProtocol(cluster(name('plain', 83))), 'h2');
  });

  it('upgrades every declared HTTP port with MeshConfig UPGRADE, unless a rule says DO_NOT_UPGRADE', () => {
    const meshConfig: MeshConfig = { h2UpgradePolicy: 'UPGRADE' };
    const cluster = clustersWith({ meshConfig });
    assert.equal(upstreamProtocol(cluster(name('plain', 80))), 'h2');
    // A sniffed port may carry anything: the mesh-wide setting leaves it (and TCP) alone.
    assert.equal(upstreamProtocol(cluster(name('plain', 81))), 'downstream');
    assert.equal(upstreamProtocol(cluster(name('plain', 82))), 'none');
    // HTTP/1.1 (its protocol options carry maxConnectionDuration).
    assert.equal(upstreamProtocol(cluster(name('keep', 80))), 'h1');
    assert.equal(upstreamProtocol(cluster(name('up', 80, 'v1'))), 'none');
    assert.equal(
      upstreamProtocol(
        clustersWith({ meshConfig: { h2UpgradePolicy: 'DO_NOT_UPGRADE' } })(name('plain', 80)),
      ),
      'none',
    );
  });

  it('offers h2 as the ALPN of an upgraded mTLS hop, so the server side picks its HTTP/2 codec', () => {
    const cluster = clustersWith({ security: SECURITY });
    assert.deepEqual(alpn(cluster(name('up', 80))), ['h2']);
    assert.deepEqual(alpn(cluster(name('plain', 80))), ['http/1.1']);
    assert.deepEqual(alpn(cluster(name('up', 80, 'v1'))), ['http/1.1']);
  });
});

describe('connectionPool.tcp.maxConnectionDuration → outbound clusters', () => {
  it("becomes the cluster's max_connection_duration, on its HTTP/1.1 protocol options", () => {
    const cluster = clustersWith({});
    const options = (c: Cluster): Record<string, unknown> | undefined =>
      (c.typed_extension_protocol_options as Record<string, Record<string, unknown>> | undefined)?.[
        HTTP_OPTIONS
      ];
    assert.deepEqual(options(cluster(name('keep', 80)))?.common_http_protocol_options, {
      max_connection_duration: '90s',
    });
    assert.equal(upstreamProtocol(cluster(name('keep', 80))), 'h1');
    assert.equal(options(cluster(name('plain', 80))), undefined);
  });
});

describe('connectionPool.http.http2KeepAlive → outbound clusters', () => {
  const h2Options = (c: Cluster): Record<string, unknown> | undefined =>
    (
      (c.typed_extension_protocol_options as Record<string, Record<string, Record<string, unknown>>>)?.[
        HTTP_OPTIONS
      ]?.explicit_http_config as Record<string, Record<string, unknown>> | undefined
    )?.http2_protocol_options;

  it("becomes connection_keepalive on the rule's HTTP/2 clusters, the timeout defaulting to the interval", () => {
    const cluster = clustersWith({});
    assert.deepEqual(h2Options(cluster(name('up', 80)))?.connection_keepalive, {
      interval: '30s',
      timeout: '30s',
    });
    assert.deepEqual(h2Options(cluster(name('up', 83)))?.connection_keepalive, {
      interval: '30s',
      timeout: '30s',
    });
    // Not upgraded: HTTP/1.1 has no PING.
    assert.equal(upstreamProtocol(cluster(name('up', 80, 'v1'))), 'none');
    assert.equal(h2Options(cluster(name('plain', 83)))?.connection_keepalive, undefined);
  });
});

describe('sniffed ports and connectionPool.http.useClientProtocol → clusters that keep the request protocol', () => {
  it('gives a sniffed port, and every port of a rule with useClientProtocol, use_downstream_protocol_config', () => {
    const cluster = clustersWith({});
    assert.equal(upstreamProtocol(cluster(name('plain', 81))), 'downstream');
    assert.equal(upstreamProtocol(cluster(name('plain', 80))), 'none');
    // useClientProtocol wins over an upgrade, and its HTTP/2 side keeps the rule's HTTP/2 options.
    const c = cluster(name('client', 80));
    assert.equal(upstreamProtocol(c), 'downstream');
    const typed = c.typed_extension_protocol_options as Record<string, Record<string, unknown>>;
    assert.deepEqual(typed[HTTP_OPTIONS].use_downstream_protocol_config, {
      http_protocol_options: {},
      http2_protocol_options: { max_concurrent_streams: 50 },
    });
  });
});
