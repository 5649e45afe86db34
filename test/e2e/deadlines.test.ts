import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttp2Upstream, startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';
import { parseGrpcTimeout } from '../../src/proxy/router/deadline.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(
    m: Msg,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: Msg) => void,
  ): void;
};

const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  weft: { test: { Echo: grpc.ServiceClientConstructor } };
};
const Echo = pkg.weft.test.Echo;

const EXPECTED = 'x-envoy-expected-rq-timeout-ms';

function routerWith(config: Record<string, unknown>): Record<string, unknown> {
  return {
    http_filters: [
      {
        name: 'envoy.filters.http.router',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
          ...config,
        },
      },
    ],
  };
}

/**
 * A TCP relay that forwards both ways but, when the client side closes, keeps the server side open: the
 * caller's cancellation does not reach the next hop, so only the deadline it was told about can end it.
 */
async function startSluggishRelay(target: number): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    sockets.add(down).add(up);
    down.on('data', (d: Buffer) => up.write(d));
    up.on('data', (d: Buffer) => {
      if (!down.destroyed) down.write(d);
    });
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An HTTP/1 upstream that never answers, recording the requests it got. */
async function startHangingUpstream(): Promise<Upstream & { seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const up = await startHttpUpstream({
    handler: (req) => {
      seen.push(req.headers);
      req.resume();
    },
  });
  return { port: up.port, close: () => up.close(), seen };
}

function h2call(
  port: number,
  headers: http2.OutgoingHttpHeaders,
): Promise<{ headers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.on('error', reject);
    const s = c.request(headers, { endStream: true });
    let h: http2.IncomingHttpHeaders = {};
    s.on('response', (x) => (h = x));
    s.resume();
    s.on('close', () => {
      c.close();
      resolve({ headers: h });
    });
    s.on('error', reject);
  });
}

