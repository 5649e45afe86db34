import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { formatConfigTable, resourcesOf } from './config-tables.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const dump: JsonObject = {
  node: { id: 'x' },
  configs: [
    {
      '@type': `${ADMIN}.ClustersConfigDump`,
      dynamic_active_clusters: [
        {
          cluster: {
            name: 'outbound|80|v1|web.shop.svc.cluster.local',
            type: 'EDS',
            eds_cluster_config: { service_name: 'web-v1' },
          },
        },
        {
          cluster: {
            name: 'static-db',
            load_assignment: {
              cluster_name: 'static-db',
              endpoints: [{ lb_endpoints: [{ endpoint: {} }, { endpoint: {} }] }],
            },
          },
        },
        {
          cluster: {
            name: 'ring',
            type: 'STRICT_DNS',
            load_balancing_policy: {
              policies: [
                {
                  typed_extension_config: {
                    name: 'envoy.load_balancing_policies.ring_hash',
                    typed_config: {
                      '@type':
                        'type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash',
                    },
                  },
                },
              ],
            },
          },
        },
      ],
    },
    {
      '@type': `${ADMIN}.EndpointsConfigDump`,
      dynamic_endpoint_configs: [
        {
          endpoint_config: {
            cluster_name: 'web-v1',
            endpoints: [
              {
                locality: { region: 'us', zone: 'us-1', sub_zone: 'r2' },
                lb_endpoints: [
                  {
                    endpoint: { address: { socket_address: { address: 'fd00::5', port_value: 8080 } } },
                    load_balancing_weight: 3,
                    health_status: 'DRAINING',
                  },
                  { endpoint: { address: { socket_address: { address: '10.1.0.1', port_value: 8080 } } } },
                ],
              },
            ],
          },
        },
      ],
    },
    {
      '@type': `${ADMIN}.ListenersConfigDump`,
      dynamic_listeners: [
        {
          name: 'virtualOutbound',
          active_state: {
            listener: {
              name: 'virtualOutbound',
              address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
              filter_chains: [
                {
                  filter_chain_match: {
                    destination_port: 443,
                    server_names: ['a.example'],
                    transport_protocol: 'tls',
                  },
                  filters: [
                    {
                      name: 'tcp',
                      typed_config: {
                        '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                        weighted_clusters: {
                          clusters: [
                            { name: 'a', weight: 1 },
                            { name: 'b', weight: 3 },
                          ],
                        },
                      },
                    },
                  ],
                },
                {
                  filters: [
                    { name: 'x', typed_config: { '@type': HCM, route_config: { name: 'inline-80' } } },
                  ],
                },
              ],
            },
          },
        },
        {
          name: 'web.shop.svc.cluster.local:80',
          active_state: {
            listener: {
              name: 'web.shop.svc.cluster.local:80',
              api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: 'web:80' } } },
            },
          },
        },
      ],
    },
    {
      '@type': `${ADMIN}.RoutesConfigDump`,
      dynamic_route_configs: [
        {
          route_config: {
            name: '80',
            virtual_hosts: [
              {
                name: 'web',
                domains: ['web', 'web.shop', 'web.shop.svc.cluster.local', '10.0.0.1'],
                routes: [
                  {
                    match: {
                      prefix: '/api',
                      headers: [
                        { name: 'end-user', string_match: { exact: 'jason' } },
                        { name: 'x-canary', present_match: true, invert_match: true },
                      ],
                    },
                    route: {
                      weighted_clusters: {
                        clusters: [
                          { name: 'v1', weight: 80 },
                          { name: 'v2', weight: 20 },
                        ],
                      },
                    },
                  },
                  {
                    match: { path: '/old' },
                    redirect: { host_redirect: 'new.example', path_redirect: '/new' },
                  },
                  { match: { safe_regex: { regex: '/x/[0-9]+' } }, direct_response: { status: 503 } },
                  { match: { prefix: '/' }, route: { cluster: 'outbound|80||web' } },
                ],
              },
            ],
          },
        },
      ],
    },
  ],
};

describe('config tables', () => {
  it('summarizes listeners: address, filter chain match, terminal filter', () => {
    const lines = formatConfigTable(dump, 'listeners').split('\n');
    assert.deepEqual(lines, [
      `${'NAME'.padEnd(29)}   ${'ADDRESS:PORT'.padEnd(13)}   FILTER CHAINS`,
      `${'virtualOutbound'.padEnd(29)}   0.0.0.0:15001   [port 443 sni a.example tls] TCP → a 1, b 3; HTTP → inline route inline-80`,
      `web.shop.svc.cluster.local:80   ${'-'.padEnd(13)}   API listener: HTTP → RDS web:80`,
      '',
    ]);
  });

  it('lists routes with domains, match and destination', () => {
    const lines = formatConfigTable(dump, 'routes').trimEnd().split('\n');
    assert.match(lines[0], /^ROUTE CONFIG\s+DOMAINS\s+MATCH\s+DESTINATION$/);
    assert.match(
      lines[1],
      /^80\s+web, web\.shop \+2 more\s+\/api\* \[end-user=jason !x-canary present\]\s+v1 80%, v2 20%$/,
    );
    assert.match(lines[2], /\/old\s+redirect → new\.example\/new$/);
    assert.match(lines[3], /~\/x\/\[0-9\]\+\s+direct response 503$/);
    assert.match(lines[4], /\/\*\s+outbound\|80\|\|web$/);
  });

  it('lists clusters with type, LB policy and endpoint counts (EDS by service_name)', () => {
    const lines = formatConfigTable(dump, 'clusters').trimEnd().split('\n');
    assert.match(lines[1], /^outbound\|80\|v1\|web\.shop\.svc\.cluster\.local\s+EDS\s+ROUND_ROBIN\s+2$/);
    assert.match(lines[2], /^static-db\s+STATIC\s+ROUND_ROBIN\s+2$/);
    assert.match(
      lines[3],
      /^ring\s+STRICT_DNS\s+envoy\.extensions\.load_balancing_policies\.ring_hash\.v3\.RingHash\s+-$/,
    );
  });

  it('lists endpoints with locality, weight and health (defaults 1 and UNKNOWN)', () => {
    const lines = formatConfigTable(dump, 'endpoints').trimEnd().split('\n');
    assert.match(lines[1], /^web-v1\s+\[fd00::5\]:8080\s+us\/us-1\/r2\s+3\s+DRAINING$/);
    assert.match(lines[2], /^web-v1\s+10\.1\.0\.1:8080\s+us\/us-1\/r2\s+1\s+UNKNOWN$/);
  });

  it('tolerates an empty or partial dump', () => {
    assert.deepEqual(resourcesOf({ configs: [] }, 'routes'), []);
    assert.equal(formatConfigTable({}, 'clusters'), 'NAME   TYPE   LB POLICY   ENDPOINTS\n');
  });
});
