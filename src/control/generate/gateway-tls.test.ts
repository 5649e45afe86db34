import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkSupport } from '../../config/analyze/index.ts';
import { loadConfig } from '../../config/load.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { compileListener } from '../../proxy/listener/compile.ts';
import { compileRouteConfiguration } from '../../proxy/router/compile.ts';
import { makeTestPki } from '../../proxy/tls/testing.ts';
import type { TestPki } from '../../proxy/tls/testing.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { downstreamTls } from './gateway-tls.ts';
import type { MeshGenerator } from './generator.ts';
import { generatorFromYaml } from './testing.ts';

type Obj = Record<string, unknown>;

function config(pki: TestPki): string {
  const cert = `serverCertificate: ${pki.server.certFile}, privateKey: ${pki.server.keyFile}`;
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com, other.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: tls, protocol: TLS }]
  endpoints: [{ address: 10.1.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 80, name: http, protocol: HTTP }
      hosts: [a.example.com]
      tls: { httpsRedirect: true }
    - port: { number: 443, name: https-a, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, ${cert}, minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256] }
    - port: { number: 443, name: https-b, protocol: HTTPS }
      hosts: [istio-system/b.example.com]
      tls: { mode: MUTUAL, ${cert}, caCertificates: ${pki.caFile}, subjectAltNames: [spiffe://cluster.local/ns/default/sa/client] }
    - port: { number: 443, name: https-a-again, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, ${cert} }
    - port: { number: 8443, name: tls-pass, protocol: TLS }
      hosts: ['*.example.com']
      tls: { mode: PASSTHROUGH }
    - port: { number: 9443, name: https-any, protocol: HTTPS }
      hosts: ['*']
      tls: { mode: OPTIONAL_MUTUAL, ${cert}, caCertificates: ${pki.caFile} }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a, namespace: istio-system }
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http: [{ route: [{ destination: { host: web.default.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b, namespace: istio-system }
spec:
  hosts: [b.example.com]
  gateways: [gw]
  http: [{ route: [{ destination: { host: web.default.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: pass, namespace: istio-system }
spec:
  hosts: [secure.example.com, other.example.com]
  gateways: [gw]
  tls:
    - match: [{ port: 8443, sniHosts: [secure.example.com] }]
      route: [{ destination: { host: secure.example.com, port: { number: 443 } } }]
    - match: [{ port: 9999, sniHosts: [other.example.com] }]
      route: [{ destination: { host: other.example.com, port: { number: 443 } } }]
    - match: [{ sniHosts: [other.example.com, not-admitted.org] }]
      route:
        - { destination: { host: other.example.com, port: { number: 443 } }, weight: 70 }
        - { destination: { host: secure.example.com, port: { number: 443 } }, weight: 30 }
`;
}

function routerNode(): ProxyNode {
  return {
    id: 'router~10.9.0.9~ingress-1.istio-system~istio-system.svc.cluster.local',
    type: 'router',
    name: 'ingress-1',
    namespace: 'istio-system',
    dnsDomain: 'istio-system.svc.cluster.local',
    ipAddresses: ['10.9.0.9'],
    labels: { istio: 'ingressgateway' },
    serviceAccount: 'default',
    workloadName: 'ingress',
    locality: { region: '', zone: '', subZone: '' },
    cluster: '',
    metadata: {},
  };
}

function typed(filter: unknown): Obj {
  return (filter as { typed_config: Obj }).typed_config;
}

describe('Gateway TLS servers', { timeout: 60_000 }, () => {
  let pki: TestPki;
  let gen: MeshGenerator;
  let listeners: Map<string, Obj>;
  let routes: Map<string, Obj>;

  before(async () => {
    pki = await makeTestPki();
    gen = generatorFromYaml(config(pki));
    listeners = gen.generate(routerNode(), TYPE_URL.listener, null) as Map<string, Obj>;
    routes = gen.generate(routerNode(), TYPE_URL.route, null) as Map<string, Obj>;
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

  const chainsOf = (name: string): Obj[] => {
    const l = listeners.get(name);
    assert.ok(l, `listener ${name}`);
    return l.filter_chains as Obj[];
  };
  const chainFor = (listener: string, sni: string | undefined): Obj => {
    const chain = chainsOf(listener).find((c) => {
      const names = (c.filter_chain_match as { server_names?: string[] } | undefined)?.server_names;
      return sni === undefined ? names === undefined : names?.includes(sni);
    });
    assert.ok(chain, `a chain for ${sni ?? 'any SNI'} on ${listener}`);
    return chain;
  };

  it('generates listeners and routes the proxy itself accepts', () => {
    for (const [name, l] of listeners) {
      const { '@type': _type, ...normalized } = normalize('google.protobuf.Any', l, name) as Obj;
      assert.doesNotThrow(() => compileListener(normalized as never, name), name);
    }
    for (const [name, r] of routes) {
      const { '@type': _type, ...normalized } = normalize('google.protobuf.Any', r, name) as Obj;
      assert.doesNotThrow(() => compileRouteConfiguration(normalized as never, name), name);
    }
  });

  it('gives an HTTPS port one chain per server, selected by SNI, behind the TLS inspector', () => {
    const l = listeners.get('0.0.0.0_443')!;
    assert.deepEqual(
      (l.listener_filters as Obj[]).map((f) => f.name),
      ['envoy.filters.listener.tls_inspector'],
    );
    // The second server for a.example.com conflicts with the first: left out, as Istio does.
    assert.deepEqual(
      chainsOf('0.0.0.0_443').map((c) => (c.filter_chain_match as Obj).server_names),
      [['a.example.com'], ['b.example.com']],
    );
  });

  it('terminates SIMPLE with the server certificate, ALPN h2/http1.1 and tls_params', () => {
    const chain = chainFor('0.0.0.0_443', 'a.example.com');
    const context = typed(chain.transport_socket);
    assert.equal(context.require_client_certificate, undefined);
    assert.deepEqual(context.common_tls_context, {
      tls_certificates: [
        {
          certificate_chain: { filename: pki.server.certFile },
          private_key: { filename: pki.server.keyFile },
        },
      ],
      tls_params: {
        tls_minimum_protocol_version: 'TLSv1_2',
        tls_maximum_protocol_version: 'TLSv1_3',
        cipher_suites: ['ECDHE-ECDSA-AES128-GCM-SHA256'],
      },
      alpn_protocols: ['h2', 'http/1.1'],
    });
    const hcm = typed((chain.filters as Obj[])[0]);
    assert.equal((hcm.rds as Obj).route_config_name, 'https.443.https-a.gw.istio-system');
  });

  it('requires and checks a client certificate for MUTUAL', () => {
    const context = typed(chainFor('0.0.0.0_443', 'b.example.com').transport_socket);
    assert.equal(context.require_client_certificate, true);
    assert.deepEqual((context.common_tls_context as Obj).validation_context, {
      trusted_ca: { filename: pki.caFile },
      match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/client' }],
    });
  });

  it('asks for but does not require a client certificate for OPTIONAL_MUTUAL; `*` matches any SNI', () => {
    const context = typed(chainFor('0.0.0.0_9443', undefined).transport_socket);
    assert.equal(context.require_client_certificate, undefined);
    assert.deepEqual((context.common_tls_context as Obj).validation_context, {
      trusted_ca: { filename: pki.caFile },
    });
  });

  it("gives each HTTPS server a route configuration with only its own hosts' virtual hosts", () => {
    const domains = (name: string): unknown =>
      (routes.get(name)?.virtual_hosts as Obj[] | undefined)?.map((vh) => vh.domains);
    assert.deepEqual(domains('https.443.https-a.gw.istio-system'), [['a.example.com', 'a.example.com:*']]);
    assert.deepEqual(domains('https.443.https-b.gw.istio-system'), [['b.example.com', 'b.example.com:*']]);
    assert.equal(routes.has('https.443.https-a-again.gw.istio-system'), false);
    const vh = (routes.get('https.443.https-a.gw.istio-system')!.virtual_hosts as Obj[])[0];
    assert.equal(
      (((vh.routes as Obj[])[0].route as Obj).cluster as string) ?? '',
      'outbound|80||web.default.svc.cluster.local',
    );
  });

  it('redirects an httpsRedirect server to https (require_tls ALL as a 301 route)', () => {
    const vh = (routes.get('http.80')!.virtual_hosts as Obj[])[0];
    assert.deepEqual(vh.domains, ['a.example.com', 'a.example.com:*']);
    assert.deepEqual(vh.routes, [{ match: { prefix: '/' }, redirect: { https_redirect: true } }]);
  });

  it('passes TLS through by the sniHosts of tls routes, without terminating it', () => {
    const chains = chainsOf('0.0.0.0_8443');
    assert.equal(listeners.get('0.0.0.0_8443')!.listener_filters !== undefined, true);
    // The route for port 9999 does not apply; not-admitted.org is outside the server's hosts.
    assert.deepEqual(
      chains.map((c) => [(c.filter_chain_match as Obj).server_names, c.transport_socket]),
      [
        [['secure.example.com'], undefined],
        [['other.example.com'], undefined],
      ],
    );
    assert.deepEqual(
      typed((chainFor('0.0.0.0_8443', 'secure.example.com').filters as Obj[]).at(-1)!).cluster,
      'outbound|443||secure.example.com',
    );
    assert.deepEqual(
      typed((chainFor('0.0.0.0_8443', 'other.example.com').filters as Obj[]).at(-1)!).weighted_clusters,
      {
        clusters: [
          { name: 'outbound|443||other.example.com', weight: 70 },
          { name: 'outbound|443||secure.example.com', weight: 30 },
        ],
      },
    );
  });
});

describe('Gateway TLS settings Weft cannot serve', () => {
  it('reports credentialName as unsupported when the configuration is checked', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-gw-tls-'));
    try {
      const file = path.join(dir, 'gw.yaml');
      fs.writeFileSync(
        file,
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: a-cert }
`,
      );
      const { resources, diagnostics } = loadConfig([file]);
      assert.deepEqual(diagnostics, []);
      const found = checkSupport(resources);
      assert.deepEqual(
        found.map((d) => [d.code, d.message]),
        [['WE0200', 'not supported by Weft, ignored']],
      );
      assert.match(JSON.stringify(found[0]), /credentialName/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a server without certificate files no chain, and says why', () => {
    assert.deepEqual(downstreamTls({ mode: 'SIMPLE', credentialName: 'a-cert' }, true, undefined), {
      skipped: 'credentialName (a Kubernetes secret) is not supported: set serverCertificate and privateKey',
    });
    assert.deepEqual(
      downstreamTls({ mode: 'MUTUAL', serverCertificate: 'c', privateKey: 'k' }, true, undefined),
      {
        skipped: 'MUTUAL needs caCertificates',
      },
    );
    assert.deepEqual(downstreamTls({ mode: 'ISTIO_MUTUAL' }, true, undefined), {
      skipped: 'ISTIO_MUTUAL needs the control plane CA',
    });
  });

  it('serves ISTIO_MUTUAL with the workload certificate and the trust bundle when the mesh has a CA', () => {
    const result = downstreamTls(
      { mode: 'ISTIO_MUTUAL', minProtocolVersion: 'TLSV1_3' },
      false,
      'cluster.local',
    );
    assert.ok('socket' in result);
    const context = typed(result.socket);
    assert.equal(context.require_client_certificate, true);
    const common = context.common_tls_context as Obj;
    assert.deepEqual(
      (common.tls_certificate_sds_secret_configs as Obj[]).map((s) => s.name),
      ['default'],
    );
    assert.equal(
      ((common.combined_validation_context as Obj).validation_context_sds_secret_config as Obj).name,
      'ROOTCA',
    );
    assert.equal(common.alpn_protocols, undefined, 'a TLS (not HTTPS) server offers no ALPN');
    assert.deepEqual(common.tls_params, { tls_minimum_protocol_version: 'TLSv1_3' });
  });
});
