import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../core/errors.ts';
import { normalize } from '../config-proto/normalize.ts';
import { compileListener, compileListenerWithReferences, routeClusterReferences } from './compile.ts';

const HCM_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_URL = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_URL } };
const ROUTES = {
  virtual_hosts: [
    { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] },
  ],
};
const ADDRESS = { socket_address: { address: '127.0.0.1', port_value: 8080 } };

/** A listener with one filter chain holding one HCM whose typed_config gets `hcm` merged in. */
function hcmListener(hcm: Record<string, unknown> = {}, listener: Record<string, unknown> = {}): unknown {
  return {
    name: 'l',
    address: ADDRESS,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_URL,
              stat_prefix: 'in',
              route_config: ROUTES,
              http_filters: [ROUTER],
              ...hcm,
            },
          },
        ],
      },
    ],
    ...listener,
  };
}

function tcpListener(tcp: Record<string, unknown>): unknown {
  return {
    name: 't',
    address: ADDRESS,
    filter_chains: [{ filters: [{ typed_config: { '@type': TCP_URL, stat_prefix: 'tcp', ...tcp } }] }],
  };
}

/** Normalizes like the bootstrap loader does, then compiles. */
function compile(raw: unknown): ReturnType<typeof compileListener> {
  return compileListener(normalize('envoy.config.listener.v3.Listener', raw, 'l'), 'l');
}

