import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import {
  backOffMs,
  compileRetryPolicy,
  retriableFailure,
  retriableResponse,
  RetryOn,
} from './retry-policy.ts';
import type { AttemptFailure, RetryPolicy } from './retry-policy.ts';
import { compileRouteAction } from './route-action.ts';

const PATH = 'route_config.virtual_hosts[0].routes[0].route.retry_policy';

function policy(json: Json): RetryPolicy {
  return compileRetryPolicy(json, PATH);
}

function rejects(json: Json, path: string, detail: RegExp): void {
  assert.throws(
    () => policy(json),
    (e: unknown) => e instanceof ConfigError && e.path === path && detail.test(e.detail),
  );
}

describe('compileRetryPolicy', () => {
  it('applies Envoy defaults', () => {
    const p = policy({});
    assert.equal(p.retryOn, 0);
    assert.equal(p.numRetries, 1);
    assert.equal(p.perTryTimeoutMs, 0);
    assert.equal(p.avoidPreviousHosts, false);
    assert.equal(p.hostSelectionMaxAttempts, 1);
    assert.equal(p.baseIntervalMs, 25);
    assert.equal(p.maxIntervalMs, 250);
  });

  it('parses every supported retry_on name, with spaces and empty entries', () => {
    const p = policy({
      retry_on:
        '5xx, gateway-error,reset,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,' +
        'envoy-ratelimited,reset-before-request,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,',
    });
    const all = Object.values(RetryOn).reduce((a, b) => a | b, 0);
    assert.equal(p.retryOn, all);
  });

  it('rejects unknown and unsupported retry_on names with the field path', () => {
    rejects({ retry_on: '5xx,5xxx' }, `${PATH}.retry_on`, /unknown retry condition "5xxx"/);
    rejects({ retry_on: 'retriable-headers' }, `${PATH}.retry_on`, /not supported by Weft/);
    rejects({ retry_on: 'http3-post-connect-failure' }, `${PATH}.retry_on`, /not supported by Weft/);
  });

  it('reads num_retries, per_try_timeout, codes, host predicate and back-off', () => {
    const p = policy({
      retry_on: 'retriable-status-codes',
      num_retries: 4,
      per_try_timeout: '0.25s',
      retriable_status_codes: [503, 429],
      retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
      host_selection_retry_max_attempts: 5,
      retry_back_off: { base_interval: '0.1s', max_interval: '2s' },
    });
    assert.equal(p.numRetries, 4);
    assert.equal(p.perTryTimeoutMs, 250);
    assert.deepEqual([...p.retriableStatusCodes].sort(), [429, 503]);
    assert.equal(p.avoidPreviousHosts, true);
    assert.equal(p.hostSelectionMaxAttempts, 5);
    assert.equal(p.baseIntervalMs, 100);
    assert.equal(p.maxIntervalMs, 2000);
  });

  it('accepts the previous_hosts predicate by typed_config, as the control plane writes it', () => {
    const p = policy({
      retry_host_predicate: [
        {
          name: 'envoy.retry_host_predicates.previous_hosts',
          typed_config: {
            '@type':
              'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
          },
        },
      ],
    });
    assert.equal(p.avoidPreviousHosts, true);
  });

  it('defaults max_interval to ten times base_interval', () => {
    assert.equal(policy({ retry_back_off: { base_interval: '0.05s' } }).maxIntervalMs, 500);
  });

  it('rejects bad values and unsupported fields with their paths', () => {
    rejects({ num_retries: -1 }, `${PATH}.num_retries`, /integer/);
    rejects({ retriable_status_codes: [503, 99] }, `${PATH}.retriable_status_codes[1]`, /integer from 100/);
    rejects({ retry_back_off: {} }, `${PATH}.retry_back_off.base_interval`, /required/);
    rejects(
      { retry_back_off: { base_interval: '0s' } },
      `${PATH}.retry_back_off.base_interval`,
      /greater than 0/,
    );
    rejects(
      { retry_back_off: { base_interval: '1s', max_interval: '0.5s' } },
      `${PATH}.retry_back_off.max_interval`,
      /greater than or equal to base_interval/,
    );
    rejects(
      { retry_host_predicate: [{ name: 'envoy.retry_host_predicates.omit_canary_hosts' }] },
      `${PATH}.retry_host_predicate[0].name`,
      /not supported by Weft/,
    );
    rejects(
      {
        retry_host_predicate: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/some.Other' } }],
      },
      `${PATH}.retry_host_predicate[0].typed_config`,
      /not supported by Weft/,
    );
    for (const field of [
      'retriable_headers',
      'retriable_request_headers',
      'rate_limited_retry_back_off',
      'per_try_idle_timeout',
      'retry_options_predicates',
    ]) {
      const value =
        field === 'per_try_idle_timeout' ? '1s' : field.endsWith('headers') ? [{ name: 'x' }] : { a: 1 };
      rejects({ [field]: value }, `${PATH}.${field}`, /not supported by Weft/);
    }
    rejects({ retry_onn: '5xx' }, `${PATH}.retry_onn`, /unknown field/);
    const PP =
      'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
    rejects({ retry_priority: { name: 'other' } }, `${PATH}.retry_priority`, /not supported by Weft/);
    rejects(
      { retry_priority: { name: 'x', typed_config: { '@type': PP, update_frequency: 0 } } },
      `${PATH}.retry_priority.typed_config.update_frequency`,
      /integer from 1/,
    );
    rejects(
      { retry_priority: { name: 'x', typed_config: { '@type': PP } } },
      `${PATH}.retry_priority.typed_config.update_frequency`,
      /required/,
    );
  });

  it('reads retry_priority previous_priorities', () => {
    const policy = compileRetryPolicy(
      {
        retry_on: '5xx',
        retry_priority: {
          name: 'envoy.retry_priorities.previous_priorities',
          typed_config: {
            '@type':
              'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
            update_frequency: 2,
          },
        },
      },
      PATH,
    );
    assert.equal(policy.previousPrioritiesFrequency, 2);
    assert.equal(compileRetryPolicy({ retry_on: '5xx' }, PATH).previousPrioritiesFrequency, undefined);
  });

  it('is compiled from RouteAction.retry_policy, and absent by default', () => {
    const action = compileRouteAction(
      { cluster: 'c', retry_policy: { retry_on: '5xx', num_retries: 3 } },
      'r',
      1,
    );
    assert.equal(action.retryPolicy?.numRetries, 3);
    assert.equal(compileRouteAction({ cluster: 'c' }, 'r', 1).retryPolicy, undefined);
    assert.throws(
      () => compileRouteAction({ cluster: 'c', retry_policy: { retry_on: 'nope' } }, 'r', 1),
      /r\.retry_policy\.retry_on: unknown retry condition "nope"/,
    );
  });
});

