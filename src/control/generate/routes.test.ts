import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryPolicy } from './routes.ts';

const PREVIOUS_HOSTS = [
  {
    name: 'envoy.retry_host_predicates.previous_hosts',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
    },
  },
];

describe('VirtualService retries → Envoy RetryPolicy (as Istio translates them)', () => {
  it("gives Istio's default policy to a route without retries", () => {
    assert.deepEqual(retryPolicy(undefined), {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      num_retries: 2,
      retry_host_predicate: PREVIOUS_HOSTS,
      host_selection_retry_max_attempts: 5,
      retriable_status_codes: [503],
    });
  });

  it('turns numeric retryOn entries into retriable status codes', () => {
    assert.deepEqual(retryPolicy({ attempts: 3, retryOn: 'gateway-error, 503,409', perTryTimeout: '2s' }), {
      retry_on: 'gateway-error,retriable-status-codes',
      num_retries: 3,
      per_try_timeout: '2s',
      retry_host_predicate: PREVIOUS_HOSTS,
      host_selection_retry_max_attempts: 5,
      retriable_status_codes: [503, 409],
    });
  });

  it('honours retryIgnorePreviousHosts: false and backoff; attempts: 0 disables retries', () => {
    assert.deepEqual(
      retryPolicy({ attempts: 1, retryOn: '5xx', retryIgnorePreviousHosts: false, backoff: '50ms' }),
      {
        retry_on: '5xx',
        num_retries: 1,
        retry_back_off: { base_interval: '0.05s' },
      },
    );
    assert.equal(retryPolicy({ attempts: 0 }), undefined);
  });
});