function rejects(raw: unknown, message: string): void {
  assert.throws(
    () => compile(raw),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

const HCM_PATH = 'l.filter_chains[0].filters[0].typed_config';

describe('compileListener: HTTP connection manager', () => {
  it('applies Envoy defaults (and Weft server name)', () => {
    const l = compile(hcmListener());
    assert.equal(l.name, 'l');
    assert.deepEqual(l.address, { host: '127.0.0.1', port: 8080 });
    assert.equal(l.perConnectionBufferLimitBytes, 1024 * 1024);
    assert.equal(l.defaultFilterChain, undefined);
    assert.equal(l.filterChains.length, 1);
    const chain = l.filterChains[0];
    assert.equal(chain.name, '');
    assert.equal(chain.match, undefined);
    const filter = chain.filters[0];
    assert.equal(filter.kind, 'http_connection_manager');
    assert.equal(filter.name, 'envoy.filters.network.http_connection_manager');
    if (filter.kind !== 'http_connection_manager') return;
    const { routeTable, httpFilters, ...rest } = filter.hcm;
    assert.ok(routeTable);
    assert.deepEqual(httpFilters, [
      { name: 'envoy.filters.http.router', typeUrl: ROUTER_URL, config: { '@type': ROUTER_URL } },
    ]);
    assert.deepEqual(rest, {
      statPrefix: 'in',
      codecType: 'AUTO',
      streamIdleTimeoutMs: 300_000,
      requestTimeoutMs: 0,
      requestHeadersTimeoutMs: 0,
      maxRequestHeadersKb: 60,
      idleTimeoutMs: 3_600_000,
      maxRequestsPerConnection: undefined,
      useRemoteAddress: false,
      xffNumTrustedHops: 0,
      skipXffAppend: false,
      generateRequestId: true,
      preserveExternalRequestId: false,
      alwaysSetRequestIdInResponse: false,
      serverName: 'weft',
      serverHeaderTransformation: 'OVERWRITE',
      upgradeTypes: new Set(),
      allowAbsoluteUrl: true,
      http2: {
        maxConcurrentStreams: undefined,
        initialStreamWindowSize: undefined,
        initialConnectionWindowSize: undefined,
      },
      drainTimeoutMs: 5000,
      accessLog: [],
    });
  });

  it('reads every supported field', () => {
    const l = compile(
      hcmListener({
        codecType: 'HTTP2',
        stream_idle_timeout: '0s',
        request_timeout: '10s',
        request_headers_timeout: '2.5s',
        max_request_headers_kb: 8192,
        common_http_protocol_options: { idle_timeout: '60s', max_requests_per_connection: 7 },
        use_remote_address: true,
        xff_num_trusted_hops: 2,
        skip_xff_append: true,
        generate_request_id: false,
        preserve_external_request_id: true,
        always_set_request_id_in_response: true,
        server_name: 'edge',
        server_header_transformation: 'APPEND_IF_ABSENT',
        upgrade_configs: [{ upgrade_type: 'WebSocket' }, { upgrade_type: 'CONNECT', enabled: false }],
        http_protocol_options: { allow_absolute_url: false },
        http2_protocol_options: {
          max_concurrent_streams: 100,
          initial_stream_window_size: 65535,
          initial_connection_window_size: 1048576,
        },
        drain_timeout: '0.5s',
      }),
    );
    const filter = l.filterChains[0].filters[0];
    assert.equal(filter.kind, 'http_connection_manager');
    if (filter.kind !== 'http_connection_manager') return;
    const { routeTable: _r, httpFilters: _f, ...rest } = filter.hcm;
    assert.deepEqual(rest, {
      statPrefix: 'in',
      codecType: 'HTTP2',
      streamIdleTimeoutMs: 0,
      requestTimeoutMs: 10_000,
      requestHeadersTimeoutMs: 2500,
      maxRequestHeadersKb: 8192,
      idleTimeoutMs: 60_000,
      maxRequestsPerConnection: 7,
      useRemoteAddress: true,
      xffNumTrustedHops: 2,
      skipXffAppend: true,
      generateRequestId: false,
      preserveExternalRequestId: true,
      alwaysSetRequestIdInResponse: true,
      serverName: 'edge',
      serverHeaderTransformation: 'APPEND_IF_ABSENT',
      upgradeTypes: new Set(['websocket']),
      allowAbsoluteUrl: false,
      http2: {
        maxConcurrentStreams: 100,
        initialStreamWindowSize: 65535,
        initialConnectionWindowSize: 1048576,
      },
      drainTimeoutMs: 500,
      accessLog: [],
    });
  });

  it('accepts a router given by name only, and filters identified by @type only', () => {
    const raw = {
      address: ADDRESS,
      filter_chains: [
        {
          filters: [
            {
              typed_config: {
                '@type': HCM_URL,
                stat_prefix: 'in',
                route_config: ROUTES,
                http_filters: [{ name: 'envoy.filters.http.router' }],
              },
            },
          ],
        },
      ],
    };
    const filter = compile(raw).filterChains[0].filters[0];
    assert.equal(filter.name, 'envoy.filters.network.http_connection_manager');
    assert.equal(filter.kind, 'http_connection_manager');
    if (filter.kind === 'http_connection_manager') {
      assert.deepEqual(filter.hcm.httpFilters, [
        { name: 'envoy.filters.http.router', typeUrl: ROUTER_URL, config: { '@type': ROUTER_URL } },
      ]);
    }
  });

  it('compiles rds over ADS into an empty table the RDS one replaces', () => {
    const l = compile(
      hcmListener({
        route_config: null,
        rds: {
          route_config_name: '8080',
          config_source: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '3s' },
        },
      }),
    );
    const filter = l.filterChains[0].filters[0];
    assert.equal(filter.kind, 'http_connection_manager');
    if (filter.kind === 'http_connection_manager') {
      assert.deepEqual(filter.hcm.rds, { routeConfigName: '8080', initialFetchTimeoutMs: 3000 });
      assert.equal(filter.hcm.routeTable.name, '8080');
    }
  });

  it('keeps a custom filter name', () => {
    const raw = hcmListener();
    (raw as { filter_chains: { filters: { name: string }[] }[] }).filter_chains[0].filters[0].name = 'my-hcm';
    assert.equal(compile(raw).filterChains[0].filters[0].name, 'my-hcm');
  });

  it('rejects what Weft does not implement, naming the field', () => {
    rejects(
      hcmListener({ rds: { route_config_name: 'x' }, route_config: null }),
      `${HCM_PATH}.rds.config_source: required`,
    );
    rejects(
      hcmListener({ rds: { route_config_name: 'x', config_source: { ads: {} } } }),
      `${HCM_PATH}.rds: conflicts with "route_config": only one field of oneof "route_specifier" may be set`,
    );
    rejects(
      hcmListener({
        rds: { route_config_name: 'x', config_source: { path_config_source: { path: '/r' } } },
        route_config: null,
      }),
      `${HCM_PATH}.rds.config_source.path_config_source: not supported by Weft (only ads: {} is)`,
    );
    rejects(
      hcmListener({
        access_log: [
          {
            name: 'x',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
              path: '/tmp/x.log',
              typed_json_format: { a: '%PROTOCOL%' },
            },
          },
        ],
      }),
      `${HCM_PATH}.access_log[0].typed_config.typed_json_format: not supported by Weft (use log_format.json_format)`,
    );
    rejects(
      hcmListener({
        access_log: [
          {
            name: 'x',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
              log_format: { text_format_source: { inline_string: '%NOT_AN_OPERATOR%' } },
            },
          },
        ],
      }),
      `${HCM_PATH}.access_log[0].typed_config.log_format.text_format_source: command operator %NOT_AN_OPERATOR% is not supported by Weft`,
    );
    rejects(
      hcmListener({ codec_type: 'HTTP3' }),
      `${HCM_PATH}.codec_type: HTTP3 is not supported by Weft (AUTO, HTTP1 or HTTP2)`,
    );
    rejects(
      hcmListener({ common_http_protocol_options: { max_headers_count: 10 } }),
      `${HCM_PATH}.common_http_protocol_options.max_headers_count: not supported by Weft`,
    );
    rejects(
      hcmListener({ http_protocol_options: { accept_http_10: true } }),
      `${HCM_PATH}.http_protocol_options.accept_http_10: not supported by Weft`,
    );
    rejects(
      hcmListener({ http2_protocol_options: { allow_connect: true } }),
      `${HCM_PATH}.http2_protocol_options.allow_connect: not supported by Weft`,
    );
    rejects(
      hcmListener({ upgrade_configs: [{ upgrade_type: 'websocket', filters: [ROUTER] }] }),
      `${HCM_PATH}.upgrade_configs[0].filters: not supported by Weft`,
    );
  });

  it('checks required fields and ranges', () => {
    rejects(hcmListener({ stat_prefix: '' }), `${HCM_PATH}.stat_prefix: required`);
    rejects(
      hcmListener({ route_config: null }),
      `${HCM_PATH}.route_config: required (an inline route configuration, or rds)`,
    );
    rejects(
      hcmListener({ max_request_headers_kb: 8193 }),
      `${HCM_PATH}.max_request_headers_kb: must be an integer from 1 to 8192, got 8193`,
    );
    rejects(
      hcmListener({ http2_protocol_options: { initial_stream_window_size: 100 } }),
      `${HCM_PATH}.http2_protocol_options.initial_stream_window_size: must be an integer from 65535 to 2147483647, got 100`,
    );
    rejects(
      hcmListener({ stream_idle_timeout: '-1s' }),
      `${HCM_PATH}.stream_idle_timeout: duration must not be negative, got "-1s"`,
    );
    rejects(
      hcmListener({ upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'WebSocket' }] }),
      `${HCM_PATH}.upgrade_configs[1].upgrade_type: duplicate upgrade type "websocket"`,
    );
  });

  it('requires the HTTP filter chain to end with the router', () => {
    rejects(
      hcmListener({ http_filters: [] }),
      `${HCM_PATH}.http_filters: required: the chain must end with envoy.filters.http.router`,
    );
    rejects(
      hcmListener({ http_filters: [ROUTER, ROUTER] }),
      `${HCM_PATH}.http_filters[0]: envoy.filters.http.router must be the last HTTP filter`,
    );
    rejects(
      hcmListener({ http_filters: [{ name: 'envoy.filters.http.lua' }] }),
      `${HCM_PATH}.http_filters[0].name: unsupported extension "envoy.filters.http.lua"`,
    );
    rejects(
      hcmListener({
        http_filters: [
          { name: 'x', typed_config: { '@type': TCP_URL, stat_prefix: 's', cluster: 'c' } },
          ROUTER,
        ],
      }),
      `${HCM_PATH}.http_filters[0].typed_config: unsupported extension "${TCP_URL}" for an HTTP filter`,
    );
    rejects(
      hcmListener({ http_filters: [{ ...ROUTER, disabled: true }] }),
      `${HCM_PATH}.http_filters[0].disabled: not supported by Weft`,
    );
    rejects(
      hcmListener({
        http_filters: [
          {
            name: 'envoy.filters.http.router',
            typed_config: { '@type': ROUTER_URL, start_child_span: true },
          },
        ],
      }),
      `${HCM_PATH}.http_filters[0].typed_config.start_child_span: not supported by Weft`,
    );
  });
});

