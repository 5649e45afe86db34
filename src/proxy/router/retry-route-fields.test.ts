import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteRetryFields, compileVirtualHostRetryFields } from './retry-route-fields.ts';

const VH = 'route_config.virtual_hosts[0]';

describe('retry fields of virtual hosts and routes', () => {
  it('reads attempt-count flags and the buffer limit, leaving unset fields out', () => {
    assert.deepEqual(compileVirtualHostRetryFields({}, VH), {});
    assert.deepEqual(
      compileVirtualHostRetryFields(
        { include_request_attempt_count: false, include_attempt_count_in_response: false },
        VH,
      ),
      {},
    );
    assert.deepEqual(
      compileVirtualHostRetryFields(
        {
          include_request_attempt_count: true,
          include_attempt_count_in_response: true,
          per_request_buffer_limit_bytes: 4096,
        },
        VH,
      ),
      {
        includeRequestAttemptCount: true,
        includeAttemptCountInResponse: true,
        perRequestBufferLimitBytes: 4096,
      },
    );
  });

  it("lets a route's buffer limit override its virtual host's", () => {
    const vh = compileVirtualHostRetryFields({ per_request_buffer_limit_bytes: 10 }, VH);
    assert.equal(compileRouteRetryFields({}, `${VH}.routes[0]`, vh), vh);
    assert.equal(
      compileRouteRetryFields({ per_request_buffer_limit_bytes: 20 }, `${VH}.routes[0]`, vh)
        .perRequestBufferLimitBytes,
      20,
    );
  });

  it('rejects bad values with the field path', () => {
    assert.throws(
      () => compileVirtualHostRetryFields({ per_request_buffer_limit_bytes: -1 }, VH),
      /route_config\.virtual_hosts\[0\]\.per_request_buffer_limit_bytes: must be an integer/,
    );
    assert.throws(
      () => compileVirtualHostRetryFields({ include_request_attempt_count: 'yes' }, VH),
      /include_request_attempt_count/,
    );
  });
});
