import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import type { Json } from '../../../core/json.ts';
import type { MatchedRoute } from '../../router/types.ts';
import { StatsStore } from '../../stats/store.ts';
import type { OutgoingHeaders } from '../../upstream/codec.ts';
import type { HttpStream } from '../stream.ts';
import { CorsFilter, CorsStats } from './cors.ts';
import { compileCorsPolicy } from './cors-config.ts';

const NAME = 'envoy.filters.http.cors';
const ORIGIN = 'https://app.example';

interface Reply {
  status: number;
  headers: OutgoingHeaders | undefined;
}

/** The parts of HttpStream the CORS filter uses. */
class FakeStream {
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly matched: MatchedRoute | null;
  routeLookups = 0;
  replies: Reply[] = [];

  constructor(method: string, headers: IncomingHttpHeaders, matched: MatchedRoute | null) {
    this.method = method;
    this.headers = headers;
    this.matched = matched;
  }
  route(): MatchedRoute | null {
    this.routeLookups++;
    return this.matched;
  }
  sendLocalReply(status: number, _flag: string | null, _body?: string, headers?: OutgoingHeaders): void {
    this.replies.push({ status, headers });
  }
  get asStream(): HttpStream {
    return this as unknown as HttpStream;
  }
}

function routeWith(policy: Json | undefined): MatchedRoute {
  const perFilterConfig =
    policy === undefined ? undefined : new Map([[NAME, compileCorsPolicy(policy, 'p')]]);
  return { virtualHostName: 'vh', perFilterConfig } as unknown as MatchedRoute;
}

const FULL: Json = {
  allow_origin_string_match: [{ exact: ORIGIN }],
  allow_methods: 'GET,PUT',
  allow_headers: 'x-token',
  expose_headers: 'x-trace',
  max_age: '3600',
  allow_credentials: true,
};

function setup() {
  const store = new StatsStore();
  const stats = new CorsStats(store, 'out');
  return { filter: new CorsFilter(NAME, stats), stats };
}

const preflight = (origin: string): IncomingHttpHeaders => ({
  origin,
  'access-control-request-method': 'PUT',
});

describe('CORS filter', () => {
  it('answers a preflight from an allowed origin with the policy headers', () => {
    const { filter, stats } = setup();
    const s = new FakeStream('OPTIONS', preflight(ORIGIN), routeWith(FULL));
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.deepEqual(s.replies, [
      {
        status: 200,
        headers: {
          'access-control-allow-origin': ORIGIN,
          'access-control-allow-credentials': 'true',
          'access-control-allow-methods': 'GET,PUT',
          'access-control-allow-headers': 'x-token',
          'access-control-max-age': '3600',
        },
      },
    ]);
    assert.equal(stats.originValid.value, 1);
  });

  it('leaves out the headers the policy does not set', () => {
    const { filter } = setup();
    const s = new FakeStream(
      'OPTIONS',
      preflight(ORIGIN),
      routeWith({ allow_origin_string_match: [{ prefix: 'https://' }] }),
    );
    assert.equal(filter.onRequest(s.asStream), 'stop');
    assert.deepEqual(s.replies, [{ status: 200, headers: { 'access-control-allow-origin': ORIGIN } }]);
  });

  it('forwards a preflight from another origin by default, answers it bare when told not to', () => {
    const { filter, stats } = setup();
    const fwd = new FakeStream('OPTIONS', preflight('https://evil.example'), routeWith(FULL));
    assert.equal(filter.onRequest(fwd.asStream), 'continue');
    assert.deepEqual(fwd.replies, []);
    assert.equal(stats.originInvalid.value, 1);

    const answered = new FakeStream(
      'OPTIONS',
      preflight('https://evil.example'),
      routeWith({ ...(FULL as object), forward_not_matching_preflights: false }),
    );
    assert.equal(filter.onRequest(answered.asStream), 'stop');
    assert.deepEqual(answered.replies, [{ status: 200, headers: undefined }]);
  });

  it('passes OPTIONS without Access-Control-Request-Method on as an ordinary request', () => {
    const { filter } = setup();
    const s = new FakeStream('OPTIONS', { origin: ORIGIN }, routeWith(FULL));
    assert.equal(filter.onRequest(s.asStream), 'continue');
    assert.deepEqual(s.replies, []);
    const headers: OutgoingHeaders = {};
    filter.onResponseHeaders(s.asStream, 200, headers);
    assert.equal(headers['access-control-allow-origin'], ORIGIN);
  });

  it('adds allow-origin, allow-credentials and expose-headers to the response of an allowed origin', () => {
    const { filter } = setup();
    const s = new FakeStream('GET', { origin: ORIGIN }, routeWith(FULL));
    assert.equal(filter.onRequest(s.asStream), 'continue');
    const headers: OutgoingHeaders = { 'access-control-allow-origin': '*', 'content-type': 'text/plain' };
    filter.onResponseHeaders(s.asStream, 200, headers);
    assert.deepEqual(headers, {
      'access-control-allow-origin': ORIGIN,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-trace',
      'content-type': 'text/plain',
    });
  });

  it('adds nothing for another origin, for a route without policy, or without Origin', () => {
    const { filter } = setup();
    const cases = [
      new FakeStream('GET', { origin: 'https://evil.example' }, routeWith(FULL)),
      new FakeStream('GET', { origin: ORIGIN }, routeWith(undefined)),
      new FakeStream('GET', { origin: ORIGIN }, null),
      new FakeStream('GET', { origin: '' }, routeWith(FULL)),
      new FakeStream('OPTIONS', { 'access-control-request-method': 'PUT' }, routeWith(FULL)),
    ];
    for (const s of cases) {
      assert.equal(filter.onRequest(s.asStream), 'continue');
      const headers: OutgoingHeaders = { 'x-up': '1' };
      filter.onResponseHeaders(s.asStream, 200, headers);
      assert.deepEqual(headers, { 'x-up': '1' });
      assert.deepEqual(s.replies, []);
    }
  });

  it('does not even look up the route for requests without Origin', () => {
    const { filter } = setup();
    const s = new FakeStream('GET', {}, routeWith(FULL));
    filter.onRequest(s.asStream);
    filter.onResponseHeaders(s.asStream, 200, {});
    assert.equal(s.routeLookups, 0);
  });
});
