import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../../core/json.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const SECURITY = {
  trustDomain: 'cluster.local',
  trustBundle: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
};

const SERVICES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: shop}
spec:
  address: 10.0.0.1
  serviceAccount: api
  labels: {app: api, security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-legacy, namespace: shop}
spec:
  address: 10.0.0.2
  serviceAccount: legacy
  labels: {app: api}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [ext.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: https, protocol: HTTPS}]
  endpoints: [{address: 192.0.2.1}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: shop}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 8080, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:9080
  - port: {number: 9000, name: tcp, protocol: TCP}
    defaultEndpoint: 127.0.0.1:9001
`;

function peerAuth(name: string, namespace: string, spec: string): string {
  return `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec: ${spec}
`;
}

const api = sidecarNode('api', 'shop', { app: 'api' });

function listeners(yaml: string, security: typeof SECURITY | null = SECURITY): Map<string, JsonObject> {
  const gen = generatorFromYaml(SERVICES + yaml, security ? { security } : {});
  return gen.generate(api, TYPE_URL.listener, null) as Map<string, JsonObject>;
}

/** The inbound listener of a port: its chains' transport protocols and whether they terminate TLS. */
function inboundShape(yaml: string, port: number, security: typeof SECURITY | null = SECURITY): string[] {
  const l = [...listeners(yaml, security).values()].find(
    (x) => (x.address as { socket_address: { port_value: number } }).socket_address.port_value === port,
  );
  assert.ok(l, `an inbound listener on ${port}`);
  return (l.filter_chains as JsonObject[]).map((c) => {
    const m = String(
      (c.filter_chain_match as { transport_protocol?: string } | undefined)?.transport_protocol ?? 'any',
    );
    return `${m}${c.transport_socket ? '+mtls' : ''}`;
  });
}

describe('PeerAuthentication on inbound listeners, with Istio precedence', () => {
  const cases: [string, string, number, string[]][] = [
    ['nothing: PERMISSIVE', '', 8080, ['tls+mtls', 'raw_buffer']],
    ['mesh-wide STRICT', peerAuth('default', 'istio-system', '{mtls: {mode: STRICT}}'), 8080, ['tls+mtls']],
    [
      'the namespace beats the mesh',
      peerAuth('default', 'istio-system', '{mtls: {mode: STRICT}}') +
        peerAuth('default', 'shop', '{mtls: {mode: PERMISSIVE}}'),
      8080,
      ['tls+mtls', 'raw_buffer'],
    ],
    [
      'the workload beats the namespace',
      peerAuth('default', 'shop', '{mtls: {mode: STRICT}}') +
        peerAuth('api', 'shop', '{selector: {matchLabels: {app: api}}, mtls: {mode: DISABLE}}'),
      8080,
      ['any'],
    ],
    [
      'UNSET inherits from the namespace',
      peerAuth('default', 'shop', '{mtls: {mode: STRICT}}') +
        peerAuth('api', 'shop', '{selector: {matchLabels: {app: api}}, mtls: {mode: UNSET}}'),
      8080,
      ['tls+mtls'],
    ],
    [
      'a port-level mode beats the workload mode, on that port only (by the application port too)',
      peerAuth(
        'api',
        'shop',
        "{selector: {matchLabels: {app: api}}, mtls: {mode: STRICT}, portLevelMtls: {'9001': {mode: DISABLE}}}",
      ),
      9000,
      ['any'],
    ],
    [
      '... and the other port keeps the workload mode',
      peerAuth(
        'api',
        'shop',
        "{selector: {matchLabels: {app: api}}, mtls: {mode: STRICT}, portLevelMtls: {'9001': {mode: DISABLE}}}",
      ),
      8080,
      ['tls+mtls'],
    ],
    [
      "another namespace's policy does not apply",
      peerAuth('default', 'other', '{mtls: {mode: STRICT}}'),
      8080,
      ['tls+mtls', 'raw_buffer'],
    ],
    [
      'a selector that does not match does not apply',
      peerAuth('db', 'shop', '{selector: {matchLabels: {app: db}}, mtls: {mode: DISABLE}}'),
      8080,
      ['tls+mtls', 'raw_buffer'],
    ],
  ];
  for (const [name, yaml, port, chains] of cases) {
    it(name, () => assert.deepEqual(inboundShape(yaml, port), chains));
  }

  it('without a CA, inbound listeners stay plaintext whatever the policy', () => {
    assert.deepEqual(inboundShape(peerAuth('default', 'shop', '{mtls: {mode: STRICT}}'), 8080, null), [
      'any',
    ]);
  });

  it('an mTLS chain requires a client certificate from the trust domain, offers h2, and the HCM appends XFCC', () => {
    const l = [...listeners(peerAuth('default', 'shop', '{mtls: {mode: STRICT}}')).values()].find(
      (x) => x.name === '10.9.0.1_8080',
    )!;
    const chain = (l.filter_chains as JsonObject[])[0];
    const tls = (chain.transport_socket as JsonObject).typed_config as JsonObject;
    assert.equal(tls.require_client_certificate, true);
    const common = tls.common_tls_context as JsonObject;
    assert.deepEqual(common.alpn_protocols, ['h2', 'http/1.1']);
    assert.deepEqual(common.tls_certificate_sds_secret_configs, [
      {
        name: 'default',
        sds_config: {
          api_config_source: {
            api_type: 'GRPC',
            transport_api_version: 'V3',
            grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
          },
          resource_api_version: 'V3',
        },
      },
    ]);
    const validation = common.combined_validation_context as JsonObject;
    assert.deepEqual(validation.default_validation_context, {
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }],
    });
    const hcm = (chain.filters as JsonObject[])[0].typed_config as JsonObject;
    assert.equal(hcm.forward_client_cert_details, 'APPEND_FORWARD');
  });
});

describe('in-band TCP peer metadata exchange (istio-peer-exchange)', () => {
  const TCP_SERVICE = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: shop}
spec:
  hosts: [db.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp-db, protocol: TCP}, {number: 5433, name: other}]
  endpoints: [{address: 10.0.0.9, labels: {security.istio.io/tlsMode: istio}}]
`;
  const filterNames = (chain: JsonObject): string[] =>
    (chain.filters as { name: string }[]).map((f) => f.name);
  const alpnOf = (socket: JsonObject): unknown =>
    ((socket.typed_config as JsonObject).common_tls_context as JsonObject).alpn_protocols;

  it("inbound: a TCP port's mTLS chain accepts the exchange and runs it before tcp_proxy; HTTP chains do not", () => {
    const all = [...listeners(peerAuth('default', 'shop', '{mtls: {mode: STRICT}}')).values()];
    const tcp = (all.find((x) => x.name === '10.9.0.1_9000')!.filter_chains as JsonObject[])[0];
    assert.deepEqual(alpnOf(tcp.transport_socket as JsonObject), ['istio-peer-exchange', 'h2', 'http/1.1']);
    assert.deepEqual(filterNames(tcp).slice(0, 1), ['istio.metadata_exchange']);
    assert.equal(filterNames(tcp).at(-1), 'envoy.filters.network.tcp_proxy');
    const http = (all.find((x) => x.name === '10.9.0.1_8080')!.filter_chains as JsonObject[])[0];
    assert.ok(!filterNames(http).includes('istio.metadata_exchange'));
  });

  it('inbound without a CA: no exchange filter (nothing negotiates it)', () => {
    const all = [...listeners('', null).values()];
    const tcp = (all.find((x) => x.name === '10.9.0.1_9000')!.filter_chains as JsonObject[])[0];
    assert.ok(!filterNames(tcp).includes('istio.metadata_exchange'));
  });

  it('outbound: auto mTLS to a declared TCP port offers the exchange; an undeclared port does not', () => {
    const gen = generatorFromYaml(SERVICES + TCP_SERVICE, { security: SECURITY });
    const clusters = gen.generate(sidecarNode('web', 'shop'), TYPE_URL.cluster, null) as Map<
      string,
      JsonObject
    >;
    const mutualOf = (name: string): JsonObject => {
      const c = clusters.get(name);
      assert.ok(c, name);
      return (c.transport_socket_matches as JsonObject[])[0].transport_socket as JsonObject;
    };
    assert.deepEqual(alpnOf(mutualOf('outbound|5432||db.shop.svc.cluster.local')), [
      'istio-peer-exchange',
      'istio',
    ]);
    assert.equal(alpnOf(mutualOf('outbound|5433||db.shop.svc.cluster.local')), undefined);
  });
});

