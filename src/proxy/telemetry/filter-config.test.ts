import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import type { HttpStream } from '../http/stream.ts';
import { compileListener } from '../listener/compile.ts';
import type { OutgoingHeaders } from '../upstream/codec.ts';
import { MetadataExchangeFilter } from './metadata-exchange.ts';
import { compileMetadataExchange } from './metadata-exchange-config.ts';
import { ownPeerHeaders } from './peer-headers.ts';

const TS = 'type.googleapis.com/xds.type.v3.TypedStruct';
const STATS = { '@type': TS, type_url: 'type.googleapis.com/stats.PluginConfig', value: {} };
const ROUTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};
const TCP_PROXY = {
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    stat_prefix: 't',
    cluster: 'c',
  },
};

function hcm(httpFilters: unknown[]): JsonObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: 'h',
      route_config: { name: 'r', virtual_hosts: [] },
      http_filters: [...httpFilters, ROUTER],
    },
  } as JsonObject;
}

function listener(filters: unknown[]): JsonObject {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{ filters }],
  } as JsonObject;
}

function rejects(filters: unknown[], re: RegExp): void {
  assert.throws(
    () => compileListener(listener(filters), 'L'),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
  );
}

describe('istio.stats as a network filter', () => {
  it('is accepted before tcp_proxy, as a TypedStruct or by name', () => {
    const cfg = compileListener(listener([{ name: 'istio.stats', typed_config: STATS }, TCP_PROXY]), 'L');
    const filters = cfg.filterChains[0].filters;
    assert.deepEqual(
      filters.map((f) => f.kind),
      ['istio_stats', 'tcp_proxy'],
    );
    const f = filters[0];
    assert.equal(f.kind === 'istio_stats' && f.stats.tcpReportingDurationMs, 15_000);
    const byName = compileListener(listener([{ name: 'istio.stats' }, TCP_PROXY]), 'L');
    assert.equal(byName.filterChains[0].filters[0].kind, 'istio_stats');
  });

  it('is refused elsewhere, and with a config Weft does not implement', () => {
    rejects([{ name: 'istio.stats', typed_config: STATS }], /must be followed by a terminal filter/);
    rejects([{ name: 'istio.stats', typed_config: STATS }, hcm([])], /only applies before tcp_proxy/);
    rejects(
      [TCP_PROXY, { name: 'istio.stats', typed_config: STATS }],
      /terminal filter and must be the last/,
    );
    rejects(
      [{ name: 'x', typed_config: { ...STATS, type_url: 'type.googleapis.com/other.Config' } }, TCP_PROXY],
      /^L\.filter_chains\[0\]\.filters\[0\]\.typed_config\.type_url: unsupported network filter type/,
    );
    rejects(
      [{ name: 'istio.stats', typed_config: { ...STATS, value: { rotation_interval: '1s' } } }, TCP_PROXY],
      /^L\.filter_chains\[0\]\.filters\[0\]\.typed_config\.value\.rotation_interval: not supported by Weft/,
    );
  });
});