describe('compileListener: tcp_proxy', () => {
  it('turns a single cluster into one entry of weight 1, with the default idle timeout', () => {
    const filter = compile(tcpListener({ cluster: 'db' })).filterChains[0].filters[0];
    assert.deepEqual(filter, {
      kind: 'tcp_proxy',
      name: 'envoy.filters.network.tcp_proxy',
      tcpProxy: {
        statPrefix: 'tcp',
        clusters: [{ name: 'db', weight: 1 }],
        idleTimeoutMs: 3_600_000,
        accessLog: [],
      },
    });
  });

  it('reads weighted clusters and idle_timeout', () => {
    const filter = compile(
      tcpListener({
        weighted_clusters: {
          clusters: [
            { name: 'a', weight: 3 },
            { name: 'b', weight: 1 },
          ],
        },
        idle_timeout: '0s',
      }),
    ).filterChains[0].filters[0];
    assert.equal(filter.kind, 'tcp_proxy');
    if (filter.kind === 'tcp_proxy') {
      assert.deepEqual(filter.tcpProxy.clusters, [
        { name: 'a', weight: 3 },
        { name: 'b', weight: 1 },
      ]);
      assert.equal(filter.tcpProxy.idleTimeoutMs, 0);
    }
  });

  it('rejects missing clusters, zero weights and unsupported fields', () => {
    const p = 'l.filter_chains[0].filters[0].typed_config';
    rejects(tcpListener({}), `${p}.cluster: required (or weighted_clusters)`);
    rejects(
      tcpListener({ weighted_clusters: { clusters: [{ name: 'a' }] } }),
      `${p}.weighted_clusters.clusters[0].weight: required (at least 1)`,
    );
    rejects(
      tcpListener({ weighted_clusters: { clusters: [] } }),
      `${p}.weighted_clusters.clusters: at least one cluster is required`,
    );
    rejects(
      tcpListener({ cluster: 'a', max_connect_attempts: 3 }),
      `${p}.max_connect_attempts: not supported by Weft`,
    );
    rejects(tcpListener({ cluster: 'a', stat_prefix: '' }), `${p}.stat_prefix: required`);
  });

  it('collects the clusters it names, with their paths', () => {
    const { references } = compileListenerWithReferences(
      normalize(
        'envoy.config.listener.v3.Listener',
        tcpListener({ weighted_clusters: { clusters: [{ name: 'a', weight: 1 }] } }),
        'l',
      ),
      'l',
    );
    assert.deepEqual(references, [
      {
        cluster: 'a',
        path: 'l.filter_chains[0].filters[0].typed_config.weighted_clusters.clusters[0].name',
        tcpProxy: true,
      },
    ]);
  });
});

