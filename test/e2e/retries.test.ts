import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HcmRuntime } from '../../src/proxy/http/connection-manager.ts';
import type { HttpStream } from '../../src/proxy/http/stream.ts';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
  ClientStream(cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(): grpc.ClientDuplexStream<Msg, Msg>;
};

/** What one test key's requests looked like at the upstream. */
interface Seen {
  count: number;
  bodies: Buffer[];
  attemptCounts: (string | undefined)[];
}

const PREVIOUS_HOSTS = [
  {
    name: 'envoy.retry_host_predicates.previous_hosts',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
    },
  },
];

describe('route retry_policy through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let grpcServer: grpc.Server;
  let client: EchoClient;
  const ups: Upstream[] = [];
  const seen = new Map<string, Seen>();
  /** Response flags of finished streams, by x-key. */
  const flags = new Map<string, string>();
  // Kept to be called with the runtime as `this` and restored after the suite.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const originalDone = HcmRuntime.prototype.onStreamDone;
  let grpcCalls = 0;

  // The proxy has no access log yet: the flags an access log would print are read where the stream ends.
  HcmRuntime.prototype.onStreamDone = function (this: HcmRuntime, stream: HttpStream): void {
    const key = stream.headers['x-key'];
    if (typeof key === 'string') flags.set(key, stream.flags);
    originalDone.call(this, stream);
  };

  function stat(name: string): number {
    return proxy.server.stats.counter(name).value;
  }

  /**
   * The test upstream: per x-key, fails the first `x-fail` requests with `x-fail-status` (503), delays the
   * first request by `x-delay-first` ms (every request by `x-delay` ms), and records bodies and
   * x-envoy-attempt-count.
   */
  function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['x-key'] ?? '');
      let s = seen.get(key);
      if (s === undefined) seen.set(key, (s = { count: 0, bodies: [], attemptCounts: [] }));
      s.count++;
      s.bodies.push(Buffer.concat(chunks));
      s.attemptCounts.push(req.headers['x-envoy-attempt-count'] as string | undefined);
      const n = s.count;
      const fail = Number(req.headers['x-fail'] ?? 0);
      const answer = (): void => {
        if (n <= fail) {
          res.writeHead(Number(req.headers['x-fail-status'] ?? 503), { 'content-type': 'text/plain' });
          res.end(`failure ${n}`);
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`ok after ${n}`);
        }
      };
      const delay = Number(req.headers['x-delay-first'] ?? 0);
      if (req.headers['x-slow-body'] !== undefined) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('head ');
        setTimeout(() => res.end('tail'), Number(req.headers['x-slow-body']));
        return;
      }
      const delayAll = Number(req.headers['x-delay'] ?? 0);
      if (delayAll > 0) setTimeout(answer, delayAll);
      else if (n === 1 && delay > 0) setTimeout(answer, delay);
      else answer();
    });
  }

  before(async () => {
    const good = await startHttpUpstream({ handler });
    ups.push(good);
    const dead = await closedPort();

    const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
    const Echo = (
      grpc.loadPackageDefinition(def) as unknown as {
        weft: { test: { Echo: grpc.ServiceClientConstructor } };
      }
    ).weft.test.Echo;
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        grpcCalls++;
        if (grpcCalls === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
        else cb(null, { text: `echo:${call.request.text}`, n: grpcCalls });
      },
      ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        let sum = 0;
        call.on('data', (m: Msg) => (sum += m.n));
        call.on('end', () => cb(null, { text: 'sum', n: sum }));
      },
      Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
        call.on('data', (m: Msg) => call.write({ text: `b:${m.text}`, n: m.n * 2 }));
        call.on('end', () => call.end());
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );

    const retry = (extra: Record<string, unknown>): Record<string, unknown> => ({
      retry_back_off: { base_interval: '0.005s', max_interval: '0.02s' },
      ...extra,
    });
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/weft.test.Echo/' },
                route: { cluster: 'grpc', retry_policy: retry({ retry_on: 'unavailable', num_retries: 2 }) },
              },
              {
                match: { prefix: '/5xx' },
                route: { cluster: 'good', retry_policy: retry({ retry_on: '5xx', num_retries: 3 }) },
              },
              {
                match: { prefix: '/two' },
                route: {
                  cluster: 'good',
                  retry_policy: retry({ retry_on: 'gateway-error', num_retries: 2 }),
                },
              },
              {
                match: { prefix: '/connect-only' },
                route: {
                  cluster: 'good',
                  retry_policy: retry({ retry_on: 'connect-failure', num_retries: 3 }),
                },
              },
              {
                match: { prefix: '/codes' },
                route: {
                  cluster: 'good',
                  retry_policy: retry({
                    retry_on: 'retriable-status-codes',
                    retriable_status_codes: [418],
                    num_retries: 1,
                  }),
                },
              },
              {
                match: { prefix: '/failover' },
                route: {
                  cluster: 'half-dead',
                  retry_policy: retry({
                    retry_on: 'connect-failure',
                    num_retries: 1,
                    retry_host_predicate: PREVIOUS_HOSTS,
                    host_selection_retry_max_attempts: 3,
                  }),
                },
              },
              {
                match: { prefix: '/dead' },
                route: {
                  cluster: 'dead',
                  retry_policy: retry({ retry_on: 'connect-failure', num_retries: 2 }),
                },
              },
              {
                match: { prefix: '/per-try-exhausted' },
                route: {
                  cluster: 'good',
                  retry_policy: retry({ retry_on: 'reset', num_retries: 0, per_try_timeout: '0.1s' }),
                },
              },
              {
                match: { prefix: '/per-try' },
                route: {
                  cluster: 'good',
                  timeout: '5s',
                  retry_policy: retry({ retry_on: '5xx', num_retries: 1, per_try_timeout: '0.2s' }),
                },
              },
              {
                match: { prefix: '/route-timeout' },
                route: {
                  cluster: 'good',
                  timeout: '0.5s',
                  retry_policy: retry({ retry_on: '5xx', num_retries: 5, per_try_timeout: '0.2s' }),
                },
              },
              {
                match: { prefix: '/breaker' },
                route: { cluster: 'breaker', retry_policy: retry({ retry_on: '5xx', num_retries: 3 }) },
              },
              { match: { prefix: '/plain' }, route: { cluster: 'good' } },
            ],
          }),
        ],
        [
          staticCluster('good', [{ port: good.port }]),
          staticCluster('half-dead', [{ port: dead }, { port: good.port }], { lb_policy: 'RANDOM' }),
          staticCluster('dead', [{ port: dead }]),
          staticCluster('breaker', [{ port: good.port }], {
            circuit_breakers: { thresholds: [{ max_retries: 0 }] },
          }),
          staticCluster('grpc', [{ port: grpcPort }], HTTP2_PROTOCOL_OPTIONS),
        ],
      ),
    );
    client = new Echo(
      `127.0.0.1:${proxy.port()}`,
      grpc.credentials.createInsecure(),
    ) as unknown as EchoClient;
  });

  after(async () => {
    HcmRuntime.prototype.onStreamDone = originalDone;
    client?.close();
    await proxy?.stop();
    grpcServer?.forceShutdown();
    for (const u of ups) await u.close();
  });

  it('retries 503s until the upstream answers, within num_retries', async () => {
    const retries = stat('cluster.good.upstream_rq_retry');
    const successes = stat('cluster.good.upstream_rq_retry_success');
    const r = await request(proxy.port(), { path: '/5xx', headers: { 'x-key': 'flaky', 'x-fail': '3' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok after 4');
    assert.equal(seen.get('flaky')?.count, 4);
    assert.equal(stat('cluster.good.upstream_rq_retry') - retries, 3);
    assert.equal(stat('cluster.good.upstream_rq_retry_success') - successes, 1);
    assert.equal(flags.get('flaky'), '');
  });

  it('does not retry what retry_on does not name', async () => {
    const r = await request(proxy.port(), {
      path: '/connect-only',
      headers: { 'x-key': 'nomatch', 'x-fail': '1' },
    });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'failure 1');
    assert.equal(seen.get('nomatch')?.count, 1);

    const g = await request(proxy.port(), {
      path: '/two',
      headers: { 'x-key': 'gw500', 'x-fail': '1', 'x-fail-status': '500' },
    });
    assert.equal(g.status, 500, 'gateway-error covers 502-504 only');
    assert.equal(seen.get('gw500')?.count, 1);
  });

  it('retries exactly the retriable_status_codes', async () => {
    const r = await request(proxy.port(), {
      path: '/codes',
      headers: { 'x-key': 'teapot', 'x-fail': '1', 'x-fail-status': '418' },
    });
    assert.equal(r.status, 200);
    assert.equal(seen.get('teapot')?.count, 2);
    const s = await request(proxy.port(), {
      path: '/codes',
      headers: { 'x-key': 'not-teapot', 'x-fail': '1', 'x-fail-status': '503' },
    });
    assert.equal(s.status, 503);
    assert.equal(seen.get('not-teapot')?.count, 1);
  });

  it('fails over from a closed port to the other host with previous_hosts', async () => {
    for (let i = 0; i < 12; i++) {
      const r = await request(proxy.port(), { path: '/failover', headers: { 'x-key': `fo${i}` } });
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(seen.get(`fo${i}`)?.count, 1);
    }
    assert.ok(stat('cluster.half-dead.upstream_rq_retry') > 0, 'some request had to fail over');
    assert.ok(stat('cluster.half-dead.upstream_cx_connect_fail') > 0);
  });

  it('retries a try that exceeds per_try_timeout, and the second try answers', async () => {
    const timeouts = stat('cluster.good.upstream_rq_per_try_timeout');
    const t0 = Date.now();
    const r = await request(proxy.port(), {
      path: '/per-try',
      headers: { 'x-key': 'slow-first', 'x-delay-first': '1500' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok after 2');
    assert.ok(Date.now() - t0 < 1400, 'the answer did not wait for the slow first try');
    assert.equal(stat('cluster.good.upstream_rq_per_try_timeout') - timeouts, 1);
  });

  it('stops the per-try timer once response headers arrived (the route timeout still applies)', async () => {
    const r = await request(proxy.port(), {
      path: '/per-try',
      headers: { 'x-key': 'slow-body', 'x-slow-body': '500' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'head tail');
    assert.equal(seen.get('slow-body')?.count, 1);
  });

  it('answers 504 UT with URX when a timed-out try cannot be retried', async () => {
    const r = await request(proxy.port(), {
      path: '/per-try-exhausted',
      headers: { 'x-key': 'pt-exhausted', 'x-delay-first': '1000' },
    });
    assert.equal(r.status, 504);
    assert.deepEqual(flags.get('pt-exhausted')?.split(',').sort(), ['URX', 'UT']);
  });

  it('never lets retries outlive the route timeout', async () => {
    const t0 = Date.now();
    const r = await request(proxy.port(), {
      path: '/route-timeout',
      headers: { 'x-key': 'route-timeout', 'x-delay': '3000' },
    });
    const took = Date.now() - t0;
    // Every try times out after 200 ms and 5 retries are allowed, but the route's 500 ms bound the whole.
    assert.equal(r.status, 504);
    assert.ok(took >= 450 && took < 1000, `took ${took} ms`);
    // Tries start at 0 ms and ~200 ms and ~400 ms (plus back-offs under 20 ms): at most three fit in 500 ms.
    const tries = seen.get('route-timeout')?.count ?? 0;
    assert.ok(tries >= 2 && tries <= 3, `${tries} tries`);
    assert.equal(flags.get('route-timeout'), 'UT');
  });

  it('replays a POST body identically on the retry', async () => {
    const body = randomBytes(200 * 1024);
    const r = await request(proxy.port(), {
      method: 'POST',
      path: '/5xx',
      headers: { 'x-key': 'post', 'x-fail': '2', 'content-type': 'application/octet-stream' },
      body,
    });
    assert.equal(r.status, 200);
    const s = seen.get('post')!;
    assert.equal(s.count, 3);
    for (const b of s.bodies) assert.ok(b.equals(body), 'each try carried the whole body');
  });

  it('replays a chunked body that was still streaming during the first try', async () => {
    const parts = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port(),
          method: 'POST',
          path: '/5xx',
          headers: { 'x-key': 'chunked', 'x-fail': '1', 'transfer-encoding': 'chunked' },
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      let i = 0;
      const next = (): void => {
        if (i < parts.length) {
          req.write(parts[i++]);
          setTimeout(next, 30);
        } else req.end();
      };
      next();
    });
    assert.equal(r.status, 200);
    const whole = Buffer.concat(parts);
    const s = seen.get('chunked')!;
    assert.equal(s.count, 2);
    for (const b of s.bodies) assert.ok(b.equals(whole));
  });

  it('does not retry a body larger than the buffer limit, but still forwards it', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const r = await request(proxy.port(), {
      method: 'POST',
      path: '/5xx',
      headers: { 'x-key': 'big', 'x-fail': '1' },
      body: big,
    });
    assert.equal(r.status, 503);
    assert.equal(seen.get('big')?.count, 1);
    assert.ok(seen.get('big')!.bodies[0].equals(big));
    assert.equal(flags.get('big'), '', 'not a retry limit: retries were never possible');

    // Chunked: the size is only discovered while streaming.
    const res = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port(),
          method: 'POST',
          path: '/5xx',
          headers: { 'x-key': 'big-chunked', 'x-fail': '1', 'transfer-encoding': 'chunked' },
          agent: false,
        },
        (m) => {
          m.resume();
          m.on('end', () => resolve(m.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(big);
    });
    assert.equal(res, 503);
    assert.equal(seen.get('big-chunked')?.count, 1);
    assert.ok(seen.get('big-chunked')!.bodies[0].equals(big));
  });

  it('passes the last upstream answer through with URX when retries run out', async () => {
    const exceeded = stat('cluster.good.upstream_rq_retry_limit_exceeded');
    const r = await request(proxy.port(), { path: '/two', headers: { 'x-key': 'always', 'x-fail': '99' } });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'failure 3', "the upstream's own last answer, not a local reply");
    assert.equal(seen.get('always')?.count, 3);
    assert.equal(flags.get('always'), 'URX');
    assert.equal(stat('cluster.good.upstream_rq_retry_limit_exceeded') - exceeded, 1);
  });

  it('answers 503 with URX and UF when every connect attempt fails', async () => {
    const r = await request(proxy.port(), { path: '/dead', headers: { 'x-key': 'dead' } });
    assert.equal(r.status, 503);
    assert.deepEqual(flags.get('dead')?.split(',').sort(), ['UF', 'URX']);
    assert.equal(stat('cluster.dead.upstream_cx_connect_fail'), 3);
  });

  it('honours circuit_breakers max_retries (overflow, no retry)', async () => {
    const r = await request(proxy.port(), {
      path: '/breaker',
      headers: { 'x-key': 'breaker', 'x-fail': '1' },
    });
    assert.equal(r.status, 503);
    assert.equal(seen.get('breaker')?.count, 1);
    assert.equal(stat('cluster.breaker.upstream_rq_retry_overflow'), 1);
    assert.equal(flags.get('breaker'), 'UO');
  });

  it('sends x-envoy-attempt-count upstream and downstream where the virtual host asks, and honours a route buffer limit', async () => {
    const counted = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            virtualHosts: [
              {
                name: 'counted',
                domains: ['*'],
                include_request_attempt_count: true,
                include_attempt_count_in_response: true,
                routes: [
                  {
                    match: { prefix: '/small-buffer' },
                    per_request_buffer_limit_bytes: 8,
                    route: { cluster: 'good', retry_policy: { retry_on: '5xx', num_retries: 2 } },
                  },
                  {
                    match: { prefix: '/' },
                    route: { cluster: 'good', retry_policy: { retry_on: '5xx', num_retries: 2 } },
                  },
                ],
              },
            ],
          }),
        ],
        [staticCluster('good', [{ port: ups[0].port }])],
      ),
    );
    try {
      const r = await request(counted.port(), { path: '/x', headers: { 'x-key': 'counted', 'x-fail': '2' } });
      assert.equal(r.status, 200);
      assert.deepEqual(seen.get('counted')?.attemptCounts, ['1', '2', '3']);
      assert.equal(r.headers['x-envoy-attempt-count'], '3');
      // A body over the route's 8-byte limit is forwarded once and not retried.
      const big = await request(counted.port(), {
        method: 'POST',
        path: '/small-buffer',
        headers: { 'x-key': 'over-limit', 'x-fail': '1' },
        body: 'more than eight bytes',
      });
      assert.equal(big.status, 503);
      assert.equal(seen.get('over-limit')?.count, 1);
    } finally {
      await counted.stop();
    }
  });

  it('leaves routes without a retry policy alone', async () => {
    const r = await request(proxy.port(), { path: '/plain', headers: { 'x-key': 'plain', 'x-fail': '1' } });
    assert.equal(r.status, 503);
    assert.equal(seen.get('plain')?.count, 1);
  });

  it('retries a gRPC call answered UNAVAILABLE (trailers-only) when retry_on has unavailable', async () => {
    const reply = await new Promise<Msg>((resolve, reject) =>
      client.Unary({ text: 'hi', n: 1 }, (e, m) => (e ? reject(e) : resolve(m!))),
    );
    assert.equal(reply.text, 'echo:hi');
    assert.equal(grpcCalls, 2);
  });

  it('streams a gRPC client-streaming call on a retry route as it is written', async () => {
    const reply = await new Promise<Msg>((resolve, reject) => {
      const call = client.ClientStream((e, m) => (e ? reject(e) : resolve(m!)));
      let i = 1;
      const next = (): void => {
        if (i <= 4) {
          call.write({ text: 'x', n: i++ });
          setTimeout(next, 40);
        } else call.end();
      };
      next();
    });
    assert.deepEqual({ text: reply.text, n: reply.n }, { text: 'sum', n: 10 });
  });

  it('does not hold back a bidi stream: each message is answered before the next is written', async () => {
    const call = client.Bidi();
    const got: Msg[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (let i = 1; i <= 3; i++) {
      const answered = new Promise<Msg>((resolve) => call.once('data', resolve));
      call.write({ text: `m${i}`, n: i });
      got.push(await answered);
    }
    call.end();
    await ended;
    assert.deepEqual(
      got.map((m) => [m.text, m.n]),
      [
        ['b:m1', 2],
        ['b:m2', 4],
        ['b:m3', 6],
      ],
    );
  });
});
