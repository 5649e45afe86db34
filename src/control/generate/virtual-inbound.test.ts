/**
 * A captured sidecar's `virtualInbound` under PeerAuthentication, read as the proxy reads it: the generated
 * listener is compiled by the proxy's own listener compiler and connections are matched to its chains by the
 * proxy's own filter_chain_match rules, with the facts a connection to each port would have.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { compileListener } from '../../proxy/listener/compile.ts';
import { selectFilterChain } from '../../proxy/listener/filter-chain-match.ts';
import type { ConnectionFacts } from '../../proxy/listener/filter-chain-match.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const SECURITY = {
  trustDomain: 'cluster.local',
  trustBundle: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
};

// HTTP to the workload's 8080, TCP on 5432, an undeclared (sniffed) port on 9090.
const SERVICE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 5432, name: tcp-db, protocol: TCP}
  - {number: 9090, name: metrics}
  workloadSelector: {labels: {app: api}}
`;

function captured(metadata: Record<string, string> = {}): ProxyNode {
  return { ...sidecarNode('api', 'shop'), metadata: { INTERCEPTION_MODE: 'REDIRECT', ...metadata } };
}

function virtualInbound(yaml: string, proxy: ProxyNode): JsonObject | undefined {
  return generatorFromYaml(yaml, { security: SECURITY })
    .generate(proxy, TYPE_URL.listener, null)
    .get('virtualInbound');
}

const PLAIN: Omit<ConnectionFacts, 'localPort'> = {
  localIp: '10.9.0.1',
  remoteIp: '10.9.0.7',
  transportProtocol: 'raw_buffer',
  serverName: undefined,
  applicationProtocols: [],
};

/** The name of the chain the proxy picks for a connection to `port` with these facts (undefined: closed). */
function chainFor(
  listener: JsonObject,
  port: number,
  facts: Partial<ConnectionFacts> = {},
): string | undefined {
  // As the proxy takes an xDS resource: checked against Envoy's proto, then compiled.
  const { '@type': _type, ...message } = listener;
  const config = compileListener(normalize('envoy.config.listener.v3.Listener', message, ''), '');
  return selectFilterChain(config.filterChains, config.defaultFilterChain, {
    ...PLAIN,
    localPort: port,
    ...facts,
  })?.name;
}

const TLS: Partial<ConnectionFacts> = {
  transportProtocol: 'tls',
  applicationProtocols: ['istio-peer-exchange'],
};
const TLS_HTTP: Partial<ConnectionFacts> = { transportProtocol: 'tls', applicationProtocols: ['h2'] };
const PLAIN_HTTP: Partial<ConnectionFacts> = { applicationProtocols: ['http/1.1'] };

describe('virtualInbound', () => {
  it('PERMISSIVE (the default): each port takes mTLS and plaintext, a sniffed port tells HTTP from TCP', () => {
    const l = virtualInbound(SERVICE, captured());
    assert.ok(l);
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 15006 } });
    assert.equal(l.traffic_direction, 'INBOUND');
    assert.deepEqual(
      (l.listener_filters as JsonObject[]).map((f) => f.name),
      [
        'envoy.filters.listener.original_dst',
        'envoy.filters.listener.tls_inspector',
        'envoy.filters.listener.http_inspector',
      ],
    );
    assert.equal(l.continue_on_listener_filters_timeout, true);
    for (const c of l.filter_chains as JsonObject[])
      assert.equal(typeof (c.filter_chain_match as JsonObject).destination_port, 'number', c.name as string);

    assert.equal(chainFor(l, 8080, PLAIN_HTTP), '0.0.0.0_8080');
    assert.equal(chainFor(l, 8080, TLS_HTTP), '0.0.0.0_8080/tls');
    assert.equal(chainFor(l, 5432), '0.0.0.0_5432');
    assert.equal(chainFor(l, 5432, TLS), '0.0.0.0_5432/tls');
    assert.equal(chainFor(l, 9090, PLAIN_HTTP), '0.0.0.0_9090/http');
    // Plaintext that is not HTTP: the sniffed port's former default chain, now the port's least specific one.
    assert.equal(chainFor(l, 9090), '0.0.0.0_9090/tcp');
    assert.equal(chainFor(l, 9090, TLS_HTTP), '0.0.0.0_9090/tls-http');
    assert.equal(chainFor(l, 9090, TLS), '0.0.0.0_9090/tls-tcp');
    // The service port (80) is not where the workload listens: only target ports have chains.
    assert.equal(chainFor(l, 80, PLAIN_HTTP), undefined);
    assert.equal(chainFor(l, 15006), undefined);
  });

  it('STRICT: only mTLS is served, on every port, and a silent client is not carried on as plaintext', () => {
    const l = virtualInbound(
      `${SERVICE}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec: {mtls: {mode: STRICT}}
`,
      captured(),
    );
    assert.ok(l);
    assert.equal(l.continue_on_listener_filters_timeout, undefined);
    for (const port of [8080, 5432, 9090]) {
      assert.equal(chainFor(l, port, PLAIN_HTTP), undefined, `plaintext to ${port}`);
      assert.match(chainFor(l, port, TLS) ?? '', new RegExp(`^0\\.0\\.0\\.0_${port}/tls`));
    }
  });

  it("mixed modes: each port keeps its own, a plaintext port's silent client is carried on", () => {
    const l = virtualInbound(
      `${SERVICE}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: STRICT}
  portLevelMtls: {'5432': {mode: DISABLE}}
`,
      captured(),
    );
    assert.ok(l);
    // 5432 has no inspection of its own: a server-first client must not be dropped by the listener's.
    assert.equal(l.continue_on_listener_filters_timeout, true);
    assert.equal(chainFor(l, 5432), '0.0.0.0_5432');
    assert.equal(chainFor(l, 8080, PLAIN_HTTP), undefined);
    assert.equal(chainFor(l, 8080, TLS_HTTP), '0.0.0.0_8080/tls');
  });

  it('listens where node metadata says; not at all with port 0, without capture or with Sidecar ingress', () => {
    const moved = virtualInbound(
      SERVICE,
      captured({ WEFT_INBOUND_BIND: '10.9.0.1', WEFT_INBOUND_PORT: '16006' }),
    );
    assert.deepEqual(moved?.address, { socket_address: { address: '10.9.0.1', port_value: 16006 } });
    assert.equal(virtualInbound(SERVICE, captured({ WEFT_INBOUND_PORT: '0' })), undefined);
    assert.equal(virtualInbound(SERVICE, sidecarNode('api', 'shop')), undefined);
    const ingress = `${SERVICE}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: shop}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 80, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:8080
`;
    assert.equal(virtualInbound(ingress, captured()), undefined);
  });

  it('follows the workload port a POD_PORTS entry gives a service port', () => {
    const l = virtualInbound(SERVICE, captured({ POD_PORTS: '[{"name":"metrics","containerPort":19090}]' }));
    assert.ok(l);
    assert.equal(chainFor(l, 19090, PLAIN_HTTP), '0.0.0.0_19090/http');
    assert.equal(chainFor(l, 9090, PLAIN_HTTP), undefined);
  });
});
