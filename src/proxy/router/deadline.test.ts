import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import {
  attemptBudgetMs,
  effectiveTimeoutMs,
  formatGrpcTimeout,
  parseExpectedTimeout,
  parseGrpcTimeout,
} from './deadline.ts';
import type { GrpcTimeoutPolicy } from './deadline.ts';
import { compileRouteAction } from './route-action.ts';

describe('grpc-timeout parsing', () => {
  it('reads every unit', () => {
    assert.equal(parseGrpcTimeout('2H'), 7_200_000);
    assert.equal(parseGrpcTimeout('3M'), 180_000);
    assert.equal(parseGrpcTimeout('4S'), 4000);
    assert.equal(parseGrpcTimeout('1234m'), 1234);
    assert.equal(parseGrpcTimeout('2500u'), 2.5);
    assert.equal(parseGrpcTimeout('3000000n'), 3);
    assert.equal(parseGrpcTimeout('0m'), 0);
    assert.equal(parseGrpcTimeout('99999999H'), 99_999_999 * 3_600_000);
  });

  it('ignores more than 8 digits, garbage and repeated headers', () => {
    for (const bad of [
      '123456789m',
      '',
      'm',
      '10',
      '10x',
      '10 m',
      ' 10m',
      '-1m',
      '1.5S',
      '10mm',
      '1e3m',
      '10h',
      '10s',
    ])
      assert.equal(parseGrpcTimeout(bad), undefined, bad);
    assert.equal(parseGrpcTimeout(undefined), undefined);
    assert.equal(parseGrpcTimeout(['10m', '20m']), undefined);
  });
});

describe('grpc-timeout formatting', () => {
  it('writes whole milliseconds, at least 1', () => {
    assert.equal(formatGrpcTimeout(1234), '1234m');
    assert.equal(formatGrpcTimeout(1234.9), '1234m');
    assert.equal(formatGrpcTimeout(0.2), '1m');
    assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
  });

  it('switches to a coarser unit, rounding down, when milliseconds need more than 8 digits', () => {
    assert.equal(formatGrpcTimeout(100_000_000), '100000S');
    assert.equal(formatGrpcTimeout(100_000_999), '100000S');
    assert.equal(formatGrpcTimeout(99_999_999 * 1000 + 1000), '1666666M');
    assert.equal(formatGrpcTimeout(99_999_999 * 3_600_000), '99999999H');
    assert.equal(formatGrpcTimeout(1e20), '99999999H');
  });

  it('round-trips through the parser', () => {
    for (const ms of [1, 17, 300, 86_400_000, 123_456_789_000])
      assert.ok(parseGrpcTimeout(formatGrpcTimeout(ms))! <= ms, String(ms));
    assert.equal(parseGrpcTimeout(formatGrpcTimeout(4321)), 4321);
  });
});

describe('x-envoy-expected-rq-timeout-ms parsing', () => {
  it('accepts positive integers only', () => {
    assert.equal(parseExpectedTimeout('500'), 500);
    for (const bad of ['0', '-5', '1.5', 'abc', '', ' 5', '05', '1e3'])
      assert.equal(parseExpectedTimeout(bad), undefined, bad);
    assert.equal(parseExpectedTimeout(['5', '6']), undefined);
    assert.equal(parseExpectedTimeout(undefined), undefined);
  });
});

const LEGACY: GrpcTimeoutPolicy = { maxMs: 0, offsetMs: 0, offsetMayExpire: false, rewriteHeader: true };

function eff(
  routeTimeoutMs: number,
  headers: IncomingHttpHeaders,
  opts: { grpc?: GrpcTimeoutPolicy; isGrpc?: boolean; respect?: boolean } = {},
): number {
  return effectiveTimeoutMs({
    routeTimeoutMs,
    grpcPolicy: opts.grpc,
    isGrpc: opts.isGrpc ?? true,
    respectExpectedRqTimeout: opts.respect ?? false,
    headers,
  });
}

