import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import { compileHttpTracing, OPENTELEMETRY_CONFIG_TYPE, ZIPKIN_CONFIG_TYPE } from './config.ts';

const zipkin = (extra: Record<string, unknown> = {}) => ({
  name: 'envoy.tracers.zipkin',
  typed_config: {
    '@type': ZIPKIN_CONFIG_TYPE,
    collector_cluster: 'zipkin',
    collector_endpoint: '/api/v2/spans',
    collector_endpoint_version: 'HTTP_JSON',
    ...extra,
  },
});
const otel = (extra: Record<string, unknown> = {}) => ({
  name: 'envoy.tracers.opentelemetry',
  typed_config: {
    '@type': OPENTELEMETRY_CONFIG_TYPE,
    http_service: {
      http_uri: { uri: 'http://otel.example:4318/v1/traces', cluster: 'otel', timeout: '2s' },
      request_headers_to_add: [{ header: { key: 'Authorization', value: 'Bearer x' } }],
    },
    service_name: 'svc',
    ...extra,
  },
});

function rejects(json: unknown, path: string, detail: RegExp): void {
  assert.throws(
    () => compileHttpTracing(json, 'hcm.tracing'),
    (e: unknown) => e instanceof ConfigError && e.path === path && detail.test(e.detail),
  );
}

describe('compileHttpTracing', () => {
  it('is undefined when unset, and has no provider without one (Envoy then does not trace)', () => {
    assert.equal(compileHttpTracing(undefined, 'p'), undefined);
    const c = compileHttpTracing({ random_sampling: { value: 1 } }, 'p');
    assert.equal(c?.provider, undefined);
    assert.equal(c?.randomSampling, 1);
  });

  it('defaults every percentage to 100 and the path tag length to 256', () => {
    const c = compileHttpTracing({ provider: zipkin() }, 'p')!;
    assert.deepEqual(
      [c.randomSampling, c.clientSampling, c.overallSampling, c.maxPathTagLength],
      [100, 100, 100, 256],
    );
  });

  it('compiles Zipkin', () => {
    const c = compileHttpTracing(
      { provider: zipkin({ trace_id_128bit: true, collector_hostname: 'zk' }) },
      'p',
    )!;
    assert.deepEqual(c.provider, {
      kind: 'zipkin',
      collectorCluster: 'zipkin',
      collectorEndpoint: '/api/v2/spans',
      traceId128bit: true,
      collectorHostname: 'zk',
    });
    assert.equal(
      compileHttpTracing({ provider: zipkin({ shared_span_context: false }) }, 'p')?.provider?.kind,
      'zipkin',
    );
  });

  it('compiles OpenTelemetry over HTTP', () => {
    const c = compileHttpTracing({ provider: otel(), verbose: true, max_path_tag_length: 10 }, 'p')!;
    assert.deepEqual(c.provider, {
      kind: 'opentelemetry',
      collectorCluster: 'otel',
      path: '/v1/traces',
      timeoutMs: 2000,
      headers: { authorization: 'Bearer x' },
      serviceName: 'svc',
    });
    assert.equal(c.maxPathTagLength, 10);
  });

  it('compiles custom tags, reading environment variables once', () => {
    process.env.WEFT_TRACING_TEST_VAR = 'from-env';
    const c = compileHttpTracing(
      {
        provider: zipkin(),
        custom_tags: [
          { tag: 'lit', literal: { value: 'v' } },
          { tag: 'env', environment: { name: 'WEFT_TRACING_TEST_VAR' } },
          { tag: 'env-missing', environment: { name: 'WEFT_TRACING_TEST_UNSET_VAR' } },
          { tag: 'env-default', environment: { name: 'WEFT_TRACING_TEST_UNSET_VAR', default_value: 'd' } },
          { tag: 'hdr', request_header: { name: 'X-Tenant', default_value: 'none' } },
        ],
      },
      'p',
    )!;
    assert.deepEqual(c.customTags, [
      { tag: 'lit', kind: 'literal', value: 'v' },
      { tag: 'env', kind: 'literal', value: 'from-env' },
      { tag: 'env-default', kind: 'literal', value: 'd' },
      { tag: 'hdr', kind: 'request_header', header: 'x-tenant', defaultValue: 'none' },
    ]);
  });

  it('names the exact field it refuses', () => {
    rejects({ provider: zipkin(), operation_name: 'EGRESS' }, 'hcm.tracing.operation_name', /not supported/);
    rejects(
      { provider: zipkin(), spawn_upstream_span: true },
      'hcm.tracing.spawn_upstream_span',
      /not supported/,
    );
    rejects({ random_sampling: { value: 101 } }, 'hcm.tracing.random_sampling.value', /\[0, 100\]/);
    rejects(
      { provider: zipkin({ collector_endpoint_version: 'HTTP_PROTO' }) },
      'hcm.tracing.provider.typed_config.collector_endpoint_version',
      /"HTTP_PROTO" is not supported by Weft/,
    );
    rejects(
      { provider: zipkin({ shared_span_context: true }) },
      'hcm.tracing.provider.typed_config.shared_span_context',
      /not supported/,
    );
    rejects(
      { provider: zipkin({ split_spans_for_request: true }) },
      'hcm.tracing.provider.typed_config.split_spans_for_request',
      /not supported/,
    );
    rejects(
      { provider: zipkin({ collector_cluster: '' }) },
      'hcm.tracing.provider.typed_config.collector_cluster',
      /required/,
    );
    rejects(
      { provider: otel({ grpc_service: { envoy_grpc: { cluster_name: 'otel' } }, http_service: undefined }) },
      'hcm.tracing.provider.typed_config.grpc_service',
      /OTLP over HTTP only/,
    );
    rejects(
      { provider: otel({ sampler: { name: 'x' } }) },
      'hcm.tracing.provider.typed_config.sampler',
      /not supported/,
    );
    rejects(
      {
        provider: {
          name: 'envoy.tracers.datadog',
          typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.DatadogConfig' },
        },
      },
      'hcm.tracing.provider.typed_config.@type',
      /not supported by Weft/,
    );
    rejects(
      { provider: zipkin(), custom_tags: [{ tag: 'm', metadata: { kind: { request: {} } } }] },
      'hcm.tracing.custom_tags[0].metadata',
      /not supported/,
    );
    rejects(
      {
        provider: zipkin(),
        custom_tags: [
          { tag: 'a', literal: { value: 'x' } },
          { tag: 'a', literal: { value: 'y' } },
        ],
      },
      'hcm.tracing.custom_tags[1].tag',
      /duplicate/,
    );
  });
});
