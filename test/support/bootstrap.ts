/** Builds Envoy v3 bootstrap documents for tests, in Envoy's own field names. */
export interface RouteSpec {
  match?: Record<string, unknown>;
  route?: Record<string, unknown>;
  redirect?: Record<string, unknown>;
  direct_response?: Record<string, unknown>;
  [k: string]: unknown;
}

export function httpListener(opts: {
  name?: string;
  port?: number;
  codec?: 'AUTO' | 'HTTP1' | 'HTTP2';
  routes?: RouteSpec[];
  virtualHosts?: Record<string, unknown>[];
  hcm?: Record<string, unknown>;
}): Record<string, unknown> {
  const virtualHosts = opts.virtualHosts ?? [
    {
      name: 'all',
      domains: ['*'],
      routes: opts.routes ?? [{ match: { prefix: '/' }, route: { cluster: 'backend' } }],
    },
  ];
  return {
    name: opts.name ?? 'http',
    address: { socket_address: { address: '127.0.0.1', port_value: opts.port ?? 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'ingress_http',
              codec_type: opts.codec ?? 'AUTO',
              route_config: { name: 'local', virtual_hosts: virtualHosts },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
              ...opts.hcm,
            },
          },
        ],
      },
    ],
  };
}

export function tcpListener(opts: {
  name?: string;
  cluster: string;
  idleTimeout?: string;
}): Record<string, unknown> {
  return {
    name: opts.name ?? 'tcp',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
              stat_prefix: 'tcp',
              cluster: opts.cluster,
              ...(opts.idleTimeout ? { idle_timeout: opts.idleTimeout } : {}),
            },
          },
        ],
      },
    ],
  };
}

export function staticCluster(
  name: string,
  endpoints: { address?: string; port: number; weight?: number; health?: string }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: endpoints.map((e) => ({
            endpoint: {
              address: { socket_address: { address: e.address ?? '127.0.0.1', port_value: e.port } },
            },
            ...(e.weight !== undefined ? { load_balancing_weight: e.weight } : {}),
            ...(e.health !== undefined ? { health_status: e.health } : {}),
          })),
        },
      ],
    },
    ...extra,
  };
}

export const HTTP2_PROTOCOL_OPTIONS = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

export function bootstrapDoc(listeners: unknown[], clusters: unknown[]): Record<string, unknown> {
  return {
    node: { id: 'test-node', cluster: 'test' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners, clusters },
  };
}
