import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { JsonObject } from '../../../core/json.ts';
import { compileRateLimit } from './ratelimit-config.ts';

const PATH = 'http_filters[0].typed_config';
const SERVICE = { grpc_service: { envoy_grpc: { cluster_name: 'rls' } }, transport_api_version: 'V3' };

function rejects(json: JsonObject, field: string, message: RegExp): void {
  assert.throws(
    () => compileRateLimit(json, PATH),
    (err: unknown) =>
      err instanceof ConfigError && err.path === `${PATH}.${field}` && message.test(err.message),
  );
}

describe('compileRateLimit (envoy.filters.http.ratelimit)', () => {
  it("applies Envoy's defaults: stage 0, 20 ms, fail open, 429, 500 on error", () => {
    const c = compileRateLimit({ domain: 'd', rate_limit_service: SERVICE }, PATH);
    assert.equal(c.stage, 0);
    assert.equal(c.timeoutMs, 20);
    assert.equal(c.failureModeDeny, false);
    assert.equal(c.rateLimitedStatus, 429);
    assert.equal(c.statusOnError, 500);
    assert.equal(c.serviceCluster, 'rls');
    assert.equal(c.xEnvoyRateLimitedHeader, true);
    assert.equal(c.xRateLimitHeaders, false);
  });

  it('reads every supported field', () => {
    const c = compileRateLimit(
      {
        domain: 'd',
        stage: 3,
        timeout: '0.25s',
        failure_mode_deny: true,
        rate_limited_as_resource_exhausted: true,
        enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
        disable_x_envoy_ratelimited_header: true,
        rate_limited_status: { code: 'ServiceUnavailable' },
        status_on_error: { code: 503 },
        rate_limit_service: SERVICE,
      },
      PATH,
    );
    assert.deepEqual(
      [c.stage, c.timeoutMs, c.failureModeDeny, c.rateLimitedAsResourceExhausted, c.xRateLimitHeaders],
      [3, 250, true, true, true],
    );
    assert.deepEqual([c.xEnvoyRateLimitedHeader, c.rateLimitedStatus, c.statusOnError], [false, 503, 503]);
  });

  it('rejects what it cannot do, naming the field', () => {
    rejects({ rate_limit_service: SERVICE }, 'domain', /required/);
    rejects({ domain: 'd' }, 'rate_limit_service', /required/);
    rejects(
      { domain: 'd', rate_limit_service: { grpc_service: { google_grpc: { target_uri: 'x' } } } },
      'rate_limit_service.grpc_service.google_grpc',
      /not supported/,
    );
    rejects(
      { domain: 'd', rate_limit_service: { grpc_service: { envoy_grpc: {} } } },
      'rate_limit_service.grpc_service.envoy_grpc.cluster_name',
      /required/,
    );
    rejects(
      { domain: 'd', rate_limit_service: { ...SERVICE, transport_api_version: 'V2' } },
      'rate_limit_service.transport_api_version',
      /V3/,
    );
    rejects({ domain: 'd', rate_limit_service: SERVICE, request_type: 'internal' }, 'request_type', /both/);
    rejects({ domain: 'd', rate_limit_service: SERVICE, stage: 11 }, 'stage', /./);
    rejects({ domain: 'd', rate_limit_service: SERVICE, timeout: '0s' }, 'timeout', /greater than 0/);
    rejects(
      { domain: 'd', rate_limit_service: SERVICE, status_on_error: { code: 200 } },
      'status_on_error.code',
      /400 to 599/,
    );
    rejects(
      { domain: 'd', rate_limit_service: SERVICE, filter_enabled: {} },
      'filter_enabled',
      /unknown field/,
    );
  });
});
