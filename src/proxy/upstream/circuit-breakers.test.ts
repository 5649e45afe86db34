import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { StatsStore } from '../stats/store.ts';
import { BreakerSlot, CircuitBreakers, DEFAULT_THRESHOLDS } from './circuit-breakers.ts';
import { compileCircuitBreakers } from './circuit-breakers-config.ts';
import type { UpstreamError, UpstreamHandler, UpstreamPool, UpstreamRequest } from './codec.ts';
import { createHost } from './host.ts';
import { Http2Pool } from './http2-pool.ts';
import { NativeHttp1Pool } from './http1-native-pool.ts';
import { testClusterConfig } from './testing.ts';
import type { CircuitBreakerThresholds, ClusterConfig, Host } from './types.ts';

const PATH = 'static_resources.clusters[0]';

function hostAt(port: number): Host {
  return createHost({
    address: '127.0.0.1',
    port,
    hostname: undefined,
    weight: 1,
    locality: { region: '', zone: '', subZone: '' },
    priority: 0,
    health: 'HEALTHY',
  });
}

function compileError(json: Record<string, unknown>): ConfigError {
  try {
    compileCircuitBreakers({ circuit_breakers: json } as never, PATH);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('compileCircuitBreakers', () => {
  it("fills in Envoy's defaults", () => {
    assert.deepEqual(compileCircuitBreakers({}, PATH), DEFAULT_THRESHOLDS);
    assert.deepEqual(compileCircuitBreakers({ circuit_breakers: { thresholds: [{}] } }, PATH), {
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      maxRetries: 3,
      retryBudget: undefined,
      trackRemaining: false,
    });
  });

  it('reads every DEFAULT threshold, and the retry budget with its defaults', () => {
    const t = compileCircuitBreakers(
      {
        circuit_breakers: {
          thresholds: [
            {
              priority: 'DEFAULT',
              max_connections: 1,
              max_pending_requests: 2,
              max_requests: 3,
              max_retries: 4,
              retry_budget: {},
              track_remaining: true,
            },
          ],
        },
      },
      PATH,
    );
    assert.deepEqual(t, {
      maxConnections: 1,
      maxPendingRequests: 2,
      maxRequests: 3,
      maxRetries: 4,
      retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 },
      trackRemaining: true,
    });
    const b = compileCircuitBreakers(
      {
        circuit_breakers: {
          thresholds: [{ retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 0 } }],
        },
      },
      PATH,
    );
    assert.deepEqual(b.retryBudget, { budgetPercent: 50, minRetryConcurrency: 0 });
  });

  it('rejects with the field path', () => {
    const t0 = `${PATH}.circuit_breakers.thresholds[0]`;
    let e = compileError({ thresholds: [{ priority: 'HIGH' }] });
    assert.equal(e.message, `${t0}.priority: "HIGH" is not supported by Weft`);
    e = compileError({ thresholds: [{ max_requests: -1 }] });
    assert.match(e.message, new RegExp(`^${escape(t0)}\\.max_requests: must be at least 0`));
    e = compileError({ thresholds: [{ max_connection_pools: 2 }] });
    assert.match(e.message, new RegExp(`^${escape(t0)}\\.max_connection_pools: .*not supported`));
    e = compileError({ thresholds: [{ retry_budget: { budget_percent: { value: 120 } } }] });
    assert.match(
      e.message,
      new RegExp(`^${escape(t0)}\\.retry_budget\\.budget_percent\\.value: must be between`),
    );
    e = compileError({ thresholds: [{}, { priority: 'DEFAULT' }] });
    assert.match(e.message, /thresholds\[1\]: duplicate thresholds for priority DEFAULT/);
    e = compileError({ per_host_thresholds: [{}] });
    assert.match(e.message, /circuit_breakers\.per_host_thresholds: .*not supported/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function thresholds(over: Partial<CircuitBreakerThresholds>): CircuitBreakerThresholds {
  return { ...DEFAULT_THRESHOLDS, ...over };
}

describe('CircuitBreakers', () => {
  it('publishes open and remaining gauges and counts overflows', () => {
    const stats = new StatsStore();
    const b = new CircuitBreakers(thresholds({ maxRequests: 2, trackRemaining: true }), stats, 'c');
    const gauge = (n: string): number => stats.gauge(`cluster.c.circuit_breakers.default.${n}`).value;
    const s1 = new BreakerSlot(b);
    const s2 = new BreakerSlot(b);
    const s3 = new BreakerSlot(b);
    assert.equal(s1.activate(), true);
    assert.equal(gauge('rq_open'), 0);
    assert.equal(gauge('remaining_rq'), 1);
    assert.equal(s2.activate(), true);
    assert.equal(gauge('rq_open'), 1);
    assert.equal(s3.activate(), false);
    assert.equal(stats.counter('cluster.c.upstream_rq_pending_overflow').value, 1);
    s1.release();
    s1.release(); // idempotent
    assert.equal(b.requests.count, 1);
    assert.equal(gauge('rq_open'), 0);
    s2.release();
    s3.release();
    assert.equal(b.requests.count, 0);
    assert.equal(gauge('remaining_rq'), 2);
  });

  it('moves a slot from pending to active, and releases whichever it holds', () => {
    const b = new CircuitBreakers(thresholds({ maxPendingRequests: 1 }));
    const a = new BreakerSlot(b);
    const c = new BreakerSlot(b);
    assert.equal(a.enterPending(), true);
    assert.equal(c.enterPending(), false);
    assert.equal(b.pending.count, 1);
    assert.equal(a.activate(), true);
    assert.equal(b.pending.count, 0);
    assert.equal(b.requests.count, 1);
    a.release();
    assert.equal(b.requests.count, 0);
    const d = new BreakerSlot(b);
    assert.equal(d.enterPending(), true);
    d.release();
    assert.equal(b.pending.count, 0);
  });

  it('sizes retries by the budget when there is one', () => {
    const b = new CircuitBreakers(
      thresholds({ maxRetries: 100, retryBudget: { budgetPercent: 25, minRetryConcurrency: 2 } }),
    );
    assert.equal(b.maxRetries(), 2);
    const slots = Array.from({ length: 12 }, () => new BreakerSlot(b));
    for (const s of slots) assert.equal(s.activate(), true);
    assert.equal(b.maxRetries(), 3);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), true);
    assert.equal(b.tryRetry(), false);
    const plain = new CircuitBreakers(thresholds({ maxRetries: 1 }));
    assert.equal(plain.tryRetry(), true);
    assert.equal(plain.tryRetry(), false);
    plain.retries.dec();
    assert.equal(plain.tryRetry(), true);
  });

  it('lets an empty pool open one connection over the cluster limit', () => {
    const stats = new StatsStore();
    const b = new CircuitBreakers(thresholds({ maxConnections: 1 }), stats, 'c');
    b.connections.inc();
    assert.equal(b.canOpenConnection(false), false);
    assert.equal(stats.counter('cluster.c.upstream_cx_overflow').value, 1);
    assert.equal(b.canOpenConnection(true), true);
  });
});

// ---------------------------------------------------------------------------------------------
// Pools against real upstreams that hang until told to answer

interface Outcome {
  status?: number;
  error?: UpstreamError;
}

interface Tracked {
  done: Promise<Outcome>;
  abort(reason: Error): void;
}

/** A GET to `path`, or a POST of `body` when one is given. */
function send(pool: UpstreamPool, path = '/', body: Readable | null = null): Tracked {
  let abort: (reason: Error) => void = () => undefined;
  const method = body === null ? 'GET' : 'POST';
  const req: UpstreamRequest = { method, path, headers: { host: 'h' }, body };
  const done = new Promise<Outcome>((resolve) => {
    let status = 0;
    const handler: UpstreamHandler = {
      onStart: (a) => (abort = a),
      onHeaders: (s, _h, end) => {
        status = s;
        if (end) resolve({ status });
      },
      onData: () => true,
      onEnd: () => resolve({ status }),
      onError: (error) => resolve({ error }),
      onUpgrade: (_s, _h, socket) => socket.destroy(),
    };
    pool.send(req, handler);
  });
  return { done, abort: (r) => abort(r) };
}

/** A server that holds every request until release() and can reset them instead. */
interface Hanging {
  port: number;
  held: number;
  seen: number;
  release(): void;
  resetAll(): void;
  close(): Promise<void>;
}

async function hangingH1(): Promise<Hanging> {
  const held: http.ServerResponse[] = [];
  const state = { seen: 0 };
  const server = http.createServer((req, res) => {
    state.seen++;
    held.push(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    get held() {
      return held.length;
    },
    get seen() {
      return state.seen;
    },
    release: () => {
      for (const res of held.splice(0)) res.end('ok');
    },
    resetAll: () => {
      for (const res of held.splice(0)) res.socket?.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function hangingH2(): Promise<Hanging> {
  const held: http2.ServerHttp2Stream[] = [];
  const state = { seen: 0 };
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    state.seen++;
    held.push(stream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    get held() {
      return held.length;
    },
    get seen() {
      return state.seen;
    },
    release: () => {
      for (const s of held.splice(0)) {
        s.respond({ ':status': 200 });
        s.end('ok');
      }
    },
    resetAll: () => {
      for (const s of held.splice(0)) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function idle(b: CircuitBreakers): void {
  assert.equal(b.requests.count, 0, 'active requests leaked');
  assert.equal(b.pending.count, 0, 'pending requests leaked');
}

const kinds = [
  {
    name: 'HTTP/1.1 native pool',
    server: hangingH1,
    pool: (port: number, b: CircuitBreakers): UpstreamPool =>
      new NativeHttp1Pool(hostAt(port), testClusterConfig(), b),
  },
  {
    name: 'HTTP/2 pool',
    server: hangingH2,
    pool: (port: number, b: CircuitBreakers): UpstreamPool =>
      new Http2Pool(
        hostAt(port),
        testClusterConfig({
          http2: {
            maxConcurrentStreams: undefined,
            initialStreamWindowSize: undefined,
            initialConnectionWindowSize: undefined,
          },
        }),
        b,
      ),
  },
];

for (const kind of kinds) {
  describe(`${kind.name} with circuit breakers`, { timeout: 20_000 }, () => {
    it('refuses a request over max_requests at once, and frees the slots on every end', async () => {
      const srv = await kind.server();
      cleanups.push(() => srv.close());
      const stats = new StatsStore();
      const b = new CircuitBreakers(thresholds({ maxRequests: 2 }), stats, 'c');
      const pool = kind.pool(srv.port, b);
      cleanups.push(() => pool.destroy());

      // Success path.
      const r1 = send(pool);
      const r2 = send(pool);
      await until(() => srv.held === 2, 'two held requests');
      const r3 = await send(pool).done;
      assert.equal(r3.error?.failure, 'overflow');
      assert.equal(stats.counter('cluster.c.upstream_rq_pending_overflow').value, 1);
      assert.equal(stats.gauge('cluster.c.circuit_breakers.default.rq_open').value, 1);
      assert.equal(srv.seen, 2);
      srv.release();
      assert.equal((await r1.done).status, 200);
      assert.equal((await r2.done).status, 200);
      idle(b);
      assert.equal(stats.gauge('cluster.c.circuit_breakers.default.rq_open').value, 0);

      // Upstream reset.
      const e1 = send(pool);
      const e2 = send(pool);
      await until(() => srv.held === 2, 'two held requests');
      srv.resetAll();
      assert.ok((await e1.done).error);
      assert.ok((await e2.done).error);
      idle(b);

      // Client abort (what a route timeout or a downstream disconnect does).
      const a1 = send(pool);
      const a2 = send(pool);
      await until(() => srv.held === 2, 'two held requests');
      a1.abort(new Error('downstream went away'));
      a2.abort(new Error('route timeout'));
      await Promise.race([a1.done, new Promise((r) => setTimeout(r, 50))]);
      idle(b);
      srv.resetAll();

      // Everything is free again: two more go through.
      const ok1 = send(pool);
      const ok2 = send(pool);
      await until(() => srv.held === 2, 'two held requests');
      srv.release();
      assert.equal((await ok1.done).status, 200);
      assert.equal((await ok2.done).status, 200);
      idle(b);
    });
  });
}

describe(
  'HTTP/1.1 native pool: connections and pending requests across the cluster',
  { timeout: 20_000 },
  () => {
    it('queues up to max_pending_requests behind max_connections, then overflows', async () => {
      const srv = await hangingH1();
      cleanups.push(() => srv.close());
      const stats = new StatsStore();
      const b = new CircuitBreakers(thresholds({ maxConnections: 1, maxPendingRequests: 1 }), stats, 'c');
      const pool = new NativeHttp1Pool(hostAt(srv.port), testClusterConfig(), b);
      cleanups.push(() => pool.destroy());
      const first = send(pool, '/1');
      await until(() => srv.held === 1, 'the first request');
      const second = send(pool, '/2');
      assert.equal(b.pending.count, 1);
      assert.equal(stats.gauge('cluster.c.circuit_breakers.default.rq_pending_open').value, 1);
      const third = await send(pool, '/3').done;
      assert.equal(third.error?.failure, 'overflow');
      assert.equal(stats.counter('cluster.c.upstream_rq_pending_overflow').value, 1);
      srv.release();
      assert.equal((await first.done).status, 200);
      await until(() => srv.held === 1, 'the queued request');
      srv.release();
      assert.equal((await second.done).status, 200);
      assert.equal(srv.seen, 2);
      idle(b);

      // A queued request that is aborted gives its pending slot back.
      const held = send(pool, '/4');
      await until(() => srv.held === 1, 'a held request');
      const queued = send(pool, '/5');
      assert.equal(b.pending.count, 1);
      queued.abort(new Error('client left'));
      assert.equal((await queued.done).error?.failure, 'local');
      assert.equal(b.pending.count, 0);
      srv.release();
      assert.equal((await held.done).status, 200);
      idle(b);
    });

    it('caps connections per cluster, not per endpoint', async () => {
      const a = await hangingH1();
      const c = await hangingH1();
      cleanups.push(
        () => a.close(),
        () => c.close(),
      );
      const stats = new StatsStore();
      const b = new CircuitBreakers(thresholds({ maxConnections: 2 }), stats, 'c');
      const pa = new NativeHttp1Pool(hostAt(a.port), testClusterConfig(), b);
      const pc = new NativeHttp1Pool(hostAt(c.port), testClusterConfig(), b);
      cleanups.push(
        () => pa.destroy(),
        () => pc.destroy(),
      );
      const a1 = send(pa);
      const a2 = send(pa);
      await until(() => a.held === 2, 'two connections to a');
      assert.equal(b.connections.count, 2);
      // The cluster is at its limit, yet an endpoint with no connection still gets one.
      const c1 = send(pc);
      await until(() => c.held === 1, 'one connection to c');
      // A second request to that endpoint waits instead of opening a fourth connection.
      const c2 = send(pc);
      assert.equal(b.pending.count, 1);
      assert.equal(b.connections.count, 3);
      assert.equal(stats.counter('cluster.c.upstream_cx_overflow').value, 1);
      assert.equal(stats.gauge('cluster.c.circuit_breakers.default.cx_open').value, 1);
      // The same counts as the cluster's pool usage, with Envoy's names.
      assert.equal(stats.gauge('cluster.c.upstream_cx_active').value, 3);
      assert.equal(stats.counter('cluster.c.upstream_cx_total').value, 3);
      assert.equal(stats.gauge('cluster.c.upstream_rq_pending_active').value, 1);
      a.release();
      c.release();
      await until(() => c.held === 1, 'the queued request on the reused connection');
      c.release();
      for (const r of [a1, a2, c1, c2]) assert.equal((await r.done).status, 200);
      idle(b);
      assert.equal(stats.gauge('cluster.c.upstream_rq_pending_active').value, 0);
      // Each request waited for its connection (pending) before it went out: 3 connects and one queued.
      assert.equal(stats.counter('cluster.c.upstream_rq_pending_total').value, 4);
      pa.destroy();
      pc.destroy();
      await until(() => b.connections.count === 0, 'connections to close');
      assert.equal(stats.gauge('cluster.c.upstream_cx_active').value, 0);
      assert.equal(stats.counter('cluster.c.upstream_cx_total').value, 3);
    });
  },
);

/** An HTTP/2 server that answers 200 to every stream and counts its sessions. */
async function countingH2Server(): Promise<{ port: number; opened: () => number; closed: () => number }> {
  const server = http2.createServer();
  let opened = 0;
  let closed = 0;
  server.on('session', (s) => {
    opened++;
    s.on('close', () => closed++);
  });
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, opened: () => opened, closed: () => closed };
}

/** An HTTP/2 pool to 127.0.0.1:port with default HTTP/2 options plus `overrides`, destroyed after the tests. */
function h2PoolTo(port: number, b: CircuitBreakers, overrides: Partial<ClusterConfig> = {}): Http2Pool {
  const h2 = {
    maxConcurrentStreams: undefined,
    initialStreamWindowSize: undefined,
    initialConnectionWindowSize: undefined,
  };
  const pool = new Http2Pool(hostAt(port), testClusterConfig({ http2: h2, ...overrides }), b);
  cleanups.push(() => pool.destroy());
  return pool;
}

describe('HTTP/2 pool: max_requests_per_connection', { timeout: 20_000 }, () => {
  it('closes a session once it has served its requests, and opens a new one', async () => {
    const server = await countingH2Server();
    const b = new CircuitBreakers(DEFAULT_THRESHOLDS);
    const pool = h2PoolTo(server.port, b, { maxRequestsPerConnection: 1 });
    assert.equal((await send(pool).done).status, 200);
    await until(() => server.closed() === 1, 'the used-up session to close');
    assert.equal((await send(pool).done).status, 200);
    assert.equal(server.opened(), 2);
    await until(() => b.connections.count === 0 || server.closed() === 2, 'the second session to retire');
    idle(b);
  });
});

describe('HTTP/2 pool: max_connection_duration', { timeout: 20_000 }, () => {
  it('takes no new stream on a session past its duration, closes it when idle, and opens a new one', async () => {
    const server = await countingH2Server();
    const pool = h2PoolTo(server.port, new CircuitBreakers(DEFAULT_THRESHOLDS), {
      maxConnectionDurationMs: 150,
    });
    assert.equal((await send(pool).done).status, 200);
    assert.equal((await send(pool).done).status, 200);
    assert.equal(server.opened(), 1, 'one session while it is young');
    await until(() => server.closed() === 1, 'the expired idle session to close (the idle timeout is 1 h)');
    assert.equal((await send(pool).done).status, 200);
    assert.equal(server.opened(), 2);
  });
});

/** The HTTP/2 client streams node:http2 creates while `run` runs. */
async function streamsCreatedBy(run: () => Promise<void>): Promise<http2.ClientHttp2Stream[]> {
  const streams: http2.ClientHttp2Stream[] = [];
  const onCreated = (message: unknown): void => {
    streams.push((message as { stream: http2.ClientHttp2Stream }).stream);
  };
  diagnostics.subscribe('http2.client.stream.created', onCreated);
  try {
    await run();
  } finally {
    diagnostics.unsubscribe('http2.client.stream.created', onCreated);
  }
  return streams;
}

/** Waits for a closed stream to shed its listeners; only the pool's capture-free error handler may stay. */
async function assertOnlyErrorHandlerLeft(stream: http2.ClientHttp2Stream): Promise<void> {
  await until(
    () => stream.destroyed && stream.eventNames().length === 1,
    `${String(stream.eventNames())} to go`,
  );
  assert.deepEqual(stream.eventNames(), ['error']);
}

describe('HTTP/2 pool: a finished stream', { timeout: 20_000 }, () => {
  // node:http2 keeps a closed stream object reachable until a full GC; anything its listeners reach (the
  // router, the downstream request and response) would survive every young-generation GC with it.
  it('keeps no listener that reaches the request once it has closed, with or without a body', async () => {
    const server = await countingH2Server();
    const pool = h2PoolTo(server.port, new CircuitBreakers(DEFAULT_THRESHOLDS));
    const streams = await streamsCreatedBy(async () => {
      assert.equal((await send(pool).done).status, 200);
      assert.equal((await send(pool, '/upload', Readable.from([Buffer.from('a body')])).done).status, 200);
    });
    assert.equal(streams.length, 2);
    for (const stream of streams) await assertOnlyErrorHandlerLeft(stream);
  });
});

describe('HTTP/2 pool: an upload cut short', { timeout: 20_000 }, () => {
  // An answer before the end of the upload closes the stream without an error (END_STREAM, then
  // RST_STREAM(NO_ERROR), RFC 9113 §8.1) while the body is still piped into it.
  it('leaves no listener on the closed stream, and the body no longer feeding it', async () => {
    const server = http2.createServer();
    server.on('stream', (s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        s.respond({ ':status': 413 });
        s.end('too large', () => s.close(http2.constants.NGHTTP2_NO_ERROR));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const pool = h2PoolTo((server.address() as AddressInfo).port, new CircuitBreakers(DEFAULT_THRESHOLDS));
    // A body that never ends by itself.
    const body = new PassThrough();
    body.write('first chunk');
    const [stream] = await streamsCreatedBy(async () => {
      assert.equal((await send(pool, '/upload', body).done).status, 413);
    });
    await assertOnlyErrorHandlerLeft(stream);
    assert.equal(body.listenerCount('data'), 0, 'the body must no longer feed the closed stream');
    body.destroy();
  });
});

describe('HTTP/2 pool: connection_keepalive', { timeout: 20_000 }, () => {
  it('pings the upstream on an interval, and closes a session whose PING goes unanswered', async () => {
    const server = http2.createServer();
    let pings = 0;
    server.on('session', (s) => s.on('ping', () => pings++));
    server.on('stream', (stream, headers) => {
      // '/hang' never answers: the stream is failed only by the keepalive closing its session.
      if (headers[':path'] === '/hang') return;
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    // A relay the test can stall: while stalled, nothing reaches the server and no PING is answered.
    let stalled = false;
    const relays: net.Socket[] = [];
    const relay = net.createServer((client) => {
      const upstream = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      relays.push(client, upstream);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        from.on('data', (d: Buffer) => {
          if (!stalled) to.write(d);
        });
        from.on('error', () => undefined);
        from.on('close', () => to.destroy());
      }
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const x of relays) x.destroy();
      return new Promise<void>((r) => relay.close(() => r()));
    });
    const b = new CircuitBreakers(DEFAULT_THRESHOLDS);
    const pool = h2PoolTo((relay.address() as AddressInfo).port, b, {
      http2: {
        maxConcurrentStreams: undefined,
        initialStreamWindowSize: undefined,
        initialConnectionWindowSize: undefined,
        keepalive: { intervalMs: 100, timeoutMs: 300 },
      },
    });
    assert.equal((await send(pool).done).status, 200);
    await until(() => pings >= 2, 'PINGs on the interval');
    assert.equal(pool.connectionCount(), 1, 'answered PINGs keep the session');
    const hung = send(pool, '/hang');
    await new Promise((r) => setTimeout(r, 50));
    stalled = true;
    const outcome = await hung.done;
    assert.ok(outcome.error, 'the hung stream fails when its session is closed');
    await until(() => pool.connectionCount() === 0, 'the silent session to close');
    idle(b);
  });
});
