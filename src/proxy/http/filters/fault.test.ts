import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import type { Json } from '../../../core/json.ts';
import type { MatchedRoute } from '../../router/types.ts';
import { StatsStore } from '../../stats/store.ts';
import type { HttpStream } from '../stream.ts';
import { FaultFilter, FaultStats } from './fault.ts';
import { compileHttpFault } from './fault-config.ts';

const NAME = 'envoy.filters.http.fault';

interface Reply {
  status: number;
  flag: string | null;
  body: string | undefined;
  grpc: number | undefined;
}

/** The parts of HttpStream the fault filter uses. */
class FakeStream {
  readonly headers: IncomingHttpHeaders;
  readonly res = new EventEmitter();
  readonly authority = 'svc';
  readonly path = '/';
  readonly method = 'GET';
  readonly scheme = 'http';
  readonly sourceIp = '127.0.0.1';
  flags = '';
  done = false;
  onAbort: (() => void) | null = null;
  replies: Reply[] = [];
  continued = 0;
  matched: MatchedRoute | null = null;

  constructor(headers: IncomingHttpHeaders = {}) {
    this.headers = headers;
  }
  route(): MatchedRoute | null {
    return this.matched;
  }
  addFlag(flag: string): void {
    this.flags = this.flags === '' ? flag : `${this.flags},${flag}`;
  }
  sendLocalReply(status: number, flag: string | null, body?: string, _h?: unknown, grpc?: number): void {
    if (flag) this.addFlag(flag);
    this.replies.push({ status, flag, body, grpc });
    this.finish();
  }
  continueDecoding(): void {
    this.continued++;
  }
  finish(): void {
    this.done = true;
    this.res.emit('close');
  }
  /** The client going away, as HttpStream.onDownstreamClose does it. */
  clientGone(): void {
    const abort = this.onAbort;
    this.onAbort = null;
    if (abort) abort();
    this.finish();
  }
  get asStream(): HttpStream {
    return this as unknown as HttpStream;
  }
}

function setup(config: Json, random?: () => number) {
  const store = new StatsStore();
  const stats = new FaultStats(store, 'in');
  const filter = new FaultFilter(NAME, compileHttpFault(config, 'f'), stats, random);
  return { filter, stats, store };
}

