import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { compileBootstrap } from './compile.ts';

const H2 = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

const staticCluster = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  type: 'STATIC',
  load_assignment: {
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 15010 } } } },
        ],
      },
    ],
  },
  ...extra,
});

/** An ads_config; a field given as undefined is left out. */
const ads = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries({
      api_type: 'GRPC',
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
      ...extra,
    }).filter(([, v]) => v !== undefined),
  );

function doc(dynamic: Record<string, unknown>, resources: Record<string, unknown> = {}): unknown {
  return {
    dynamic_resources: dynamic,
    static_resources: { clusters: [staticCluster('xds-grpc', H2)], ...resources },
  };
}

function rejects(json: unknown, message: string): void {
  assert.throws(
    () => compileBootstrap(json, 'test.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const listener = (hcm: Record<string, unknown>): Record<string, unknown> => ({
  name: 'l',
  address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
  filter_chains: [
    {
      filters: [
        {
          typed_config: {
            '@type': HCM,
            stat_prefix: 'l',
            http_filters: [{ name: 'envoy.filters.http.router' }],
            ...hcm,
          },
        },
      ],
    },
  ],
});

describe('bootstrap dynamic_resources', () => {
  it('compiles ADS with LDS and CDS over it', () => {
    const b = compileBootstrap(
      doc({
        ads_config: ads({ set_node_on_first_message_only: true }),
        lds_config: { ads: {}, resource_api_version: 'V3' },
        cds_config: { ads: {}, initial_fetch_timeout: '0s' },
      }),
      'inline',
    );
    assert.deepEqual(b.dynamic, {
      ads: { apiType: 'GRPC', clusterName: 'xds-grpc', authority: 'xds-grpc', nodeOnFirstMessageOnly: true },
      lds: { initialFetchTimeoutMs: 15_000 },
      cds: { initialFetchTimeoutMs: 0 },
    });
    const delta = compileBootstrap(
      doc({
        ads_config: ads({
          api_type: 'DELTA_GRPC',
          grpc_services: [
            { envoy_grpc: { cluster_name: 'xds-grpc', authority: 'istiod.istio-system.svc:15010' } },
          ],
        }),
      }),
      'inline',
    );
    assert.deepEqual(delta.dynamic?.ads, {
      apiType: 'DELTA_GRPC',
      clusterName: 'xds-grpc',
      authority: 'istiod.istio-system.svc:15010',
      nodeOnFirstMessageOnly: false,
    });
    assert.equal(delta.dynamic?.lds, undefined);
  });

  it('accepts static EDS clusters and RDS listeners when there is an ADS stream', () => {
    const b = compileBootstrap(
      doc(
        { ads_config: ads() },
        {
          clusters: [
            staticCluster('xds-grpc', H2),
            { name: 'web', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } },
          ],
          listeners: [listener({ rds: { route_config_name: 'r', config_source: { ads: {} } } })],
        },
      ),
      'inline',
    );
    assert.equal(b.clusters[1].edsServiceName, 'web');
  });

  it('lets a static listener name CDS clusters when it says so (validate_clusters: false, tcp_proxy)', () => {
    const routes = {
      virtual_hosts: [
        { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'from-cds' } }] },
      ],
    };
    rejects(
      doc(
        { ads_config: ads(), cds_config: { ads: {} } },
        { listeners: [listener({ route_config: routes })] },
      ),
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "from-cds" (not in static_resources.clusters)',
    );
    compileBootstrap(
      doc(
        { ads_config: ads(), cds_config: { ads: {} } },
        { listeners: [listener({ route_config: { ...routes, validate_clusters: false } })] },
      ),
      'inline',
    );
  });

  it('refuses what Weft does not implement, by path', () => {
    rejects(
      doc({ ads_config: ads({ api_type: undefined }) }),
      'dynamic_resources.ads_config.api_type: required (GRPC or DELTA_GRPC)',
    );
    rejects(
      doc({ ads_config: ads({ api_type: 'AGGREGATED_GRPC' }) }),
      'dynamic_resources.ads_config.api_type: AGGREGATED_GRPC is not supported by Weft (GRPC or DELTA_GRPC)',
    );
    rejects(
      doc({ ads_config: ads({ transport_api_version: undefined }) }),
      'dynamic_resources.ads_config.transport_api_version: must be V3, got AUTO',
    );
    rejects(
      doc({ ads_config: ads({ grpc_services: [] }) }),
      'dynamic_resources.ads_config.grpc_services: exactly one gRPC service is required, got 0',
    );
    rejects(
      doc({ ads_config: ads({ grpc_services: [{ google_grpc: { target_uri: 'x', stat_prefix: 'x' } }] }) }),
      'dynamic_resources.ads_config.grpc_services[0].google_grpc: not supported by Weft (use envoy_grpc)',
    );
    rejects(
      doc({ ads_config: ads({ rate_limit_settings: {} }) }),
      'dynamic_resources.ads_config.rate_limit_settings: not supported by Weft',
    );
    rejects(
      doc({ ads_config: ads(), lds_config: { path_config_source: { path: '/etc/lds.yaml' } } }),
      'dynamic_resources.lds_config.path_config_source: not supported by Weft (only ads: {} is)',
    );
    rejects(
      doc({ ads_config: ads(), cds_config: { ads: {}, resource_api_version: 'V2' } }),
      'dynamic_resources.cds_config.resource_api_version: V2 is not supported (only V3)',
    );
    rejects(
      doc({ lds_config: { ads: {} } }),
      'dynamic_resources.lds_config: ads needs dynamic_resources.ads_config',
    );
    rejects(
      doc({ ads_config: ads(), lds_resources_locator: 'xdstp://x' }),
      'dynamic_resources.lds_resources_locator: not supported by Weft (xdstp:// names)',
    );
  });

  it('checks the ADS cluster: static, known, HTTP/2', () => {
    rejects(
      doc({ ads_config: ads({ grpc_services: [{ envoy_grpc: { cluster_name: 'nope' } }] }) }),
      'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown cluster "nope" (not in static_resources.clusters)',
    );
    rejects(
      doc({ ads_config: ads() }, { clusters: [staticCluster('xds-grpc')] }),
      'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster "xds-grpc" must use HTTP/2 (gRPC): set its typed_extension_protocol_options explicit_http_config.http2_protocol_options',
    );
  });

  it('refuses EDS clusters and RDS listeners without an ADS stream', () => {
    rejects(
      {
        static_resources: {
          clusters: [{ name: 'web', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }],
        },
      },
      'static_resources.clusters[0].eds_cluster_config: EDS over ads needs dynamic_resources.ads_config',
    );
    rejects(
      {
        static_resources: {
          listeners: [listener({ rds: { route_config_name: 'r', config_source: { ads: {} } } })],
        },
      },
      'static_resources.listeners[0]: route configuration "r" comes from RDS over ads, which needs dynamic_resources.ads_config',
    );
  });
});