describe('compileListener: listener, address and filter chains', () => {
  it('names an unnamed listener after its address', () => {
    assert.equal(compile(hcmListener({}, { name: '' })).name, '127.0.0.1_8080');
    const v6 = compile(
      hcmListener({}, { name: null, address: { socket_address: { address: '::', port_value: 80 } } }),
    );
    assert.equal(v6.name, '::_80');
    assert.deepEqual(v6.address, { host: '::', port: 80 });
  });

  it('accepts traffic_direction, which only describes the traffic', () => {
    assert.equal(compile(hcmListener({}, { traffic_direction: 'OUTBOUND' })).name, 'l');
  });

  it('reads per_connection_buffer_limit_bytes', () => {
    assert.equal(
      compile(hcmListener({}, { per_connection_buffer_limit_bytes: 32768 })).perConnectionBufferLimitBytes,
      32768,
    );
  });

  it('validates the address', () => {
    rejects(hcmListener({}, { address: null }), 'l.address: required');
    rejects(
      hcmListener({}, { address: { socket_address: { address: 'localhost', port_value: 80 } } }),
      'l.address.socket_address.address: expected an IPv4 or IPv6 address, got "localhost"',
    );
    rejects(
      hcmListener({}, { address: { socket_address: { address: '127.0.0.1', port_value: 70000 } } }),
      'l.address.socket_address.port_value: must be an integer from 0 to 65535, got 70000',
    );
    rejects(
      hcmListener({}, { address: { socket_address: { address: '127.0.0.1', protocol: 'UDP' } } }),
      'l.address.socket_address.protocol: UDP is not supported by Weft (only TCP)',
    );
    rejects(
      hcmListener({}, { address: { socket_address: { address: '127.0.0.1', named_port: 'http' } } }),
      'l.address.socket_address.named_port: not supported by Weft',
    );
    rejects(
      hcmListener({}, { address: { pipe: { path: '/tmp/s' } } }),
      'l.address.pipe: not supported by Weft',
    );
    rejects(
      hcmListener({}, { address: { socket_address: { address: '' } } }),
      'l.address.socket_address.address: required',
    );
  });

  it('refuses a TLS transport socket without its context, and listener features Weft lacks', () => {
    const raw = hcmListener() as { filter_chains: Record<string, unknown>[] };
    raw.filter_chains[0].transport_socket = { name: 'envoy.transport_sockets.tls' };
    rejects(
      raw,
      'l.filter_chains[0].transport_socket.typed_config: required (a envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext)',
    );
    rejects(hcmListener({}, { bind_to_port: false }), 'l.bind_to_port: not supported by Weft');
  });

  it('reads filter_chain_match', () => {
    const raw = hcmListener() as { filter_chains: Record<string, unknown>[] };
    raw.filter_chains[0].name = 'inbound';
    raw.filter_chains[0].filter_chain_match = {
      destination_port: 8080,
      prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }, { address_prefix: '::1' }],
      source_prefix_ranges: [{ address_prefix: '192.168.0.0', prefix_len: 16 }],
      server_names: ['a.example.com'],
      transport_protocol: 'raw_buffer',
      application_protocols: ['http/1.1'],
    };
    const chain = compile(raw).filterChains[0];
    assert.equal(chain.name, 'inbound');
    assert.deepEqual(chain.match, {
      destinationPort: 8080,
      serverNames: ['a.example.com'],
      transportProtocol: 'raw_buffer',
      applicationProtocols: ['http/1.1'],
      prefixRanges: [
        { address: '10.0.0.0', prefixLen: 8 },
        { address: '::1', prefixLen: 0 },
      ],
      sourcePrefixRanges: [{ address: '192.168.0.0', prefixLen: 16 }],
    });
  });

  it('validates filter_chain_match', () => {
    const withMatch = (match: unknown): unknown => {
      const raw = hcmListener() as { filter_chains: Record<string, unknown>[] };
      raw.filter_chains[0].filter_chain_match = match;
      return raw;
    };
    const p = 'l.filter_chains[0].filter_chain_match';
    rejects(
      withMatch({ prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 33 }] }),
      `${p}.prefix_ranges[0].prefix_len: must be an integer from 0 to 32, got 33`,
    );
    rejects(
      withMatch({ prefix_ranges: [{ address_prefix: 'ten' }] }),
      `${p}.prefix_ranges[0].address_prefix: expected an IP address, got "ten"`,
    );
    rejects(
      withMatch({ destination_port: 0 }),
      `${p}.destination_port: must be an integer from 1 to 65535, got 0`,
    );
    rejects(withMatch({ source_ports: [80] }), `${p}.source_ports: not supported by Weft`);
  });

  it('refuses two filter chains with the same match', () => {
    const raw = hcmListener() as { filter_chains: Record<string, unknown>[] };
    raw.filter_chains[0].filter_chain_match = { server_names: ['a', 'b'] };
    raw.filter_chains.push({ ...raw.filter_chains[0], filter_chain_match: { server_names: ['b', 'a'] } });
    rejects(raw, 'l.filter_chains[1]: has the same filter_chain_match as filter_chains[0]');
  });

  it('accepts a default filter chain alone, and refuses a listener without chains', () => {
    const raw = hcmListener() as { filter_chains: unknown[]; default_filter_chain?: unknown };
    raw.default_filter_chain = raw.filter_chains[0];
    raw.filter_chains = [];
    const l = compile(raw);
    assert.equal(l.filterChains.length, 0);
    assert.equal(l.defaultFilterChain?.filters[0].kind, 'http_connection_manager');
    rejects(
      { name: 'l', address: ADDRESS },
      'l.filter_chains: a listener needs at least one filter chain (or a default_filter_chain)',
    );
  });

  it('checks the network filters of a chain', () => {
    const chain = (filters: unknown[]): unknown => ({
      name: 'l',
      address: ADDRESS,
      filter_chains: [{ filters }],
    });
    const tcp = { typed_config: { '@type': TCP_URL, stat_prefix: 's', cluster: 'c' } };
    rejects(
      chain([]),
      'l.filter_chains[0].filters: a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)',
    );
    rejects(
      chain([tcp, tcp]),
      'l.filter_chains[0].filters[0]: envoy.filters.network.tcp_proxy is a terminal filter and must be the last in the chain',
    );
    rejects(
      chain([{ name: 'envoy.filters.network.redis_proxy' }]),
      'l.filter_chains[0].filters[0].name: unsupported extension "envoy.filters.network.redis_proxy"',
    );
    rejects(
      chain([{ name: 'envoy.filters.network.http_connection_manager' }]),
      'l.filter_chains[0].filters[0].typed_config: required for envoy.filters.network.http_connection_manager',
    );
    rejects(
      chain([{ typed_config: { '@type': ROUTER_URL } }]),
      `l.filter_chains[0].filters[0].typed_config: unsupported extension "${ROUTER_URL}" for a network filter`,
    );
    rejects(chain([{}]), 'l.filter_chains[0].filters[0]: either name or typed_config is required');
    // Unknown @types stop at normalization, before compile.
    rejects(
      chain([
        {
          name: 'x',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
          },
        },
      ]),
      'l.filter_chains[0].filters[0].typed_config: unsupported extension type "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"',
    );
  });
});

