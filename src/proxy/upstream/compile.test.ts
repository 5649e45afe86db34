import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { compileCluster } from './compile.ts';

const PATH = 'static_resources.clusters[1]';

function endpoint(address: string, port: number, extra: JsonObject = {}): JsonObject {
  return { endpoint: { address: { socket_address: { address, port_value: port } } }, ...extra };
}

function cluster(extra: JsonObject = {}): JsonObject {
  return {
    name: 'backend',
    load_assignment: {
      cluster_name: 'backend',
      endpoints: [{ lb_endpoints: [endpoint('127.0.0.1', 8080)] }],
    },
    ...extra,
  };
}

function compileError(json: Json): ConfigError {
  try {
    compileCluster(json, PATH);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

function assertRejects(json: Json, path: string, detail: RegExp): void {
  const err = compileError(json);
  assert.equal(err.path, path);
  assert.match(err.detail, detail);
}

describe('compileCluster', () => {
  it('compiles an EDS cluster: service name (else the cluster name) and fetch timeout', () => {
    const eds = compileCluster(
      {
        name: 'outbound|80||web',
        type: 'EDS',
        eds_cluster_config: {
          eds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '2s' },
          service_name: 'web.default',
        },
      },
      PATH,
    );
    assert.equal(eds.type, 'EDS');
    assert.equal(eds.edsServiceName, 'web.default');
    assert.equal(eds.edsInitialFetchTimeoutMs, 2000);
    assert.deepEqual(eds.localityEndpoints, []);
    const unnamed = compileCluster(
      { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } },
      PATH,
    );
    assert.equal(unnamed.edsServiceName, 'c');
    assert.equal(unnamed.edsInitialFetchTimeoutMs, 15_000);
    assert.equal(compileCluster(cluster(), PATH).edsServiceName, undefined);
  });

  it('applies Envoy defaults', () => {
    assert.deepEqual(compileCluster(cluster(), PATH), {
      name: 'backend',
      type: 'STATIC',
      connectTimeoutMs: 5000,
      lbPolicy: 'ROUND_ROBIN',
      localityEndpoints: [
        {
          locality: { region: '', zone: '', subZone: '' },
          priority: 0,
          weight: undefined,
          endpoints: [{ address: '127.0.0.1', port: 8080, weight: 1, health: 'HEALTHY' }],
        },
      ],
      overprovisioningFactor: 140,
      healthyPanicThreshold: 50,
      localityWeighted: false,
      leastRequest: { choiceCount: 2 },
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8388608 },
      maglev: { tableSize: 65537 },
      http2: undefined,
      upstreamIdleTimeoutMs: 3600000,
      maxRequestsPerConnection: undefined,
      maxConnectionDurationMs: 0,
      circuitBreakers: {
        maxConnections: 1024,
        maxPendingRequests: 1024,
        maxRequests: 1024,
        maxRetries: 3,
        retryBudget: undefined,
        trackRemaining: false,
      },
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      respectDnsTtl: false,
    });
  });

  it('reads every supported field', () => {
    const config = compileCluster(
      {
        name: 'svc',
        type: 'STRICT_DNS',
        connect_timeout: '0.25s',
        lb_policy: 'LEAST_REQUEST',
        least_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 1 } },
        load_assignment: {
          cluster_name: 'svc',
          endpoints: [
            {
              locality: { region: 'eu', zone: 'eu-1', sub_zone: 'rack-2' },
              load_balancing_weight: 10,
              priority: 1,
              lb_endpoints: [
                endpoint('svc.example.com', 443, { load_balancing_weight: 3, health_status: 'DEGRADED' }),
                endpoint('::1', 8443, { health_status: 'DRAINING' }),
                endpoint('10.0.0.1', 80, { health_status: 'TIMEOUT' }),
                endpoint('10.0.0.2', 80, { health_status: 'UNKNOWN' }),
              ],
            },
          ],
          policy: { overprovisioning_factor: 200 },
        },
        common_lb_config: { healthy_panic_threshold: { value: 25.4 } },
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            common_http_protocol_options: {
              idle_timeout: '30s',
              max_requests_per_connection: 100,
              max_connection_duration: '600s',
            },
            explicit_http_config: {
              http2_protocol_options: {
                max_concurrent_streams: 50,
                initial_stream_window_size: 65536,
                initial_connection_window_size: 1048576,
                connection_keepalive: { interval: '30s', timeout: '5s' },
              },
            },
          },
        },
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_connections: 64, max_retries: 7 }] },
        dns_refresh_rate: '2s',
        dns_lookup_family: 'V4_ONLY',
        respect_dns_ttl: true,
      },
      PATH,
    );
    assert.equal(config.type, 'STRICT_DNS');
    assert.equal(config.connectTimeoutMs, 250);
    assert.deepEqual(config.leastRequest, { choiceCount: 3 });
    assert.deepEqual(config.localityEndpoints, [
      {
        locality: { region: 'eu', zone: 'eu-1', subZone: 'rack-2' },
        priority: 1,
        weight: 10,
        endpoints: [
          {
            address: 'svc.example.com',
            port: 443,
            weight: 3,
            health: 'DEGRADED',
            hostname: 'svc.example.com',
          },
          { address: '::1', port: 8443, weight: 1, health: 'DRAINING' },
          { address: '10.0.0.1', port: 80, weight: 1, health: 'UNHEALTHY' },
          { address: '10.0.0.2', port: 80, weight: 1, health: 'HEALTHY' },
        ],
      },
    ]);
    assert.equal(config.overprovisioningFactor, 200);
    assert.equal(config.healthyPanicThreshold, 25);
    assert.deepEqual(config.http2, {
      maxConcurrentStreams: 50,
      initialStreamWindowSize: 65536,
      initialConnectionWindowSize: 1048576,
      keepalive: { intervalMs: 30_000, timeoutMs: 5000 },
    });
    assert.equal(config.upstreamIdleTimeoutMs, 30000);
    assert.equal(config.maxRequestsPerConnection, 100);
    assert.equal(config.maxConnectionDurationMs, 600_000);
    assert.equal(config.circuitBreakers.maxConnections, 64);
    assert.equal(config.circuitBreakers.maxRetries, 7);
    assert.equal(config.dnsRefreshRateMs, 2000);
    assert.equal(config.dnsLookupFamily, 'V4_ONLY');
    assert.equal(config.respectDnsTtl, true);
  });

  it('reads ring hash and maglev options', () => {
    const ring = compileCluster(
      cluster({
        lb_policy: 'RING_HASH',
        ring_hash_lb_config: { minimum_ring_size: '2048', maximum_ring_size: 4096, hash_function: 'XX_HASH' },
      }),
      PATH,
    );
    assert.deepEqual(ring.ringHash, { minimumRingSize: 2048, maximumRingSize: 4096 });
    const maglev = compileCluster(
      cluster({ lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 251 } }),
      PATH,
    );
    assert.deepEqual(maglev.maglev, { tableSize: 251 });
    assert.equal(compileCluster(cluster({ lb_policy: 'RANDOM' }), PATH).lbPolicy, 'RANDOM');
  });

  it('selects HTTP/1.1 explicitly, and HTTP/2 through the deprecated cluster-level field', () => {
    const http1 = compileCluster(
      cluster({
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http_protocol_options: {} },
            common_http_protocol_options: { idle_timeout: '0s' },
          },
        },
      }),
      PATH,
    );
    assert.equal(http1.http2, undefined);
    assert.equal(http1.upstreamIdleTimeoutMs, 0);
    const legacy = compileCluster(
      cluster({ http2_protocol_options: { max_concurrent_streams: 7 }, max_requests_per_connection: 9 }),
      PATH,
    );
    assert.deepEqual(legacy.http2, {
      maxConcurrentStreams: 7,
      initialStreamWindowSize: undefined,
      initialConnectionWindowSize: undefined,
    });
    assert.equal(legacy.maxRequestsPerConnection, 9);
  });

  it('follows the downstream protocol with use_downstream_protocol_config, with its HTTP/2 options', () => {
    const config = compileCluster(
      cluster({
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            use_downstream_protocol_config: {
              http_protocol_options: {},
              http2_protocol_options: { max_concurrent_streams: 9 },
            },
          },
        },
      }),
      PATH,
    );
    assert.equal(config.http2, undefined);
    assert.deepEqual(config.downstreamHttp2, {
      maxConcurrentStreams: 9,
      initialStreamWindowSize: undefined,
      initialConnectionWindowSize: undefined,
    });
  });

  it('accepts proto3 default values spelled out for fields it does not implement', () => {
    const config = compileCluster(
      cluster({ close_connections_on_host_health_failure: false, health_checks: [], alt_stat_name: '' }),
      PATH,
    );
    assert.equal(config.name, 'backend');
  });

  it('accepts an empty cluster and multiple priorities and localities', () => {
    assert.deepEqual(compileCluster({ name: 'empty' }, PATH).localityEndpoints, []);
    const config = compileCluster(
      cluster({
        load_assignment: {
          cluster_name: 'x',
          endpoints: [
            { lb_endpoints: [endpoint('10.0.0.1', 80)] },
            { priority: 2, locality: { zone: 'b' }, lb_endpoints: [endpoint('10.0.0.2', 80)] },
          ],
        },
      }),
      PATH,
    );
    assert.deepEqual(
      config.localityEndpoints.map((l) => [l.priority, l.locality.zone]),
      [
        [0, ''],
        [2, 'b'],
      ],
    );
  });

  describe('rejects', () => {
    it('a missing name', () => assertRejects({}, `${PATH}.name`, /is required/));

    it('an unknown lb_policy, naming the value', () => {
      const err = compileError(cluster({ lb_policy: 'ROUND_ROBINN' }));
      assert.equal(err.message, `${PATH}.lb_policy: unknown value "ROUND_ROBINN"`);
    });

    it('lb policies Weft does not implement', () => {
      assertRejects(cluster({ lb_policy: 'CLUSTER_PROVIDED' }), `${PATH}.lb_policy`, /not supported by Weft/);
      assertRejects(
        cluster({ load_balancing_policy: { policies: [] } }),
        `${PATH}.load_balancing_policy`,
        /not supported/,
      );
    });

    it('EDS clusters without an ADS eds_config, or with endpoints of their own', () => {
      const eds = { name: 'backend', type: 'EDS' };
      assertRejects(eds, `${PATH}.eds_cluster_config`, /required for EDS clusters/);
      assertRejects(
        { ...eds, eds_cluster_config: { service_name: 'x' } },
        `${PATH}.eds_cluster_config.eds_config`,
        /required/,
      );
      assertRejects(
        { ...eds, eds_cluster_config: { eds_config: { path: '/tmp/eds.yaml' } } },
        `${PATH}.eds_cluster_config.eds_config.path`,
        /only ads/,
      );
      assertRejects(
        cluster({ type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }),
        `${PATH}.load_assignment`,
        /not used by EDS clusters/,
      );
      assertRejects(
        cluster({ eds_cluster_config: { service_name: 'x' } }),
        `${PATH}.eds_cluster_config`,
        /only applies to type EDS, not STATIC/,
      );
      assertRejects(cluster({ type: 'ORIGINAL_DST' }), `${PATH}.type`, /not supported by Weft/);
    });

    it('unimplemented cluster fields, by path', () => {
      for (const field of ['health_checks', 'lb_subset_config']) {
        const value = field === 'health_checks' ? [{ timeout: '1s' }] : { x: 1 };
        assertRejects(cluster({ [field]: value }), `${PATH}.${field}`, /not supported by Weft/);
      }
    });

    it('unimplemented nested fields, by path', () => {
      assertRejects(
        cluster({
          load_assignment: {
            cluster_name: 'x',
            endpoints: [{ lb_endpoints: [endpoint('10.0.0.1', 80, { endpoint_name: 'ep' })] }],
          },
        }),
        `${PATH}.load_assignment.endpoints[0].lb_endpoints[0].endpoint_name`,
        /not supported by Weft/,
      );
      // Endpoint metadata is opaque to load balancing, and accepted (Istio sends it with every endpoint).
      compileCluster(
        cluster({
          load_assignment: {
            cluster_name: 'x',
            endpoints: [{ lb_endpoints: [endpoint('10.0.0.1', 80, { metadata: { filter_metadata: {} } })] }],
          },
        }),
        PATH,
      );
      assertRejects(
        cluster({ load_assignment: { cluster_name: 'x', policy: { drop_overloads: [{ category: 'x' }] } } }),
        `${PATH}.load_assignment.policy.drop_overloads`,
        /not supported/,
      );
      assertRejects(
        cluster({ common_lb_config: { zone_aware_lb_config: {} } }),
        `${PATH}.common_lb_config.zone_aware_lb_config`,
        /not supported/,
      );
      assertRejects(
        cluster({ common_lb_config: { locality_weighted_lb_config: { x: 1 } } }),
        `${PATH}.common_lb_config.locality_weighted_lb_config.x`,
        /not supported/,
      );
      assertRejects(
        cluster({ lb_policy: 'LEAST_REQUEST', least_request_lb_config: { slow_start_config: {} } }),
        `${PATH}.least_request_lb_config.slow_start_config`,
        /not supported/,
      );
      assertRejects(
        cluster({
          lb_policy: 'LEAST_REQUEST',
          least_request_lb_config: { active_request_bias: { default_value: 2 } },
        }),
        `${PATH}.least_request_lb_config.active_request_bias.default_value`,
        /only 1.0/,
      );
      assertRejects(
        cluster({ circuit_breakers: { thresholds: [{ max_connection_pools: 5 }] } }),
        `${PATH}.circuit_breakers.thresholds[0].max_connection_pools`,
        /not supported/,
      );
      assertRejects(
        cluster({ circuit_breakers: { thresholds: [{ priority: 'HIGH', max_connections: 5 }] } }),
        `${PATH}.circuit_breakers.thresholds[0].priority`,
        /"HIGH" is not supported/,
      );
      assertRejects(
        cluster({ circuit_breakers: { per_host_thresholds: [{ max_connections: 5 }] } }),
        `${PATH}.circuit_breakers.per_host_thresholds`,
        /not supported/,
      );
      assertRejects(
        cluster({ dns_failure_refresh_rate: { base_interval: '1s' } }),
        `${PATH}.dns_failure_refresh_rate`,
        /not supported/,
      );
    });

    it('host names in STATIC clusters, and invalid host names in DNS clusters', () => {
      const socket = `${PATH}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address`;
      const withAddress = (type: string, address: string): JsonObject =>
        cluster({
          type,
          load_assignment: { cluster_name: 'x', endpoints: [{ lb_endpoints: [endpoint(address, 80)] }] },
        });
      assertRejects(withAddress('STATIC', 'example.com'), `${socket}.address`, /not an IP address/);
      assertRejects(withAddress('STRICT_DNS', 'bad host!'), `${socket}.address`, /not a valid host name/);
      assertRejects(withAddress('STRICT_DNS', ''), `${socket}.address`, /not a valid host name/);
      assert.equal(
        compileCluster(withAddress('STRICT_DNS', '10.1.2.3'), PATH).localityEndpoints[0].endpoints[0]
          .hostname,
        undefined,
      );
    });

    it('LOGICAL_DNS clusters without exactly one endpoint', () => {
      assertRejects(
        cluster({
          type: 'LOGICAL_DNS',
          load_assignment: {
            cluster_name: 'x',
            endpoints: [{ lb_endpoints: [endpoint('a.test', 80), endpoint('b.test', 80)] }],
          },
        }),
        `${PATH}.load_assignment`,
        /exactly one endpoint, got 2/,
      );
      assertRejects({ name: 'x', type: 'LOGICAL_DNS' }, `${PATH}.load_assignment`, /exactly one endpoint/);
    });

    it('a missing or zero port, duplicate endpoints, UDP and pipes', () => {
      const lb = `${PATH}.load_assignment.endpoints[0].lb_endpoints`;
      const withEndpoints = (...eps: Json[]): JsonObject =>
        cluster({ load_assignment: { cluster_name: 'x', endpoints: [{ lb_endpoints: eps }] } });
      assertRejects(
        withEndpoints(endpoint('10.0.0.1', 0)),
        `${lb}[0].endpoint.address.socket_address.port_value`,
        /required/,
      );
      assertRejects(
        withEndpoints(endpoint('10.0.0.1', 80), endpoint('10.0.0.1', 80)),
        `${lb}[1]`,
        /duplicate endpoint 10.0.0.1:80/,
      );
      assertRejects(
        withEndpoints({
          endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 53, protocol: 'UDP' } } },
        }),
        `${lb}[0].endpoint.address.socket_address.protocol`,
        /not supported/,
      );
      assertRejects(
        withEndpoints({ endpoint: { address: { pipe: { path: '/tmp/s' } } } }),
        `${lb}[0].endpoint.address.pipe`,
        /not supported/,
      );
    });

    it('out-of-range values', () => {
      assertRejects(
        cluster({ lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 65536 } }),
        `${PATH}.maglev_lb_config.table_size`,
        /prime/,
      );
      assertRejects(
        cluster({
          lb_policy: 'RING_HASH',
          ring_hash_lb_config: { minimum_ring_size: 4096, maximum_ring_size: 1024 },
        }),
        `${PATH}.ring_hash_lb_config.minimum_ring_size`,
        /must not exceed/,
      );
      assertRejects(
        cluster({ lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'MURMUR_HASH_2' } }),
        `${PATH}.ring_hash_lb_config.hash_function`,
        /not supported/,
      );
      assertRejects(cluster({ connect_timeout: '0s' }), `${PATH}.connect_timeout`, /greater than 0/);
      assertRejects(cluster({ connect_timeout: 'soon' }), `${PATH}.connect_timeout`, /invalid duration/);
      assertRejects(
        cluster({ common_lb_config: { healthy_panic_threshold: { value: 120 } } }),
        `${PATH}.common_lb_config.healthy_panic_threshold.value`,
        /between 0 and 100/,
      );
      assertRejects(
        cluster({ load_assignment: { cluster_name: 'x', endpoints: [{ priority: 129 }] } }),
        `${PATH}.load_assignment.endpoints[0].priority`,
        /at most 128/,
      );
      assertRejects(
        cluster({ dns_lookup_family: 'V5_ONLY' }),
        `${PATH}.dns_lookup_family`,
        /unknown value "V5_ONLY"/,
      );
    });

    it('lb configs that do not match lb_policy', () => {
      assertRejects(
        cluster({ ring_hash_lb_config: {} }),
        `${PATH}.ring_hash_lb_config`,
        /only applies to lb_policy RING_HASH/,
      );
      assertRejects(
        cluster({ lb_policy: 'RING_HASH', maglev_lb_config: {} }),
        `${PATH}.maglev_lb_config`,
        /MAGLEV/,
      );
    });

    it('protocol options Weft does not implement', () => {
      const typed = `${PATH}.typed_extension_protocol_options`;
      const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
      const type = `type.googleapis.com/${key}`;
      const withOptions = (options: JsonObject): JsonObject =>
        cluster({ typed_extension_protocol_options: { [key]: { '@type': type, ...options } } });
      assertRejects(
        cluster({
          typed_extension_protocol_options: { 'envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions': {} },
        }),
        `${typed}["envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"]`,
        /not supported/,
      );
      assertRejects(
        cluster({
          typed_extension_protocol_options: {
            [key]: { '@type': 'type.googleapis.com/x', explicit_http_config: {} },
          },
        }),
        `${typed}["${key}"]["@type"]`,
        /expected/,
      );
      assertRejects(withOptions({ auto_config: {} }), `${typed}["${key}"].auto_config`, /not supported/);
      assertRejects(
        withOptions({
          use_downstream_protocol_config: { http2_protocol_options: {} },
          explicit_http_config: { http_protocol_options: {} },
        }),
        `${typed}["${key}"].explicit_http_config`,
        /cannot be combined/,
      );
      assertRejects(withOptions({}), `${typed}["${key}"].explicit_http_config`, /required/);
      assertRejects(
        withOptions({ explicit_http_config: { http3_protocol_options: {} } }),
        `${typed}["${key}"].explicit_http_config.http3_protocol_options`,
        /HTTP\/3/,
      );
      assertRejects(
        withOptions({
          explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: '10s' } } },
        }),
        `${typed}["${key}"].explicit_http_config.http2_protocol_options.connection_keepalive.timeout`,
        /required/,
      );
      assertRejects(
        withOptions({
          explicit_http_config: {
            http2_protocol_options: {
              connection_keepalive: { timeout: '1s', interval_jitter: { value: 15 } },
            },
          },
        }),
        `${typed}["${key}"].explicit_http_config.http2_protocol_options.connection_keepalive.interval_jitter`,
        /not supported/,
      );
      assertRejects(
        withOptions({ explicit_http_config: { http2_protocol_options: { allow_connect: true } } }),
        `${typed}["${key}"].explicit_http_config.http2_protocol_options.allow_connect`,
        /not supported/,
      );
      assertRejects(
        withOptions({ explicit_http_config: { http_protocol_options: { accept_http_10: true } } }),
        `${typed}["${key}"].explicit_http_config.http_protocol_options.accept_http_10`,
        /not supported/,
      );
      assertRejects(
        withOptions({
          common_http_protocol_options: { max_stream_duration: '1s' },
          explicit_http_config: { http_protocol_options: {} },
        }),
        `${typed}["${key}"].common_http_protocol_options.max_stream_duration`,
        /not supported/,
      );
      assertRejects(
        {
          ...withOptions({ explicit_http_config: { http_protocol_options: {} } }),
          http2_protocol_options: {},
        },
        `${PATH}.http2_protocol_options`,
        /cannot be combined/,
      );
    });
  });
});