describe('outbound transport sockets (auto mTLS and DestinationRule tls)', () => {
  const client = sidecarNode('web', 'shop');
  const clusterOf = (yaml: string, name: string, security: typeof SECURITY | null = SECURITY): JsonObject => {
    const gen = generatorFromYaml(SERVICES + yaml, security ? { security } : {});
    const c = (gen.generate(client, TYPE_URL.cluster, null) as Map<string, JsonObject>).get(name);
    assert.ok(c, name);
    return c;
  };
  const API = 'outbound|8080||api.shop.svc.cluster.local';
  const EXT = 'outbound|443||ext.example.com';

  it('auto mTLS: workloads labelled with a sidecar get ISTIO_MUTUAL, checked against the service accounts', () => {
    const c = clusterOf('', API);
    assert.equal(c.transport_socket, undefined);
    const matches = c.transport_socket_matches as JsonObject[];
    assert.deepEqual(
      matches.map((m) => [m.name, m.match]),
      [
        ['tlsMode-istio', { tlsMode: 'istio' }],
        ['tlsMode-disabled', {}],
      ],
    );
    const tls = (matches[0].transport_socket as JsonObject).typed_config as JsonObject;
    assert.equal(tls.sni, 'outbound_.8080_._.api.shop.svc.cluster.local');
    const common = tls.common_tls_context as JsonObject;
    assert.deepEqual(common.alpn_protocols, ['http/1.1']);
    assert.deepEqual(
      ((common.combined_validation_context as JsonObject).default_validation_context as JsonObject)
        .match_typed_subject_alt_names,
      [
        { san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/shop/sa/api' } },
        { san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/shop/sa/legacy' } },
      ],
    );
  });

  it('the endpoints say which of them have a sidecar', () => {
    const gen = generatorFromYaml(SERVICES, { security: SECURITY });
    const cla = (gen.generate(client, TYPE_URL.endpoint, new Set([API])) as Map<string, JsonObject>).get(
      API,
    )!;
    const eps = (cla.endpoints as JsonObject[]).flatMap((g) => g.lb_endpoints as JsonObject[]);
    const byAddress = Object.fromEntries(
      eps.map((e) => [
        ((e.endpoint as JsonObject).address as { socket_address: { address: string } }).socket_address
          .address,
        (e.metadata as { filter_metadata: JsonObject } | undefined)?.filter_metadata,
      ]),
    );
    // Only the one with a sidecar carries the tlsMode match. An HTTP port's endpoints carry no workload metadata:
    // callers learn the workload from the exchanged metadata header.
    assert.deepEqual(byAddress['10.0.0.1'], { 'envoy.transport_socket_match': { tlsMode: 'istio' } });
    assert.equal(byAddress['10.0.0.2']?.['envoy.transport_socket_match'], undefined);
  });

  it('no CA, or an external service: plaintext unless the DestinationRule says otherwise', () => {
    assert.equal(clusterOf('', API, null).transport_socket_matches, undefined);
    assert.equal(clusterOf('', EXT).transport_socket_matches, undefined);
    assert.equal(clusterOf('', EXT).transport_socket, undefined);
  });

  const rule = (host: string, tls: string): string => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: shop}
spec:
  host: ${host}
  trafficPolicy: {tls: ${tls}}
`;

  it('DISABLE turns mTLS off; ISTIO_MUTUAL applies to every endpoint, with its own SANs if given', () => {
    const off = clusterOf(rule('api.shop.svc.cluster.local', '{mode: DISABLE}'), API);
    assert.equal(off.transport_socket_matches, undefined);
    assert.equal(off.transport_socket, undefined);
    const on = clusterOf(
      rule(
        'api.shop.svc.cluster.local',
        '{mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/shop/sa/x]}',
      ),
      API,
    );
    assert.equal(on.transport_socket_matches, undefined);
    const common = ((on.transport_socket as JsonObject).typed_config as JsonObject)
      .common_tls_context as JsonObject;
    assert.deepEqual(
      ((common.combined_validation_context as JsonObject).default_validation_context as JsonObject)
        .match_typed_subject_alt_names,
      [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/shop/sa/x' } }],
    );
  });

  it('SIMPLE and MUTUAL originate TLS to an external service with files, SNI and SANs', () => {
    const simple = clusterOf(
      rule(
        'ext.example.com',
        '{mode: SIMPLE, caCertificates: /etc/ca.pem, sni: ext.example.com, subjectAltNames: [ext.example.com]}',
      ),
      EXT,
    );
    const t = (simple.transport_socket as JsonObject).typed_config as JsonObject;
    assert.equal(t.sni, 'ext.example.com');
    assert.deepEqual(t.common_tls_context, {
      validation_context: {
        trusted_ca: { filename: '/etc/ca.pem' },
        match_subject_alt_names: [{ exact: 'ext.example.com' }],
      },
    });
    const mutual = clusterOf(
      rule(
        'ext.example.com',
        '{mode: MUTUAL, caCertificates: /etc/ca.pem, clientCertificate: /etc/c.pem, privateKey: /etc/k.pem}',
      ),
      EXT,
    );
    assert.deepEqual(
      (((mutual.transport_socket as JsonObject).typed_config as JsonObject).common_tls_context as JsonObject)
        .tls_certificates,
      [{ certificate_chain: { filename: '/etc/c.pem' }, private_key: { filename: '/etc/k.pem' } }],
    );
  });
});
