/** xDS resources and ADS bootstraps for proxy tests, in Envoy's own field names. */
import { HTTP2_PROTOCOL_OPTIONS, staticCluster } from './bootstrap.ts';

type Obj = Record<string, unknown>;

export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

/** A bootstrap whose listeners and clusters come over ADS from 127.0.0.1:`adsPort`. */
export function adsBootstrap(
  adsPort: number,
  opts: {
    delta?: boolean;
    node?: Obj;
    initialFetchTimeout?: string;
    staticListeners?: unknown[];
    staticClusters?: unknown[];
    nodeOnFirstMessageOnly?: boolean;
  } = {},
): Obj {
  const source = {
    ...ADS_SOURCE,
    ...(opts.initialFetchTimeout ? { initial_fetch_timeout: opts.initialFetchTimeout } : {}),
  };
  return {
    node: opts.node ?? {
      id: 'sidecar~127.0.0.1~test-1.default~default.svc.cluster.local',
      cluster: 'test.default',
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    dynamic_resources: {
      ads_config: {
        api_type: opts.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
        ...(opts.nodeOnFirstMessageOnly !== undefined
          ? { set_node_on_first_message_only: opts.nodeOnFirstMessageOnly }
          : {}),
      },
      lds_config: source,
      cds_config: source,
    },
    static_resources: {
      listeners: opts.staticListeners ?? [],
      clusters: [
        staticCluster('xds-grpc', [{ port: adsPort }], HTTP2_PROTOCOL_OPTIONS),
        ...(opts.staticClusters ?? []),
      ],
    },
  };
}

export function edsCluster(name: string, extra: Obj = {}): Obj {
  return {
    name,
    type: 'EDS',
    connect_timeout: '1s',
    eds_cluster_config: { eds_config: ADS_SOURCE, ...(extra.service_name ? {} : {}) },
    ...extra,
  };
}

/** A ClusterLoadAssignment. */
export function assignment(
  clusterName: string,
  endpoints: { port: number; address?: string; health?: string; weight?: number }[],
  locality: Obj = { region: 'r1', zone: 'z1' },
): Obj {
  return {
    cluster_name: clusterName,
    endpoints: [
      {
        locality,
        lb_endpoints: endpoints.map((e) => ({
          endpoint: {
            address: { socket_address: { address: e.address ?? '127.0.0.1', port_value: e.port } },
          },
          ...(e.health ? { health_status: e.health } : {}),
          ...(e.weight ? { load_balancing_weight: e.weight } : {}),
          metadata: { filter_metadata: { istio: { workload: `w-${e.port}` } } },
        })),
      },
    ],
  };
}

const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};

/** An HTTP listener on 127.0.0.1:`port` whose routes come from RDS (`routeName`). */
export function rdsListener(name: string, routeName: string, opts: { port?: number; hcm?: Obj } = {}): Obj {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: opts.port ?? 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: ADS_SOURCE },
              http_filters: [ROUTER],
              ...opts.hcm,
            },
          },
        ],
      },
    ],
  };
}

/** A RouteConfiguration with one catch-all virtual host. */
export function routeConfig(name: string, routes: Obj[]): Obj {
  return { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] };
}

export function routeTo(cluster: string, prefix = '/', extra: Obj = {}): Obj {
  return { match: { prefix }, route: { cluster, ...extra } };
}