describe('routeClusterReferences', () => {
  it('finds cluster, weighted_clusters and mirror clusters with their paths', () => {
    const config = normalize(
      'envoy.config.route.v3.RouteConfiguration',
      {
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/a' },
                route: { cluster: 'a', request_mirror_policies: [{ cluster: 'm' }] },
              },
              {
                match: { prefix: '/b' },
                route: {
                  weighted_clusters: {
                    clusters: [
                      { name: 'b1', weight: 1 },
                      { name: 'b2', weight: 1 },
                    ],
                  },
                },
              },
              { match: { prefix: '/r' }, redirect: { path_redirect: '/' } },
            ],
          },
        ],
      },
      'rc',
    );
    assert.deepEqual(routeClusterReferences(config, 'rc'), [
      { cluster: 'a', path: 'rc.virtual_hosts[0].routes[0].route.cluster' },
      { cluster: 'm', path: 'rc.virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster' },
      { cluster: 'b1', path: 'rc.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[0].name' },
      { cluster: 'b2', path: 'rc.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[1].name' },
    ]);
  });

  it('refuses cluster_header', () => {
    const config = {
      virtual_hosts: [
        { name: 'v', routes: [{ match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } }] },
      ],
    };
    assert.throws(() => routeClusterReferences(config, 'rc'), {
      message: 'rc.virtual_hosts[0].routes[0].route.cluster_header: not supported by Weft',
    });
  });
});