describe('retriableResponse', () => {
  const codes = (on: string, extra: Json = {}): RetryPolicy => policy({ retry_on: on, ...(extra as object) });

  const table: [string, number, Record<string, string>, boolean][] = [
    ['5xx', 500, {}, true],
    ['5xx', 503, {}, true],
    ['5xx', 599, {}, true],
    ['5xx', 404, {}, false],
    ['5xx', 200, {}, false],
    ['gateway-error', 502, {}, true],
    ['gateway-error', 503, {}, true],
    ['gateway-error', 504, {}, true],
    ['gateway-error', 500, {}, false],
    ['gateway-error', 501, {}, false],
    ['retriable-4xx', 409, {}, true],
    ['retriable-4xx', 429, {}, false],
    ['envoy-ratelimited', 429, { 'x-envoy-ratelimited': 'true' }, true],
    ['envoy-ratelimited', 429, {}, false],
    ['unavailable', 200, { 'grpc-status': '14' }, true],
    ['unavailable', 200, { 'grpc-status': '13' }, false],
    ['cancelled', 200, { 'grpc-status': '1' }, true],
    ['deadline-exceeded', 200, { 'grpc-status': '4' }, true],
    ['internal', 200, { 'grpc-status': '13' }, true],
    ['resource-exhausted', 200, { 'grpc-status': '8' }, true],
    ['resource-exhausted', 200, { 'grpc-status': '0' }, false],
    ['reset,connect-failure,refused-stream,reset-before-request', 503, {}, false],
    // An upstream that says it is overloaded is never retried.
    ['5xx', 503, { 'x-envoy-overloaded': 'true' }, false],
  ];
  for (const [on, status, headers, expected] of table) {
    it(`${on} ${expected ? 'retries' : 'does not retry'} ${status} ${JSON.stringify(headers)}`, () => {
      assert.equal(retriableResponse(codes(on), status, headers), expected);
    });
  }

  it('retriable-status-codes retries exactly the listed codes', () => {
    const p = codes('retriable-status-codes', { retriable_status_codes: [418, 503] });
    assert.equal(retriableResponse(p, 418, {}), true);
    assert.equal(retriableResponse(p, 503, {}), true);
    assert.equal(retriableResponse(p, 502, {}), false);
    // The codes alone do nothing without the condition.
    assert.equal(retriableResponse(codes('5xx', { retriable_status_codes: [418] }), 418, {}), false);
  });
});

describe('retriableFailure', () => {
  const failures: AttemptFailure[] = [
    'connect',
    'refused',
    'reset',
    'termination',
    'protocol',
    'per-try-timeout',
  ];
  const expectations: Record<string, AttemptFailure[]> = {
    '5xx': failures,
    'gateway-error': failures,
    reset: failures,
    'connect-failure': ['connect'],
    'refused-stream': ['refused'],
    'retriable-4xx': [],
    'retriable-status-codes': [],
    unavailable: [],
  };
  for (const [on, retried] of Object.entries(expectations)) {
    it(`${on} retries ${retried.join(', ') || 'no failure'}`, () => {
      const p = policy({ retry_on: on });
      for (const f of failures) assert.equal(retriableFailure(p, f, false), retried.includes(f), f);
    });
  }

  it('reset-before-request retries only failures before the request was sent', () => {
    const p = policy({ retry_on: 'reset-before-request' });
    assert.equal(retriableFailure(p, 'reset', true), true);
    assert.equal(retriableFailure(p, 'reset', false), false);
    assert.equal(retriableFailure(p, 'per-try-timeout', true), false);
  });
});

describe('backOffMs', () => {
  const p = policy({ retry_back_off: { base_interval: '0.025s', max_interval: '0.1s' } });

  it('stays within [0, (2^n - 1) * base), capped at max_interval', () => {
    assert.equal(backOffMs(p, 1, 0), 0);
    assert.equal(backOffMs(p, 1, 0.999999), 24);
    assert.equal(backOffMs(p, 2, 0.999999), 74);
    // (2^3 - 1) * 25 = 175, capped at 100.
    assert.equal(backOffMs(p, 3, 0.999999), 99);
    assert.equal(backOffMs(p, 40, 0.999999), 99);
    assert.equal(backOffMs(p, 2, 0.5), 37);
  });

  it('is spread over its whole range (fixed sample, deterministic generator)', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const samples = Array.from({ length: 2000 }, () => backOffMs(p, 2, random()));
    assert.ok(samples.every((s) => s >= 0 && s < 75));
    const low = samples.filter((s) => s < 37.5).length;
    // Uniform over [0, 75): about half below the midpoint; 2000 samples keep it well inside ±10%.
    assert.ok(low > 800 && low < 1200, `low half held ${low}`);
  });
});