describe("Istio's cluster and endpoint metadata (telemetry)", () => {
  it("keeps filter_metadata.istio.services and the endpoints' istio.workload, and nothing else", () => {
    const c = compileCluster(
      cluster({
        metadata: {
          filter_metadata: {
            istio: {
              services: [
                { host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' },
              ],
              default_original_port: 9080,
            },
            other: { x: 1 },
          },
        },
        load_assignment: {
          cluster_name: 'x',
          endpoints: [
            {
              lb_endpoints: [
                endpoint('10.0.0.1', 80, {
                  metadata: {
                    filter_metadata: {
                      istio: { workload: 'reviews-v2;bookinfo;reviews;v2;Kubernetes', uid: 'u' },
                    },
                  },
                }),
                endpoint('10.0.0.2', 80),
              ],
            },
          ],
        },
      }),
      PATH,
    );
    assert.deepEqual(c.istioServices, [
      { host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' },
    ]);
    const [first, second] = c.localityEndpoints[0].endpoints;
    assert.equal(first.istioWorkload, 'reviews-v2;bookinfo;reviews;v2;Kubernetes');
    assert.equal(second.istioWorkload, undefined);
    assert.equal(
      compileCluster(cluster({ metadata: { filter_metadata: { x: {} } } }), PATH).istioServices,
      undefined,
    );
  });

  it('refuses a malformed istio.services', () => {
    assertRejects(
      cluster({ metadata: { filter_metadata: { istio: { services: { host: 'x' } } } } }),
      `${PATH}.metadata.filter_metadata.istio.services`,
      /must be a list/,
    );
  });
});