/** Every path (list of keys) to a node inside a JSON-like value, the root included. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  }
  return out;
}

function replaceAt(value: unknown, at: (string | number)[], junk: unknown): unknown {
  if (at.length === 0) return junk;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  copy[at[0]] = replaceAt(copy[at[0]], at.slice(1), junk);
  return copy;
}

describe('compileListener properties', () => {
  it('turns any corruption of a valid listener into a ConfigError or a listener, never another error', () => {
    const listeners = [
      hcmListener({
        upgrade_configs: [{ upgrade_type: 'websocket' }],
        common_http_protocol_options: { idle_timeout: '1s' },
      }),
      tcpListener({ weighted_clusters: { clusters: [{ name: 'a', weight: 1 }] } }),
    ];
    // Junk that often survives normalization (right JSON type, wrong value), so compile sees it.
    const junk = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom('', '0s', '-1s', 'HTTP3', 'x', '::', '1.2.3.4', 0, -1, 2 ** 32, true, [], {}, null),
    );
    fc.assert(
      fc.property(fc.constantFrom(...listeners), fc.nat(), junk, (listener, pick, replacement) => {
        const all = paths(listener);
        const corrupted = replaceAt(listener, all[pick % all.length], replacement);
        try {
          compile(corrupted);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});

const TLS_INSPECTOR_URL =
  'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const HTTP_INSPECTOR_URL =
  'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
const ORIGINAL_DST_URL = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

describe('compileListener: listener filters', () => {
  it('reads tls_inspector and http_inspector, by @type or by name, in order, with Envoy defaults', () => {
    const listener = compile(
      hcmListener(
        {},
        {
          listener_filters: [
            { name: 'envoy.filters.listener.http_inspector' },
            { name: 'tls', typed_config: { '@type': TLS_INSPECTOR_URL } },
          ],
        },
      ),
    );
    assert.deepEqual(listener.inspection, {
      filters: [
        { kind: 'http_inspector', name: 'envoy.filters.listener.http_inspector' },
        { kind: 'tls_inspector', name: 'tls' },
      ],
      timeoutMs: 15_000,
      continueOnTimeout: false,
    });
  });

  it('reads listener_filters_timeout ("0s" = none) and continue_on_listener_filters_timeout', () => {
    const filters = [{ typed_config: { '@type': HTTP_INSPECTOR_URL } }];
    const inspection = (extra: Record<string, unknown>) =>
      compile(hcmListener({}, { listener_filters: filters, ...extra })).inspection;
    assert.deepEqual(
      inspection({ listener_filters_timeout: '0.1s', continue_on_listener_filters_timeout: true }),
      {
        filters: [{ kind: 'http_inspector', name: 'envoy.filters.listener.http_inspector' }],
        timeoutMs: 100,
        continueOnTimeout: true,
      },
    );
    assert.equal(inspection({ listener_filters_timeout: '0s' })?.timeoutMs, 0);
  });

  it('reads original_dst apart from the inspectors: it reads no bytes, so alone it needs no inspection', () => {
    const alone = compile(
      hcmListener({}, { listener_filters: [{ typed_config: { '@type': ORIGINAL_DST_URL } }] }),
    );
    assert.equal(alone.originalDst, true);
    assert.equal(alone.inspection, undefined);
    const both = compile(
      hcmListener(
        {},
        {
          listener_filters: [
            { name: 'envoy.filters.listener.original_dst' },
            { name: 'envoy.filters.listener.tls_inspector' },
          ],
        },
      ),
    );
    assert.equal(both.originalDst, true);
    assert.deepEqual(both.inspection?.filters, [
      { kind: 'tls_inspector', name: 'envoy.filters.listener.tls_inspector' },
    ]);
    assert.equal(compile(hcmListener()).originalDst, undefined);
  });

  it('has no inspection without listener filters (the timeout settings then change nothing)', () => {
    assert.equal(compile(hcmListener()).inspection, undefined);
    assert.equal(
      compile(hcmListener({}, { listener_filters: [], listener_filters_timeout: '1s' })).inspection,
      undefined,
    );
  });

  it('rejects unknown listener filters and options Weft lacks, naming the field', () => {
    rejects(
      hcmListener({}, { listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol' }] }),
      'l.listener_filters[0].name: unsupported extension "envoy.filters.listener.proxy_protocol"',
    );
    rejects(
      hcmListener(
        {},
        {
          listener_filters: [
            { name: 'envoy.filters.listener.http_inspector' },
            {
              name: 'x',
              typed_config: {
                '@type':
                  'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
              },
            },
          ],
        },
      ),
      'l.listener_filters[1].typed_config: unsupported extension type "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"',
    );
    rejects(
      hcmListener(
        {},
        { listener_filters: [{ typed_config: { '@type': ORIGINAL_DST_URL, upstream_mark: 7 } }] },
      ),
      'l.listener_filters[0].typed_config.upstream_mark: unknown field "upstream_mark"',
    );
    rejects(
      hcmListener(
        {},
        {
          listener_filters: [
            { typed_config: { '@type': TLS_INSPECTOR_URL, enable_ja3_fingerprinting: true } },
          ],
        },
      ),
      'l.listener_filters[0].typed_config.enable_ja3_fingerprinting: not supported by Weft',
    );
    rejects(
      hcmListener(
        {},
        {
          listener_filters: [
            { name: 'envoy.filters.listener.tls_inspector', filter_disabled: { destination_port_range: {} } },
          ],
        },
      ),
      'l.listener_filters[0].filter_disabled: not supported by Weft',
    );
  });
});