describe('deadline propagation through real proxies', { timeout: 60_000 }, () => {
  const proxies: RunningProxy[] = [];
  const ups: Upstream[] = [];
  let h2Seen: http2.IncomingHttpHeaders[];
  let grpcProxy: RunningProxy;

  function stat(p: RunningProxy, name: string): number {
    return p.server.stats.counter(name).value;
  }

  before(async () => {
    h2Seen = [];
    // A gRPC server that never answers.
    const h2 = await startHttp2Upstream((stream, headers) => {
      h2Seen.push(headers);
      stream.on('error', () => undefined);
      stream.resume();
    });
    ups.push(h2);
    grpcProxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/' },
                route: { cluster: 'grpc', timeout: '30s', max_grpc_timeout: '0s' },
              },
            ],
          }),
        ],
        [staticCluster('grpc', [{ port: h2.port }], HTTP2_PROTOCOL_OPTIONS)],
      ),
    );
    proxies.push(grpcProxy);
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    for (const u of ups) await u.close();
  });

  it('a gRPC client deadline ends the call long before the route timeout, and is passed on shortened', async () => {
    const client = new Echo(
      `127.0.0.1:${grpcProxy.port()}`,
      grpc.credentials.createInsecure(),
    ) as unknown as EchoClient;
    const before = h2Seen.length;
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.Unary({ text: 'x', n: 1 }, new grpc.Metadata(), { deadline: Date.now() + 300 }, (e) =>
          resolve(e),
        ),
      );
      assert.ok(err !== null, 'the call failed');
      // Whichever gives up first, the client's own deadline or the proxy's local reply, it is DEADLINE_EXCEEDED.
      assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
      const seen = await waitFor(() => h2Seen[before], 5000, 'the upstream request');
      const sent = parseGrpcTimeout(seen['grpc-timeout']);
      assert.ok(sent !== undefined && sent <= 300, `grpc-timeout ${String(seen['grpc-timeout'])}`);
      assert.match(String(seen['grpc-timeout']), /^\d+m$/);
      assert.equal(String(Number(seen[EXPECTED])), seen[EXPECTED]);
      assert.ok(Number(seen[EXPECTED]) <= 300);
      // The proxy's side ends too (its own timeout or the client's cancellation), never holding the request.
      await waitFor(
        () => grpcProxy.server.stats.gauge('cluster.grpc.upstream_rq_active').value === 0,
        5000,
        'the proxy to drop the upstream request',
      );
    } finally {
      client.close();
    }
  });

  it('the proxy answers a gRPC request whose deadline passed with its own trailers-only 504 UT (DEADLINE_EXCEEDED)', async () => {
    const timeouts = stat(grpcProxy, 'cluster.grpc.upstream_rq_timeout');
    const before = h2Seen.length;
    const { headers } = await h2call(grpcProxy.port(), {
      ':method': 'POST',
      ':path': '/weft.test.Echo/Unary',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '200m',
    });
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], '4');
    assert.equal(stat(grpcProxy, 'cluster.grpc.upstream_rq_timeout'), timeouts + 1);
    const sent = parseGrpcTimeout(h2Seen[before]['grpc-timeout']);
    assert.ok(sent !== undefined && sent <= 200, String(h2Seen[before]['grpc-timeout']));
  });

  it('a malformed grpc-timeout is ignored: the route timeout applies', async () => {
    const p = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              { match: { prefix: '/' }, route: { cluster: 'grpc', timeout: '0.3s', max_grpc_timeout: '0s' } },
            ],
          }),
        ],
        [staticCluster('grpc', [{ port: ups[0].port }], HTTP2_PROTOCOL_OPTIONS)],
      ),
    );
    proxies.push(p);
    const before = h2Seen.length;
    const { headers } = await h2call(p.port(), {
      ':method': 'POST',
      ':path': '/weft.test.Echo/Unary',
      'content-type': 'application/grpc',
      'grpc-timeout': 'soon',
    });
    assert.equal(headers['grpc-status'], '4');
    assert.equal(stat(p, 'cluster.grpc.upstream_rq_timeout'), 1);
    assert.ok(parseGrpcTimeout(h2Seen[before]['grpc-timeout'])! <= 300);
  });

  it('a chained proxy honours the caller proxy budget and times the hanging upstream out itself', async () => {
    const hang = await startHangingUpstream();
    ups.push(hang);
    const second = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [{ match: { prefix: '/' }, route: { cluster: 'hang', timeout: '0s' } }],
            hcm: routerWith({ respect_expected_rq_timeout: true }),
          }),
        ],
        [staticCluster('hang', [{ port: hang.port }])],
      ),
    );
    proxies.push(second);
    const relay = await startSluggishRelay(second.port());
    ups.push(relay);
    const first = await startProxy(
      bootstrapDoc(
        [httpListener({ routes: [{ match: { prefix: '/' }, route: { cluster: 'next', timeout: '0.5s' } }] })],
        [staticCluster('next', [{ port: relay.port }])],
      ),
    );
    proxies.push(first);
    const reply = await request(first.port(), { path: '/chain' });
    assert.equal(reply.status, 504);
    const seen = await waitFor(() => hang.seen[0], 5000, 'the upstream request');
    const budget = Number(seen[EXPECTED]);
    assert.ok(Number.isInteger(budget) && budget >= 1 && budget <= 500, String(seen[EXPECTED]));
    // The relay never tells the second proxy that the first gave up: only the budget can end the request.
    await waitFor(
      () => stat(second, 'cluster.hang.upstream_rq_timeout') === 1,
      10_000,
      "the second proxy's UT",
    );
  });

  it('retries with a per-try timeout stop at the route deadline', async () => {
    const hang = await startHangingUpstream();
    ups.push(hang);
    const p = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/' },
                route: {
                  cluster: 'hang',
                  timeout: '0.5s',
                  retry_policy: { retry_on: '5xx', num_retries: 9, per_try_timeout: '0.2s' },
                },
              },
            ],
          }),
        ],
        [staticCluster('hang', [{ port: hang.port }])],
      ),
    );
    proxies.push(p);
    const reply = await request(p.port(), { path: '/retry' });
    assert.equal(reply.status, 504);
    // A try sent just before the deadline may still be on its way to the upstream.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(hang.seen.length >= 1 && hang.seen.length <= 3, `${hang.seen.length} attempts`);
    assert.equal(hang.seen[0][EXPECTED], '200');
    for (const h of hang.seen) assert.ok(Number(h[EXPECTED]) <= 200, String(h[EXPECTED]));
    assert.equal(stat(p, 'cluster.hang.upstream_rq_timeout'), 1);
  });

  it('adds nothing with suppress_envoy_headers, nor without a deadline', async () => {
    const echo = await startHttpUpstream();
    ups.push(echo);
    const make = (timeout: string, router: Record<string, unknown>) =>
      startProxy(
        bootstrapDoc(
          [
            httpListener({
              routes: [{ match: { prefix: '/' }, route: { cluster: 'echo', timeout } }],
              hcm: routerWith(router),
            }),
          ],
          [staticCluster('echo', [{ port: echo.port }])],
        ),
      );
    const suppressed = await make('5s', { suppress_envoy_headers: true });
    const plain = await make('5s', {});
    const noDeadline = await make('0s', {});
    proxies.push(suppressed, plain, noDeadline);
    await request(suppressed.port(), { path: '/s' });
    await request(plain.port(), { path: '/p' });
    await request(noDeadline.port(), { path: '/n' });
    const byUrl = (u: string) => echo.seen.find((s) => s.url === u)!.headers;
    assert.equal(byUrl('/s')[EXPECTED], undefined);
    const plainBudget = Number(byUrl('/p')[EXPECTED]);
    assert.ok(plainBudget >= 1 && plainBudget <= 5000, String(byUrl('/p')[EXPECTED]));
    assert.equal(byUrl('/n')[EXPECTED], undefined);
  });
});
