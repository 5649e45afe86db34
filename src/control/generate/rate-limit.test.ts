/**
 * RateLimitPolicy → inbound listener: the generated filter and route rate_limits are what the proxy accepts
 * (normalized against Envoy's protos and compiled by the proxy's own listener compiler), and a bad policy
 * is reported naming file, resource and field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import { analyze } from '../../config/analyze/index.ts';
import { loadText } from '../../config/load.ts';
import { combineFiles } from '../../config/load.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { compileListener } from '../../proxy/listener/compile.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { sidecarListeners } from './listeners.ts';

const SIDECAR = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: reviews, namespace: shop }
spec:
  workloadSelector: { labels: { app: reviews } }
  ingress:
    - port: { number: 19081, protocol: HTTP, name: http }
      defaultEndpoint: 127.0.0.1:9081
`;

const POLICY = `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews-limits, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  local:
    default: { requestsPerUnit: 100, unit: MINUTE }
    perClient:
      key: { header: X-User }
      maxTokens: 5
      fillInterval: 10s
      overrides:
        - { value: batch-job, requestsPerUnit: 50, unit: SECOND }
`;

function load(text: string): { resources: IstioResource[]; diagnostics: ReturnType<typeof analyze> } {
  const { resources, diagnostics } = combineFiles([loadText('policy.yaml', text)]);
  return { resources, diagnostics: [...diagnostics, ...analyze(resources)] };
}

const proxy: ProxyNode = {
  id: 'sidecar~10.0.0.5~reviews-1.shop~shop.svc.cluster.local',
  type: 'sidecar',
  name: 'reviews-1',
  namespace: 'shop',
  dnsDomain: 'shop.svc.cluster.local',
  ipAddresses: ['10.0.0.5'],
  labels: { app: 'reviews' },
  serviceAccount: 'reviews',
  workloadName: 'reviews',
  locality: { region: '', zone: '', subZone: '' },
  cluster: '',
  metadata: {},
};

function inbound(resources: readonly IstioResource[], labels = proxy.labels) {
  const snap = buildSnapshot({
    version: 1,
    sidecars: resources.filter((r) => r.kind === 'Sidecar') as IstioResource<never>[],
    rateLimitPolicies: resources.filter((r) => r.kind === 'RateLimitPolicy') as IstioResource<never>[],
    discovery: aggregate([new ConfigDiscoverySource()]),
  });
  const plan = sidecarListeners({ ...proxy, labels }, snap);
  return plan.listeners.find((l) => l.traffic_direction === 'INBOUND')!;
}

describe('RateLimitPolicy → inbound local_ratelimit', () => {
  it('adds the filter, descriptors and route rate_limits, which the proxy accepts', () => {
    const { resources, diagnostics } = load(`${SIDECAR}---${POLICY}`);
    assert.deepEqual(diagnostics, []);
    const listener = inbound(resources);
    const hcm = (listener.filter_chains as never[])[0]['filters'][0]['typed_config'] as Record<string, never>;
    const filters = hcm.http_filters as { name: string; typed_config: Record<string, unknown> }[];
    assert.deepEqual(
      filters.map((f) => f.name),
      [
        // Metadata exchange first: a limited caller is still known to istio.stats.
        'istio.metadata_exchange',
        'envoy.filters.http.local_ratelimit',
        'istio.stats',
        'envoy.filters.http.router',
      ],
    );
    const rl = filters[1].typed_config;
    assert.deepEqual(rl.token_bucket, { max_tokens: 100, tokens_per_fill: 100, fill_interval: '60s' });
    assert.deepEqual(rl.descriptors, [
      {
        entries: [{ key: 'client', value: 'batch-job' }],
        token_bucket: { max_tokens: 50, tokens_per_fill: 50, fill_interval: '1s' },
      },
      {
        entries: [{ key: 'client', value: '' }],
        token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: '10s' },
      },
    ]);
    const route = hcm.route_config['virtual_hosts'][0]['routes'][0]['route'] as Record<string, unknown>;
    assert.deepEqual(route.rate_limits, [
      { actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'client' } }] },
    ]);
    const normalized = {
      ...(normalize('google.protobuf.Any', listener, 'listener') as Record<string, never>),
    };
    delete normalized['@type'];
    assert.doesNotThrow(() => compileListener(normalized, 'listener'));
  });

  it('leaves workloads the policy does not select alone', () => {
    const { resources } = load(`${SIDECAR}---${POLICY}`);
    const listener = inbound(resources, { app: 'reviews', other: 'x' });
    assert.match(JSON.stringify(listener), /local_ratelimit/);
    const hcmText = JSON.stringify(inbound(resources.filter((r) => r.kind === 'Sidecar')));
    assert.doesNotMatch(hcmText, /local_ratelimit|rate_limits/);
  });

  it('reports a bad policy naming file, resource and field', () => {
    const bad = load(`
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: bad, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  local:
    perClient:
      key: { header: x-user, path: {} }
      requestsPerUnit: 0
`);
    assert.equal(bad.resources.length, 0);
    const messages = bad.diagnostics.map((d) => `${d.file} ${d.resource} ${d.field}: ${d.message}`);
    assert.ok(
      messages.some((m) =>
        m.startsWith('policy.yaml RateLimitPolicy shop/bad spec.local.perClient.requestsPerUnit:'),
      ),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('policy.yaml RateLimitPolicy shop/bad spec.local.perClient.key')),
      messages.join('\n'),
    );
    const useless = load(`
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: g, namespace: shop }
spec:
  targetRef: { name: reviews }
  global: { service: "ratelimit:8081", perClient: { key: { method: {} }, requestsPerUnit: 0, unit: SECOND } }
`);
    assert.ok(
      useless.diagnostics.some((d) => d.field === 'spec.global.perClient.requestsPerUnit'),
      JSON.stringify(useless.diagnostics),
    );
    const badService = load(`
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: g, namespace: shop }
spec:
  targetRef: { name: reviews }
  global: { service: ratelimit, default: { requestsPerUnit: 5, unit: MINUTE } }
`);
    assert.deepEqual(
      badService.diagnostics.map((d) => `${d.code} ${d.resource} ${d.field}`),
      ['WE0109 RateLimitPolicy shop/g spec.global.service'],
    );
  });
});

describe('RateLimitPolicy → inbound global rate limiting (envoy.filters.http.ratelimit)', () => {
  const GLOBAL = `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews-global, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  local: { default: { requestsPerUnit: 1000, unit: SECOND } }
  global:
    service: ratelimit.weft-system.svc.cluster.local:8081
    failureMode: Deny
    timeout: 250ms
    algorithm: SlidingWindow
    default: { requestsPerUnit: 600, unit: MINUTE }
    perClient:
      key: { header: X-User }
      requestsPerUnit: 10
      unit: MINUTE
      overrides: [{ value: batch-job, requestsPerUnit: 100, unit: MINUTE }]
`;

  it('adds the filter after the local one, with stage-1 descriptors naming the policy, which the proxy accepts', () => {
    const { resources, diagnostics } = load(`${SIDECAR}---${GLOBAL}`);
    assert.deepEqual(diagnostics, []);
    const listener = inbound(resources);
    const hcm = (listener.filter_chains as never[])[0]['filters'][0]['typed_config'] as Record<string, never>;
    const filters = hcm.http_filters as { name: string; typed_config: Record<string, unknown> }[];
    assert.deepEqual(
      filters.map((f) => f.name),
      [
        'istio.metadata_exchange',
        'envoy.filters.http.local_ratelimit',
        'envoy.filters.http.ratelimit',
        'istio.stats',
        'envoy.filters.http.router',
      ],
    );
    assert.deepEqual(filters[2].typed_config, {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
      domain: 'weft',
      stage: 1,
      timeout: '0.25s',
      failure_mode_deny: true,
      rate_limited_as_resource_exhausted: true,
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      rate_limit_service: {
        grpc_service: {
          envoy_grpc: { cluster_name: 'outbound|8081||ratelimit.weft-system.svc.cluster.local' },
        },
        transport_api_version: 'V3',
      },
    });
    const route = hcm.route_config['virtual_hosts'][0]['routes'][0]['route'] as Record<string, unknown>;
    const policy = {
      generic_key: { descriptor_key: 'weft.policy', descriptor_value: 'shop/reviews-global' },
    };
    assert.deepEqual(route.rate_limits, [
      { stage: 1, actions: [policy] },
      {
        stage: 1,
        actions: [policy, { request_headers: { header_name: 'x-user', descriptor_key: 'client' } }],
      },
    ]);
    const normalized = {
      ...(normalize('google.protobuf.Any', listener, 'listener') as Record<string, never>),
    };
    delete normalized['@type'];
    assert.doesNotThrow(() => compileListener(normalized, 'listener'));
  });
});

describe('RateLimitPolicy client keys → descriptor producers', () => {
  /** A policy limiting each client by `key`, with one override for `value`. */
  const keyed = (key: string, value: string): string => `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: by-key, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  local:
    perClient:
      key: ${key}
      requestsPerUnit: 2
      unit: HOUR
      overrides: [{ value: "${value}", requestsPerUnit: 4, unit: HOUR }]
`;

  const cases = [
    {
      key: '{ path: {} }',
      value: '/expensive',
      action: { request_headers: { header_name: ':path', descriptor_key: 'client' } },
      descriptorKey: 'client',
    },
    {
      key: '{ method: {} }',
      value: 'POST',
      action: { request_headers: { header_name: ':method', descriptor_key: 'client' } },
      descriptorKey: 'client',
    },
    {
      // The proxy reads the verified peer (or the XFCC URI element) from this header's action.
      key: '{ principal: {} }',
      value: 'spiffe://cluster.local/ns/shop/sa/batch',
      action: { request_headers: { header_name: 'x-forwarded-client-cert', descriptor_key: 'client' } },
      descriptorKey: 'client',
    },
    {
      key: '{ remoteAddress: {} }',
      value: '10.0.0.9',
      action: { remote_address: {} },
      descriptorKey: 'remote_address',
    },
  ];

  for (const c of cases) {
    it(`keys ${c.key} by ${JSON.stringify(c.action)}, which the proxy accepts`, () => {
      const { resources, diagnostics } = load(`${SIDECAR}---${keyed(c.key, c.value)}`);
      assert.deepEqual(diagnostics, []);
      const listener = inbound(resources);
      const hcm = (listener.filter_chains as never[])[0]['filters'][0]['typed_config'] as Record<
        string,
        never
      >;
      const filters = hcm.http_filters as { name: string; typed_config: Record<string, unknown> }[];
      const rl = filters.find((f) => f.name === 'envoy.filters.http.local_ratelimit')!.typed_config;
      // No default: only per-client buckets limit.
      assert.equal(rl.token_bucket, undefined);
      assert.deepEqual(rl.descriptors, [
        {
          entries: [{ key: c.descriptorKey, value: c.value }],
          token_bucket: { max_tokens: 4, tokens_per_fill: 4, fill_interval: '3600s' },
        },
        {
          entries: [{ key: c.descriptorKey, value: '' }],
          token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: '3600s' },
        },
      ]);
      const route = hcm.route_config['virtual_hosts'][0]['routes'][0]['route'] as Record<string, unknown>;
      assert.deepEqual(route.rate_limits, [{ actions: [c.action] }]);
      const normalized = {
        ...(normalize('google.protobuf.Any', listener, 'listener') as Record<string, never>),
      };
      delete normalized['@type'];
      assert.doesNotThrow(() => compileListener(normalized, 'listener'));
    });
  }

  it('uses the same producers for a global per-client key', () => {
    const { resources, diagnostics } = load(`${SIDECAR}---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: g, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  global:
    service: ratelimit.weft-system.svc.cluster.local:8081
    perClient: { key: { method: {} }, requestsPerUnit: 3, unit: MINUTE }
`);
    assert.deepEqual(diagnostics, []);
    const hcm = (inbound(resources).filter_chains as never[])[0]['filters'][0]['typed_config'] as Record<
      string,
      never
    >;
    const route = hcm.route_config['virtual_hosts'][0]['routes'][0]['route'] as Record<string, unknown>;
    assert.deepEqual(route.rate_limits, [
      {
        stage: 1,
        actions: [
          { generic_key: { descriptor_key: 'weft.policy', descriptor_value: 'shop/g' } },
          { request_headers: { header_name: ':method', descriptor_key: 'client' } },
        ],
      },
    ]);
  });
});
