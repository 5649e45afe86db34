// The chaos benchmark's scenarios: one Weft proxy in front of the same three replicas, with an
// increasing set of resilience policies. Each builds the proxy's Envoy v3 bootstrap.
import type { HostPort } from '../weft-bootstrap.ts';

export const SCENARIO_NAMES = [
  'round-robin',
  'retries+outlier',
  'least-request+retries+outlier',
  'peak-ewma+retries+outlier',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface Scenario {
  readonly name: ScenarioName;
  readonly description: string;
  /** Whether client-visible success is expected to reach the target (the policy scenarios). */
  readonly withPolicies: boolean;
  readonly lb: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'PEAK_EWMA';
  readonly resilience: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'round-robin',
    description: 'ROUND_ROBIN, no retries, no outlier detection',
    withPolicies: false,
    lb: 'ROUND_ROBIN',
    resilience: false,
  },
  {
    name: 'retries+outlier',
    description: 'ROUND_ROBIN + retries (5xx, 2 attempts) + outlier detection',
    withPolicies: true,
    lb: 'ROUND_ROBIN',
    resilience: true,
  },
  {
    name: 'least-request+retries+outlier',
    description: 'LEAST_REQUEST + retries + outlier detection',
    withPolicies: true,
    lb: 'LEAST_REQUEST',
    resilience: true,
  },
  {
    name: 'peak-ewma+retries+outlier',
    description: 'PEAK_EWMA + retries + outlier detection',
    withPolicies: true,
    lb: 'PEAK_EWMA',
    resilience: true,
  },
];

/**
 * Retries as a mesh would configure them: 5xx, one retry (two attempts in all), on another host than
 * the one that failed; Envoy's default back-off (25 ms base).
 */
export const RETRY_POLICY = {
  retry_on: '5xx',
  num_retries: 1,
  retry_host_predicate: [
    {
      name: 'envoy.retry_host_predicates.previous_hosts',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
      },
    },
  ],
  host_selection_retry_max_attempts: 3,
};

/** Consecutive 5xx ejection, checked every second; at most one of the three replicas out at a time. */
export const OUTLIER_DETECTION = {
  consecutive_5xx: 3,
  enforcing_consecutive_5xx: 100,
  enforcing_success_rate: 0,
  interval: '1s',
  base_ejection_time: '5s',
  max_ejection_percent: 34,
};

/**
 * Istio's default retry budget: Envoy's own default (3 concurrent retries per cluster) turns a burst of
 * retries at 500 rps into 503 overflows (upstream_rq_retry_overflow), which measures the budget rather
 * than the policies; Istio sets max_retries to 2^32 - 1 unless connectionPool.http.maxRetries says otherwise.
 */
export const CIRCUIT_BREAKERS = { thresholds: [{ max_retries: 4294967295 }] };

const PEAK_EWMA_POLICY = {
  policies: [
    {
      typed_extension_config: {
        name: 'weft.lb.peak_ewma',
        typed_config: {
          '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
          type_url: 'weft.dev/lb/peak_ewma',
          value: { decay: '10s', default_rtt: '0.030s' },
        },
      },
    },
  ],
};

const socketAddress = (at: HostPort): object => ({
  socket_address: { address: at.host, port_value: at.port },
});

export function scenarioBootstrap(
  scenario: Scenario,
  at: { listen: HostPort; admin: HostPort; replicas: readonly HostPort[] },
): object {
  const route: Record<string, unknown> = { cluster: 'replicas' };
  if (scenario.resilience) route.retry_policy = RETRY_POLICY;
  const cluster: Record<string, unknown> = {
    name: 'replicas',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'replicas',
      endpoints: [{ lb_endpoints: at.replicas.map((r) => ({ endpoint: { address: socketAddress(r) } })) }],
    },
  };
  if (scenario.lb === 'PEAK_EWMA') cluster.load_balancing_policy = PEAK_EWMA_POLICY;
  else cluster.lb_policy = scenario.lb;
  if (scenario.resilience) {
    cluster.outlier_detection = OUTLIER_DETECTION;
    cluster.circuit_breakers = CIRCUIT_BREAKERS;
  }
  return {
    node: { id: `chaos-${scenario.name}`, cluster: 'bench' },
    admin: { address: socketAddress(at.admin) },
    static_resources: {
      listeners: [
        {
          name: 'chaos',
          address: socketAddress(at.listen),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'chaos',
                    route_config: {
                      name: 'chaos',
                      virtual_hosts: [
                        { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route }] },
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
      clusters: [cluster],
    },
  };
}
