// The Envoy v3 bootstrap the Weft proxy runs under in the benchmark: one listener, one static cluster.
import { stringify } from 'yaml';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface BenchBootstrapOptions {
  readonly nodeId: string;
  readonly listen: HostPort;
  readonly admin: HostPort;
  readonly upstream: HostPort;
}

const socketAddress = (at: HostPort): object => ({
  socket_address: { address: at.host, port_value: at.port },
});

export function benchBootstrap(options: BenchBootstrapOptions): object {
  return {
    node: { id: options.nodeId, cluster: 'bench' },
    admin: { address: socketAddress(options.admin) },
    static_resources: {
      listeners: [
        {
          name: 'bench',
          address: socketAddress(options.listen),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'bench',
                    codec_type: 'AUTO',
                    route_config: {
                      name: 'bench',
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream' } }],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                        },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'upstream',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(options.upstream) } }] }],
          },
        },
      ],
    },
  };
}

export function benchBootstrapYaml(options: BenchBootstrapOptions): string {
  return stringify(benchBootstrap(options));
}