describe("Istio's HTTP filters in http_filters", () => {
  it('are unwrapped from their TypedStruct', () => {
    const cfg = compileListener(
      listener([
        hcm([
          {
            name: 'istio.metadata_exchange',
            typed_config: {
              '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
              type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config',
              value: { upstream_discovery: [{ istio_headers: {} }] },
            },
          },
          { name: 'istio.stats', typed_config: { ...STATS, value: { reporter: 'SERVER_GATEWAY' } } },
        ]),
      ]),
      'L',
    );
    const f = cfg.filterChains[0].filters[0];
    assert.ok(f.kind === 'http_connection_manager');
    assert.deepEqual(
      f.hcm.httpFilters.map((x) => [x.name, x.typeUrl]),
      [
        ['istio.metadata_exchange', 'type.googleapis.com/io.istio.http.peer_metadata.Config'],
        ['istio.stats', 'type.googleapis.com/stats.PluginConfig'],
        ['envoy.filters.http.router', 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'],
      ],
    );
    assert.deepEqual(f.hcm.httpFilters[1].config, { reporter: 'SERVER_GATEWAY' });
  });

  it('name the offending field', () => {
    const base = 'L.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';
    const esc = (s: string): string => s.replace(/[.[\]]/g, '\\$&');
    rejects(
      [hcm([{ name: 'x', typed_config: { ...STATS, type_url: 'type.googleapis.com/unknown.Config' } }])],
      new RegExp(`^${esc(base)}\\.type_url: unsupported HTTP filter type`),
    );
    rejects(
      [
        hcm([
          {
            name: 'istio.stats',
            typed_config: { ...STATS, value: { metrics: [{ dimensions: { a: 'foo()' } }] } },
          },
        ]),
      ],
      new RegExp(
        `^${esc(base)}\\.value\\.metrics\\[0\\]\\.dimensions\\.a: expression "foo\\(\\)" is not supported`,
      ),
    );
  });
});

describe('istio.metadata_exchange', () => {
  it('refuses unknown methods and options', () => {
    const bad: [unknown, RegExp][] = [
      [
        { upstream_discovery: [{ baggage: {} }] },
        /^c\.upstream_discovery\[0\]\.baggage: not supported by Weft/,
      ],
      [
        { upstream_propagation: [{ workload_discovery: {} }] },
        /^c\.upstream_propagation\[0\]\.workload_discovery: not supported/,
      ],
      [{ downstream_discovery: [{}] }, /exactly one of istio_headers, workload_discovery/],
      [
        { downstream_discovery: [{ istio_headers: { skip_external_clusters: true } }] },
        /skip_external_clusters: not supported/,
      ],
      [{ shared_with_upstream: true }, /^c\.shared_with_upstream: true is not supported/],
      [{ additional_labels: [] }, /^c\.additional_labels: not supported/],
    ];
    for (const [cfg, re] of bad)
      assert.throws(
        () => compileMetadataExchange(cfg as JsonObject, 'c'),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
        JSON.stringify(cfg),
      );
  });

  const NODE: NodeInfo = {
    id: 'me',
    cluster: 'c',
    locality: undefined,
    metadata: { WORKLOAD_NAME: 'me-v1' },
  };

  it('server side: reads and removes the peer headers, a hostile value is absent, then answers with ours', () => {
    const filter = new MetadataExchangeFilter(
      'mx',
      compileMetadataExchange(
        { downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }] },
        'c',
      ),
      NODE,
    );
    const theirs = ownPeerHeaders({ ...NODE, id: 'them', metadata: { WORKLOAD_NAME: 'them-v1' } });
    for (const [value, expected] of [
      [theirs.metadata, 'them-v1'],
      ['%%%garbage', undefined],
      ['A'.repeat(100_000), undefined],
    ] as const) {
      const headers: Record<string, string> = {
        'x-envoy-peer-metadata': value,
        'x-envoy-peer-metadata-id': 'x',
        a: 'b',
      };
      const s = {
        headers,
        downstreamSecurity: undefined,
        downstreamPeer: undefined,
      } as unknown as HttpStream;
      assert.equal(filter.onRequest(s), 'continue');
      assert.equal(s.downstreamPeer?.workload, expected);
      assert.deepEqual(headers, { a: 'b' }, 'never reaches the application');
      const response: OutgoingHeaders = {};
      filter.onResponseHeaders(s, 200, response);
      assert.equal(response['x-envoy-peer-metadata'], ownPeerHeaders(NODE).metadata);
      assert.equal(response['x-envoy-peer-metadata-id'], 'me');
    }
  });

  it('client side: replaces what the app sent, learns the upstream from the response or the endpoint', () => {
    const filter = new MetadataExchangeFilter(
      'mx',
      compileMetadataExchange(
        {
          upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
          upstream_propagation: [{ istio_headers: {} }],
        },
        'c',
      ),
      NODE,
    );
    const headers: Record<string, string> = { 'x-envoy-peer-metadata': 'spoofed' };
    const s = {
      headers,
      upstreamHost: { istioWorkload: 'db-v3;data;db;v3;west' },
      upstreamPeer: undefined,
    } as unknown as HttpStream;
    filter.onRequest(s);
    assert.equal(headers['x-envoy-peer-metadata'], ownPeerHeaders(NODE).metadata);
    assert.equal(headers['x-envoy-peer-metadata-id'], 'me');
    const withHeader: OutgoingHeaders = {
      'x-envoy-peer-metadata': ownPeerHeaders({ ...NODE, metadata: { WORKLOAD_NAME: 'srv' } }).metadata,
      'x-envoy-peer-metadata-id': 'srv',
    };
    filter.onResponseHeaders(s, 200, withHeader);
    assert.equal(s.upstreamPeer?.workload, 'srv');
    assert.deepEqual(withHeader, {}, 'never reaches the client');
    filter.onResponseHeaders(s, 200, {});
    assert.equal(s.upstreamPeer?.workload, 'db-v3', 'falls back to the endpoint metadata');
    assert.equal(s.upstreamPeer?.namespace, 'data');
  });
});