function routeWith(config: Json | undefined, cluster = 'c'): MatchedRoute {
  return {
    virtualHostName: 'vh',
    route: {
      name: 'r',
      action: {
        kind: 'route',
        pickCluster: () => ({ cluster }),
      } as unknown as MatchedRoute['route']['action'],
    },
    requestHeaders: [],
    responseHeaders: [],
    ...(config !== undefined ? { perFilterConfig: new Map([[NAME, compileHttpFault(config, 'r')]]) } : {}),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FaultFilter: aborts', () => {
  it('aborts every request at 100% with FI, counts it, and releases the active fault', () => {
    const { filter, stats } = setup({ abort: { http_status: 503, percentage: { numerator: 100 } } });
    const s = new FakeStream();
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.deepEqual(s.replies, [{ status: 503, flag: 'FI', body: 'fault filter abort', grpc: undefined }]);
    assert.equal(s.flags, 'FI');
    assert.equal(stats.abortsInjected.value, 1);
    assert.equal(stats.activeFaults.value, 0);
  });

  it('an absent percentage is 0%: nothing is injected', () => {
    const { filter, stats } = setup({ abort: { http_status: 503 } }, () => 0);
    const s = new FakeStream();
    assert.equal(filter.onRequest(s.asStream), 'continue');
    assert.equal(stats.abortsInjected.value, 0);
  });

  it('draws against numerator/denominator (pinned random)', () => {
    const cfg = { abort: { http_status: 500, percentage: { numerator: 2500, denominator: 'TEN_THOUSAND' } } };
    assert.equal(setup(cfg, () => 0.2499).filter.onRequest(new FakeStream().asStream), 'stop');
    assert.equal(setup(cfg, () => 0.25).filter.onRequest(new FakeStream().asStream), 'continue');
  });

  it('injects about the configured share over a fixed sample', () => {
    // 4000 draws at 50%: mean 2000, sd ≈ 32; ±200 is > 6 sd, and 0% or 100% can never land inside it.
    const N = 4000;
    const half = setup({ abort: { http_status: 503, percentage: { numerator: 50 } } });
    for (let i = 0; i < N; i++) half.filter.onRequest(new FakeStream().asStream);
    assert.ok(
      Math.abs(half.stats.abortsInjected.value - N / 2) <= 200,
      String(half.stats.abortsInjected.value),
    );
    // 0.1% in MILLION units: 1000/1e6 over 40 000 draws: mean 40, sd ≈ 6.3; [10, 70] is ±4.7 sd.
    const small = setup({
      abort: { http_status: 503, percentage: { numerator: 1000, denominator: 'MILLION' } },
    });
    for (let i = 0; i < 40_000; i++) small.filter.onRequest(new FakeStream().asStream);
    const n = small.stats.abortsInjected.value;
    assert.ok(n >= 10 && n <= 70, String(n));
  });

  it('gRPC status aborts carry the gRPC code; HTTP status stays for plain requests', () => {
    const { filter } = setup({ abort: { grpc_status: 14, percentage: { numerator: 100 } } });
    const s = new FakeStream({ 'content-type': 'application/grpc' });
    filter.onRequest(s.asStream);
    assert.deepEqual(s.replies[0], { status: 503, flag: 'FI', body: 'fault filter abort', grpc: 14 });
  });

  it('header_abort takes the status from the request headers, capped by the configured percentage', () => {
    const cfg = { abort: { header_abort: {}, percentage: { numerator: 50 } } };
    const abortWith = (headers: IncomingHttpHeaders, random = 0.3) => {
      const s = new FakeStream(headers);
      const status = setup(cfg, () => random).filter.onRequest(s.asStream);
      return status === 'stop' ? s.replies[0] : undefined;
    };
    assert.equal(abortWith({ 'x-envoy-fault-abort-request': '418' })?.status, 418);
    assert.equal(abortWith({}), undefined);
    assert.equal(abortWith({ 'x-envoy-fault-abort-request': '600' }), undefined);
    assert.equal(abortWith({ 'x-envoy-fault-abort-request': '-1' }), undefined);
    assert.equal(abortWith({ 'x-envoy-fault-abort-request': 'abc' }), undefined);
    assert.equal(abortWith({ 'x-envoy-fault-abort-grpc-request': '8' })?.grpc, 8);
    // The percentage header lowers the share (20 < 50): 0.3 is now outside it.
    assert.equal(
      abortWith({ 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': '20' }),
      undefined,
    );
    // ...but cannot raise it above the configured 50: 0.6 stays outside.
    assert.equal(
      abortWith(
        { 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': '100' },
        0.6,
      ),
      undefined,
    );
    assert.equal(
      abortWith(
        { 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': '100' },
        0.4,
      )?.status,
      503,
    );
  });

  it('applies only when every header matcher and the upstream cluster match', () => {
    const { filter } = setup({
      abort: { http_status: 503, percentage: { numerator: 100 } },
      headers: [{ name: 'x-user', string_match: { exact: 'tester' } }],
      upstream_cluster: 'reviews',
    });
    const s1 = new FakeStream({ 'x-user': 'tester' });
    s1.matched = routeWith(undefined, 'reviews');
    assert.equal(filter.onRequest(s1.asStream), 'stop');
    const s2 = new FakeStream({ 'x-user': 'other' });
    s2.matched = routeWith(undefined, 'reviews');
    assert.equal(filter.onRequest(s2.asStream), 'continue');
    const s3 = new FakeStream({ 'x-user': 'tester' });
    s3.matched = routeWith(undefined, 'ratings');
    assert.equal(filter.onRequest(s3.asStream), 'continue');
  });
});

describe('FaultFilter: per-route configuration', () => {
  it('the route config replaces the filter-level one (including an empty filter-level one)', () => {
    const { filter } = setup({});
    const plain = new FakeStream();
    assert.equal(filter.onRequest(plain.asStream), 'continue');
    const s = new FakeStream();
    s.matched = routeWith({ abort: { http_status: 429, percentage: { numerator: 100 } } });
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.equal(s.replies[0].status, 429);
    const f2 = setup({ abort: { http_status: 500, percentage: { numerator: 100 } } }).filter;
    const quiet = new FakeStream();
    quiet.matched = routeWith({ delay: { fixed_delay: '1s' } }); // 0%: the route's config turns the abort off
    assert.equal(f2.onRequest(quiet.asStream), 'continue');
  });
});

describe('FaultFilter: delays', () => {
  it('pauses the chain, flags DI, then continues', async () => {
    const { filter, stats } = setup({ delay: { fixed_delay: '0.03s', percentage: { numerator: 100 } } });
    const s = new FakeStream();
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.equal(s.flags, 'DI');
    assert.equal(stats.delaysInjected.value, 1);
    assert.equal(stats.activeFaults.value, 1);
    assert.equal(s.continued, 0);
    await sleep(80);
    assert.equal(s.continued, 1);
    assert.equal(s.onAbort, null);
    s.finish();
    assert.equal(stats.activeFaults.value, 0);
  });

  it('a delay then an abort: both flags, the abort after the delay', async () => {
    const { filter } = setup({
      delay: { fixed_delay: '0.02s', percentage: { numerator: 100 } },
      abort: { http_status: 503, percentage: { numerator: 100 } },
    });
    const s = new FakeStream();
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.equal(s.replies.length, 0);
    await sleep(60);
    assert.equal(s.replies[0]?.status, 503);
    assert.equal(s.flags, 'DI,FI');
    assert.equal(s.continued, 0);
  });

  it('the client leaving during the delay cancels it', async () => {
    const { filter, stats } = setup({ delay: { fixed_delay: '0.03s', percentage: { numerator: 100 } } });
    const s = new FakeStream();
    filter.onRequest(s.asStream);
    s.clientGone();
    await sleep(80);
    assert.equal(s.continued, 0);
    assert.equal(stats.activeFaults.value, 0);
  });

  it('header_delay reads milliseconds from the request; 0 or garbage means no delay', () => {
    const cfg = { delay: { header_delay: {}, percentage: { numerator: 100 } } };
    const { filter } = setup(cfg);
    const s = new FakeStream({ 'x-envoy-fault-delay-request': '10' });
    assert.equal(filter.onRequest(s.asStream), 'stop');
    s.clientGone();
    assert.equal(
      filter.onRequest(new FakeStream({ 'x-envoy-fault-delay-request': '0' }).asStream),
      'continue',
    );
    assert.equal(
      filter.onRequest(new FakeStream({ 'x-envoy-fault-delay-request': '1s' }).asStream),
      'continue',
    );
    assert.equal(
      filter.onRequest(
        new FakeStream({ 'x-envoy-fault-delay-request': '10', 'x-envoy-fault-delay-request-percentage': '0' })
          .asStream,
      ),
      'continue',
    );
  });

  it('max_active_faults: over the limit there is no fault, and faults_overflow counts it', () => {
    const { filter, stats } = setup({
      delay: { fixed_delay: '5s', percentage: { numerator: 100 } },
      max_active_faults: 1,
    });
    const first = new FakeStream();
    assert.equal(filter.onRequest(first.asStream), 'stop');
    const second = new FakeStream();
    assert.equal(filter.onRequest(second.asStream), 'continue');
    assert.equal(stats.faultsOverflow.value, 1);
    assert.equal(second.flags, '');
    first.clientGone();
    const third = new FakeStream();
    assert.equal(filter.onRequest(third.asStream), 'stop');
    third.clientGone();
    assert.equal(stats.activeFaults.value, 0);
  });
});