describe('effective timeout', () => {
  const cases: [string, number, IncomingHttpHeaders, Parameters<typeof eff>[2], number][] = [
    ['route timeout alone', 15_000, {}, {}, 15_000],
    ['no route timeout, no deadline', 0, {}, {}, Infinity],
    ['grpc-timeout ignored without max_grpc_timeout', 15_000, { 'grpc-timeout': '1S' }, {}, 15_000],
    ['grpc-timeout caps the route timeout', 15_000, { 'grpc-timeout': '1S' }, { grpc: LEGACY }, 1000],
    ['grpc-timeout never lengthens it', 500, { 'grpc-timeout': '10S' }, { grpc: LEGACY }, 500],
    ['grpc-timeout with no route timeout', 0, { 'grpc-timeout': '300m' }, { grpc: LEGACY }, 300],
    ['no header: max_grpc_timeout 0 is infinity', 0, {}, { grpc: LEGACY }, Infinity],
    ['no header: the cap applies', 0, {}, { grpc: { ...LEGACY, maxMs: 2000 } }, 2000],
    ['header capped by max', 0, { 'grpc-timeout': '5S' }, { grpc: { ...LEGACY, maxMs: 2000 } }, 2000],
    ['header below max', 0, { 'grpc-timeout': '1S' }, { grpc: { ...LEGACY, maxMs: 2000 } }, 1000],
    ['offset subtracted', 0, { 'grpc-timeout': '1S' }, { grpc: { ...LEGACY, offsetMs: 100 } }, 900],
    [
      'legacy offset not applied when not smaller',
      0,
      { 'grpc-timeout': '100m' },
      { grpc: { ...LEGACY, offsetMs: 100 } },
      100,
    ],
    [
      'header offset may expire the request',
      0,
      { 'grpc-timeout': '100m' },
      { grpc: { ...LEGACY, offsetMs: 150, offsetMayExpire: true } },
      0,
    ],
    ['malformed grpc-timeout: route timeout', 700, { 'grpc-timeout': 'soon' }, { grpc: LEGACY }, 700],
    ['not a gRPC request', 700, { 'grpc-timeout': '1m' }, { grpc: LEGACY, isGrpc: false }, 700],
    ['expected timeout ignored by default', 15_000, { 'x-envoy-expected-rq-timeout-ms': '400' }, {}, 15_000],
    [
      'expected timeout caps when respected',
      15_000,
      { 'x-envoy-expected-rq-timeout-ms': '400' },
      { respect: true },
      400,
    ],
    [
      'expected timeout with no route timeout',
      0,
      { 'x-envoy-expected-rq-timeout-ms': '400' },
      { respect: true },
      400,
    ],
    [
      'expected timeout never lengthens',
      300,
      { 'x-envoy-expected-rq-timeout-ms': '400' },
      { respect: true },
      300,
    ],
    [
      'bad expected timeout ignored',
      0,
      { 'x-envoy-expected-rq-timeout-ms': '0' },
      { respect: true },
      Infinity,
    ],
    [
      'smallest of all three',
      1000,
      { 'grpc-timeout': '800m', 'x-envoy-expected-rq-timeout-ms': '600' },
      { grpc: LEGACY, respect: true },
      600,
    ],
  ];
  for (const [name, route, headers, opts, want] of cases)
    it(name, () => assert.equal(eff(route, headers, opts), want));
});

describe('attempt budget', () => {
  it('is the remaining time, or the per-try timeout capped by it, in whole ms of at least 1', () => {
    assert.equal(attemptBudgetMs(Infinity, 0), undefined);
    assert.equal(attemptBudgetMs(Infinity, 200), 200);
    assert.equal(attemptBudgetMs(450.7, 0), 450);
    assert.equal(attemptBudgetMs(450.7, 200), 200);
    assert.equal(attemptBudgetMs(120, 200), 120);
    assert.equal(attemptBudgetMs(0.3, 0), 1);
    assert.equal(attemptBudgetMs(-5, 0), 1);
  });
});

describe('RouteAction gRPC timeout fields', () => {
  const P = 'route';
  it('compiles max_grpc_timeout and grpc_timeout_offset', () => {
    const a = compileRouteAction(
      { cluster: 'c', max_grpc_timeout: '2s', grpc_timeout_offset: '0.05s' },
      P,
      0,
    );
    assert.deepEqual(a.grpcTimeout, {
      maxMs: 2000,
      offsetMs: 50,
      offsetMayExpire: false,
      rewriteHeader: true,
    });
    assert.deepEqual(compileRouteAction({ cluster: 'c', max_grpc_timeout: '0s' }, P, 0).grpcTimeout, {
      maxMs: 0,
      offsetMs: 0,
      offsetMayExpire: false,
      rewriteHeader: true,
    });
    assert.equal(compileRouteAction({ cluster: 'c' }, P, 0).grpcTimeout, undefined);
  });

  it('prefers MaxStreamDuration grpc_timeout_header_* and refuses the stream duration itself', () => {
    const a = compileRouteAction(
      {
        cluster: 'c',
        max_grpc_timeout: '9s',
        max_stream_duration: { grpc_timeout_header_max: '3s', grpc_timeout_header_offset: '0.1s' },
      },
      P,
      0,
    );
    assert.deepEqual(a.grpcTimeout, {
      maxMs: 3000,
      offsetMs: 100,
      offsetMayExpire: true,
      rewriteHeader: false,
    });
    assert.throws(
      () => compileRouteAction({ cluster: 'c', max_stream_duration: { max_stream_duration: '1s' } }, P, 0),
      /route\.max_stream_duration\.max_stream_duration: not supported by Weft/,
    );
    assert.throws(
      () => compileRouteAction({ cluster: 'c', grpc_timeout_offset: '1s' }, P, 0),
      /route\.grpc_timeout_offset: has no effect without max_grpc_timeout/,
    );
    assert.throws(
      () => compileRouteAction({ cluster: 'c', max_grpc_timeout: 'soon' }, P, 0),
      /route\.max_grpc_timeout/,
    );
  });
});
