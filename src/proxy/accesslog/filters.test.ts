import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import { compileAccessLogFilter } from './filters.ts';
import { fakeSession, fakeStream } from './testing.ts';
import type { FakeStreamInit } from './testing.ts';

function accepts(filter: unknown, init: FakeStreamInit = {}): boolean {
  return compileAccessLogFilter(filter as never, 'f').http(fakeStream(init));
}

const status = (op: string, n: number): unknown => ({
  status_code_filter: { comparison: { op, value: { default_value: n, runtime_key: 'k' } } },
});

describe('access log filters', () => {
  it('status_code_filter compares the response code', () => {
    assert.equal(accepts(status('GE', 500), { responseStatus: 503 }), true);
    assert.equal(accepts(status('GE', 500), { responseStatus: 404 }), false);
    assert.equal(accepts(status('LE', 299), { responseStatus: 200 }), true);
    assert.equal(accepts(status('EQ', 404), { responseStatus: 404 }), true);
    assert.equal(accepts(status('EQ', 404), { responseStatus: 405 }), false);
    // A TCP session has no response code (0).
    assert.equal(compileAccessLogFilter(status('EQ', 0) as never, 'f').tcp(fakeSession()), true);
  });

  it('duration_filter compares whole milliseconds', () => {
    const slow = { duration_filter: { comparison: { op: 'GE', value: { default_value: 100 } } } };
    assert.equal(accepts(slow, { startMs: 0, endMs: 100.2 }), true);
    assert.equal(accepts(slow, { startMs: 0, endMs: 99.9 }), false);
    const f = compileAccessLogFilter(slow, 'f');
    assert.equal(f.tcp(fakeSession({ startMs: 0, endMs: 250 })), true);
    assert.equal(f.tcp(fakeSession({ startMs: 0, endMs: 50 })), false);
  });

  it('not_health_check_filter accepts everything (Weft marks no request as a health check)', () => {
    assert.equal(accepts({ not_health_check_filter: {} }), true);
  });

  it('traceable_filter accepts sampled traces only', () => {
    assert.equal(accepts({ traceable_filter: {} }, { trace: { sampled: true } }), true);
    assert.equal(accepts({ traceable_filter: {} }, { trace: { sampled: false } }), false);
    assert.equal(accepts({ traceable_filter: {} }), false);
  });

  it('response_flag_filter: any flag, or one of the listed', () => {
    assert.equal(accepts({ response_flag_filter: {} }, { flags: 'UF' }), true);
    assert.equal(accepts({ response_flag_filter: {} }), false);
    assert.equal(accepts({ response_flag_filter: { flags: ['NR', 'UH'] } }, { flags: 'UF,UH' }), true);
    assert.equal(accepts({ response_flag_filter: { flags: ['NR'] } }, { flags: 'UF' }), false);
    const tcp = compileAccessLogFilter({ response_flag_filter: { flags: ['UF'] } }, 'f');
    assert.equal(tcp.tcp(fakeSession({ flags: 'UF' })), true);
    assert.equal(tcp.tcp(fakeSession()), false);
  });

  it('grpc_status_filter reads grpc-status, else maps the HTTP status', () => {
    const f = { grpc_status_filter: { statuses: ['UNAVAILABLE', 'INTERNAL'] } };
    assert.equal(accepts(f, { grpcStatus: '14' }), true);
    assert.equal(accepts(f, { grpcStatus: '0' }), false);
    assert.equal(accepts(f, { responseStatus: 503 }), true);
    assert.equal(accepts(f, { responseStatus: 200 }), false);
    const excl = { grpc_status_filter: { statuses: ['OK'], exclude: true } };
    assert.equal(accepts(excl, { grpcStatus: '0' }), false);
    assert.equal(accepts(excl, { grpcStatus: '5' }), true);
  });

  it('header_filter matches request headers', () => {
    const f = { header_filter: { header: { name: 'x-debug', exact_match: 'on' } } };
    assert.equal(accepts(f, { headers: { 'x-debug': 'on' } }), true);
    assert.equal(accepts(f, { headers: { 'x-debug': 'off' } }), false);
    assert.equal(accepts(f), false);
    assert.equal(compileAccessLogFilter(f, 'f').tcp(fakeSession()), false);
  });

  it('and_filter and or_filter combine', () => {
    const error = status('GE', 500);
    const debug = { header_filter: { header: { name: 'x-debug', present_match: true } } };
    const and = { and_filter: { filters: [error, debug] } };
    const or = { or_filter: { filters: [error, debug] } };
    assert.equal(accepts(and, { responseStatus: 500, headers: { 'x-debug': '1' } }), true);
    assert.equal(accepts(and, { responseStatus: 500 }), false);
    assert.equal(accepts(or, { responseStatus: 500 }), true);
    assert.equal(accepts(or, { headers: { 'x-debug': '1' } }), true);
    assert.equal(accepts(or, {}), false);
  });

  it('runtime_filter samples by x-request-id at the fixed percentage', () => {
    const half = {
      runtime_filter: { runtime_key: 'log', percent_sampled: { numerator: 50, denominator: 'HUNDRED' } },
    };
    const f = compileAccessLogFilter(half, 'f');
    // The request id decides, so the same id always gets the same answer.
    const ids = Array.from({ length: 2000 }, (_, i) => `req-${i}`);
    const first = ids.map((id) => f.http(fakeStream({ headers: { 'x-request-id': id } })));
    const again = ids.map((id) => f.http(fakeStream({ headers: { 'x-request-id': id } })));
    assert.deepEqual(first, again);
    const kept = first.filter(Boolean).length;
    // 50% of 2000: binomial sd ≈ 22, so [850, 1150] is ±6.7 sd.
    assert.ok(kept > 850 && kept < 1150, `kept ${kept}`);
    const none = { runtime_filter: { runtime_key: 'log' } };
    assert.equal(accepts(none, { headers: { 'x-request-id': 'a' } }), false);
    const all = { runtime_filter: { runtime_key: 'log', percent_sampled: { numerator: 100 } } };
    assert.equal(accepts(all), true);
  });

  it('rejects what Weft does not implement, naming the field', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ metadata_filter: {} }, 'f.metadata_filter', /not supported by Weft/],
      [{ extension_filter: { name: 'x' } }, 'f.extension_filter', /not supported by Weft/],
      [{ log_type_filter: {} }, 'f.log_type_filter', /not supported by Weft/],
      [{}, 'f', /one of status_code_filter/],
      [{ traceable_filter: {}, not_health_check_filter: {} }, 'f.traceable_filter', /only one/],
      [{ and_filter: { filters: [status('EQ', 1)] } }, 'f.and_filter.filters', /at least 2/],
      [
        { response_flag_filter: { flags: ['XX'] } },
        'f.response_flag_filter.flags[0]',
        /unknown response flag/,
      ],
      [
        { grpc_status_filter: { statuses: ['NOPE'] } },
        'f.grpc_status_filter.statuses[0]',
        /unknown gRPC status/,
      ],
      [
        { status_code_filter: { comparison: { op: 'GT', value: { default_value: 1 } } } },
        'f.status_code_filter.comparison.op',
        /unknown value "GT"/,
      ],
    ];
    for (const [json, path, message] of cases) {
      assert.throws(
        () => compileAccessLogFilter(json as never, 'f'),
        (e: unknown) => e instanceof ConfigError && e.path === path && message.test(e.message),
        JSON.stringify(json),
      );
    }
  });
});
