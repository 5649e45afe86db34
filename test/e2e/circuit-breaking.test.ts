import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HcmRuntime } from '../../src/proxy/http/connection-manager.ts';
import type { HttpStream } from '../../src/proxy/http/stream.ts';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
};

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

describe('circuit breakers through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let upstream: Upstream;
  let grpcServer: grpc.Server;
  let client: EchoClient;
  /** Requests the upstream holds until release(). */
  const held: http.ServerResponse[] = [];
  const heldGrpc: (() => void)[] = [];
  /** Attempts the upstream saw, by x-key. */
  const attempts = new Map<string, number>();
  /** Response flags of finished streams, by x-key. */
  const flags = new Map<string, string>();
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const originalDone = HcmRuntime.prototype.onStreamDone;

  // The flags an access log would print, read where the stream ends.
  HcmRuntime.prototype.onStreamDone = function (this: HcmRuntime, stream: HttpStream): void {
    const key = stream.headers['x-key'];
    if (typeof key === 'string') flags.set(key, stream.flags);
    originalDone.call(this, stream);
  };

  const counter = (name: string): number => proxy.server.stats.counter(name).value;
  const gauge = (name: string): number => proxy.server.stats.gauge(name).value;

  function release(): void {
    for (const res of held.splice(0)) res.end('released');
  }

  /** Sends `n` requests that the upstream holds, and waits until it holds all of them. */
  async function hang(port: number, prefix: string, keys: string[]): Promise<Promise<Reply>[]> {
    const before = held.length;
    const replies = keys.map((k) => request(port, { path: `${prefix}/hang`, headers: { 'x-key': k } }));
    await waitFor(() => held.length === before + keys.length, 5000, 'the upstream to hold the requests');
    return replies;
  }

  before(async () => {
    upstream = await startHttpUpstream({
      handler: (req, res) => {
        const key = String(req.headers['x-key'] ?? '');
        attempts.set(key, (attempts.get(key) ?? 0) + 1);
        req.resume();
        if (req.url?.endsWith('/hang')) held.push(res);
        else if (req.url?.endsWith('/fail')) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('upstream says no');
        } else res.end('ok');
      },
    });

    const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
    const Echo = (
      grpc.loadPackageDefinition(def) as unknown as {
        weft: { test: { Echo: grpc.ServiceClientConstructor } };
      }
    ).weft.test.Echo;
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        if (call.request.text === 'hang') heldGrpc.push(() => cb(null, { text: 'late', n: 0 }));
        else cb(null, { text: `echo:${call.request.text}`, n: 1 });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );

    const up = [{ port: upstream.port }];
    const route = (prefix: string, cluster: string, extra: Record<string, unknown> = {}) => ({
      match: { prefix },
      route: { cluster, ...extra },
    });
    const retry5xx = {
      retry_policy: {
        retry_on: '5xx',
        num_retries: 3,
        retry_back_off: { base_interval: '0.005s', max_interval: '0.01s' },
      },
    };
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              route('/weft.test.Echo/', 'grpc'),
              route('/requests', 'requests'),
              route('/pending', 'pending'),
              route('/budget-low', 'budget-low', retry5xx),
              route('/budget-floor', 'budget-floor', retry5xx),
            ],
          }),
        ],
        [
          staticCluster('requests', up, { circuit_breakers: { thresholds: [{ max_requests: 2 }] } }),
          staticCluster('pending', up, {
            circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] },
          }),
          // 20% of one active request is no retry at all...
          staticCluster('budget-low', up, {
            circuit_breakers: {
              thresholds: [
                {
                  retry_budget: { budget_percent: { value: 20 }, min_retry_concurrency: 0 },
                  max_retries: 100,
                },
              ],
            },
          }),
          // ...unless min_retry_concurrency grants one.
          staticCluster('budget-floor', up, {
            circuit_breakers: {
              thresholds: [
                { retry_budget: { budget_percent: { value: 20 }, min_retry_concurrency: 1 }, max_retries: 0 },
              ],
            },
          }),
          staticCluster('grpc', [{ port: grpcPort }], {
            ...HTTP2_PROTOCOL_OPTIONS,
            circuit_breakers: { thresholds: [{ max_requests: 1, track_remaining: true }] },
          }),
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
    release();
    for (const h of heldGrpc.splice(0)) h();
    client?.close();
    await proxy?.stop();
    grpcServer?.forceShutdown();
    await upstream?.close();
  });

  it('answers 503 UO at once over max_requests, and recovers once the requests end', async () => {
    const port = proxy.port();
    const replies = await hang(port, '/requests', ['r1', 'r2']);
    assert.equal(gauge('cluster.requests.circuit_breakers.default.rq_open'), 1);
    const third = await request(port, { path: '/requests/hang', headers: { 'x-key': 'r3' } });
    assert.equal(third.status, 503);
    assert.equal(third.body, OVERFLOW_BODY);
    assert.equal(third.headers['x-envoy-overloaded'], 'true');
    assert.equal(flags.get('r3'), 'UO');
    assert.equal(attempts.get('r3'), undefined, 'the overflowed request never reached the upstream');
    assert.equal(counter('cluster.requests.upstream_rq_pending_overflow'), 1);
    release();
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
    await waitFor(() => gauge('cluster.requests.circuit_breakers.default.rq_open') === 0, 5000, 'rq_open');
    // No slot leaked: two requests may hang again, and a quick one still gets through after them.
    const again = await hang(port, '/requests', ['r4', 'r5']);
    release();
    for (const r of await Promise.all(again)) assert.equal(r.status, 200);
    const quick = await request(port, { path: '/requests/ok', headers: { 'x-key': 'r6' } });
    assert.equal(quick.status, 200);
    assert.equal(quick.headers['x-envoy-overloaded'], undefined);
    assert.equal(counter('cluster.requests.upstream_rq_pending_overflow'), 1);
  });

  it('queues up to max_pending_requests behind max_connections 1 on HTTP/1.1, then overflows', async () => {
    const port = proxy.port();
    const [first] = await hang(port, '/pending', ['p1']);
    const second = request(port, { path: '/pending/hang', headers: { 'x-key': 'p2' } });
    await waitFor(
      () => gauge('cluster.pending.circuit_breakers.default.rq_pending_open') === 1,
      5000,
      'the second request to wait for the connection',
    );
    assert.equal(attempts.get('p2'), undefined);
    const third = await request(port, { path: '/pending/hang', headers: { 'x-key': 'p3' } });
    assert.equal(third.status, 503);
    assert.equal(flags.get('p3'), 'UO');
    assert.equal(counter('cluster.pending.upstream_rq_pending_overflow'), 1);
    release();
    assert.equal((await first).status, 200);
    // The queued request goes out on the connection the first one freed.
    await waitFor(() => held.length === 1, 5000, 'the queued request to reach the upstream');
    release();
    assert.equal((await second).status, 200);
    assert.equal(attempts.get('p3'), undefined);
    assert.equal(gauge('cluster.pending.circuit_breakers.default.rq_pending_open'), 0);
  });

  it('a retry budget refuses retries while few requests are active', async () => {
    const port = proxy.port();
    const low = await request(port, { path: '/budget-low/fail', headers: { 'x-key': 'b-low' } });
    // Retrying ends: the client gets the upstream's own answer.
    assert.equal(low.status, 503);
    assert.equal(low.body, 'upstream says no');
    assert.equal(attempts.get('b-low'), 1);
    assert.equal(counter('cluster.budget-low.upstream_rq_retry_overflow'), 1);
    assert.equal(counter('cluster.budget-low.upstream_rq_retry'), 0);

    // min_retry_concurrency 1 allows one retry at a time, which replaces max_retries 0.
    const floor = await request(port, { path: '/budget-floor/fail', headers: { 'x-key': 'b-floor' } });
    assert.equal(floor.status, 503);
    assert.equal(attempts.get('b-floor'), 4);
    assert.equal(counter('cluster.budget-floor.upstream_rq_retry'), 3);
    assert.equal(counter('cluster.budget-floor.upstream_rq_retry_overflow'), 0);
  });

  it('gives a gRPC caller UNAVAILABLE on overflow', async () => {
    const first = new Promise<Msg>((resolve, reject) =>
      client.Unary({ text: 'hang', n: 0 }, (e, m) => (e ? reject(e) : resolve(m!))),
    );
    await waitFor(() => heldGrpc.length === 1, 5000, 'the gRPC server to hold the first call');
    assert.equal(gauge('cluster.grpc.circuit_breakers.default.remaining_rq'), 0);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Unary({ text: 'second', n: 0 }, (e) => resolve(e)),
    );
    assert.ok(err, 'the second call should fail');
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.equal(counter('cluster.grpc.upstream_rq_pending_overflow'), 1);
    for (const h of heldGrpc.splice(0)) h();
    assert.equal((await first).text, 'late');
    await waitFor(() => gauge('cluster.grpc.circuit_breakers.default.remaining_rq') === 1, 5000, 'the slot');
    const ok = await new Promise<Msg>((resolve, reject) =>
      client.Unary({ text: 'after', n: 0 }, (e, m) => (e ? reject(e) : resolve(m!))),
    );
    assert.equal(ok.text, 'echo:after');
  });
});
