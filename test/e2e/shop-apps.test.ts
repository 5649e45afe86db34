/**
 * The shop demo (examples/shop) without the mesh: each app started on its own with PORT=0, its callees
 * replaced by stub servers, to prove it answers, passes the right headers on, honours the proxy
 * environment `weft up` gives it, and exits 0 on SIGTERM. Also: the demo's Istio YAML passes `weft analyze`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ChannelCredentials, Client, Metadata, ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parse } from 'yaml';
import { REPO } from '../support/proxy.ts';

const SHOP = path.join(REPO, 'examples/shop');

// ---------------------------------------------------------------------------------------------
// Running an app

interface App {
  readonly port: number;
  readonly lines: string[];
  readonly child: ChildProcess;
}

/** The environment an app gets: PATH and what the test gives it; never the machine's proxy settings. */
function appEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', ...extra };
}

/** Starts an app (cwd examples/shop) and waits for its "listening" line, which names the port it got. */
function startApp(argv: string[], env: Record<string, string> = {}): Promise<App> {
  const child = spawn(argv[0], argv.slice(1), {
    cwd: SHOP,
    env: appEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise<App>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no "listening" line in 10 s; stderr: ${stderr}`));
    }, 10_000);
    child.stdout.on('data', (c: Buffer) => {
      const parts = (partial + c.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        const m = / event=listening address=127\.0\.0\.1:(\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve({ port: Number(m[1]), lines, child });
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited (${code}) before listening; stderr: ${stderr}`));
    });
  });
}

/** SIGTERM, then the exit code (null if it was killed instead), within 5 s. */
async function stopApp(app: App): Promise<number | null> {
  if (app.child.exitCode !== null) return app.child.exitCode;
  const exited = new Promise<number | null>((resolve) => app.child.once('exit', (code) => resolve(code)));
  app.child.kill('SIGTERM');
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 5_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

// ---------------------------------------------------------------------------------------------
// HTTP and gRPC clients and stubs

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => Record<string, unknown>;
}

function get(
  port: number,
  urlPath: string,
  headers: Record<string, string> = {},
  agent?: http.Agent,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, headers, agent, timeout: 5_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: timed out`)));
    req.on('error', reject);
  });
}

interface Stub {
  readonly port: number;
  readonly seen: { url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** An HTTP server that records each request and answers `answer(url)`: [status, JSON body]. */
async function startStub(answer: (url: string) => [number, unknown]): Promise<Stub> {
  const seen: Stub['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const [status, body] = answer(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const definition = protoLoader.loadSync(['ratings.proto', 'health.proto'], {
  includeDirs: [path.join(SHOP, 'proto')],
  longs: Number,
  enums: String,
  defaults: true,
});
interface ServiceCtor {
  new (address: string, creds: ChannelCredentials): Client & Record<string, (...args: unknown[]) => unknown>;
  service: ServiceDefinition;
}
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  shop: { ratings: { v1: { Ratings: ServiceCtor } } };
  grpc: { health: { v1: { Health: ServiceCtor } } };
};
const { Ratings } = loaded.shop.ratings.v1;
const { Health } = loaded.grpc.health.v1;

function unary<T>(
  client: Record<string, (...args: unknown[]) => unknown>,
  method: string,
  request: object,
): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 5_000 }, (err: Error | null, reply: T) =>
      err ? reject(err) : resolve(reply),
    ),
  );
}

/** A stand-in ratings service that records the metadata of each call and answers after `delayMs`. */
async function startRatingsStub(delayMs = 0): Promise<{
  port: number;
  metadata: Record<string, string>[];
  authorities: string[];
  close(): Promise<void>;
}> {
  const metadata: Record<string, string>[] = [];
  const authorities: string[] = [];
  const server = new grpc.Server();
  server.addService(Ratings.service, {
    getRating: (
      call: { request: { productId: number }; metadata: Metadata; getHost(): string },
      callback: (err: null, reply: object) => void,
    ) => {
      authorities.push(call.getHost());
      metadata.push(
        Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)])),
      );
      setTimeout(() => callback(null, { productId: call.request.productId, stars: 3.4, votes: 12 }), delayMs);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    metadata,
    authorities,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}

/**
 * A forward proxy like the sidecar's outbound listener in explicit mode: records absolute-form request
 * targets and CONNECT authorities, and sends everything to `target` (whatever the name asked for).
 */
async function startForwardProxy(target: () => number): Promise<{
  port: number;
  requests: string[];
  tunnels: string[];
  close(): Promise<void>;
}> {
  const requests: string[] = [];
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://invalid');
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: target(),
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    const upstream = net.connect(target(), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    tunnels,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function proxyEnv(port: number): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  return {
    HTTP_PROXY: url,
    http_proxy: url,
    HTTPS_PROXY: url,
    https_proxy: url,
    grpc_proxy: url,
    NO_PROXY: 'localhost,127.0.0.1',
    no_proxy: 'localhost,127.0.0.1',
    NODE_USE_ENV_PROXY: '1',
  };
}

const requestLines = (app: App): string[] => app.lines.filter((l) => / (method=GET|rpc=)/.test(l));

/** The request log lines once there are `n` (an app logs after answering, so a line may trail its response). */
async function loggedRequests(app: App, n: number): Promise<string[]> {
  const deadline = Date.now() + 3_000;
  while (requestLines(app).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return requestLines(app);
}

// ---------------------------------------------------------------------------------------------

describe('shop: catalog (Python)', { timeout: 30_000 }, () => {
  it('lists products, answers one, 404s the rest, logs each request and stops on SIGTERM', async () => {
    const app = await startApp(['python3', 'catalog/catalog.py'], { WEFT_INSTANCE: 'catalog-0' });
    // A keep-alive connection stays open across the SIGTERM: it must not hold the process up.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await get(app.port, '/healthz', {}, agent)).text, 'ok\n');
      const list = await get(app.port, '/products', {}, agent);
      assert.equal(list.status, 200);
      assert.equal((list.json().products as unknown[]).length, 4);
      const one = await get(app.port, '/products/2', { 'end-user': 'alice' }, agent);
      assert.equal(one.status, 200);
      assert.equal(one.json().name, 'Walnut desk tray');
      assert.equal(one.json().servedBy, 'catalog-0');
      assert.equal((await get(app.port, '/products/99', {}, agent)).status, 404);
      assert.equal((await get(app.port, '/nothing', {}, agent)).status, 404);
      const lines = await loggedRequests(app, 4);
      assert.equal(lines.length, 4, lines.join('\n'));
      assert.match(lines[1], /catalog-0 method=GET path=\/products\/2 status=200 ms=[\d.]+ end-user=alice/);
    } finally {
      assert.equal(await stopApp(app), 0);
      agent.destroy();
    }
  });

  it('with FLAKY_EVERY=3 fails exactly every third product request with 503', async () => {
    const app = await startApp(['python3', 'catalog/catalog.py'], { FLAKY_EVERY: '3' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 9; i++) statuses.push((await get(app.port, '/products/1')).status);
      assert.deepEqual(statuses, [200, 200, 503, 200, 200, 503, 200, 200, 503]);
      // Health checks are not counted: they must not make a replica look flaky, nor hide it.
      assert.equal((await get(app.port, '/healthz')).status, 200);
      assert.equal((await get(app.port, '/products')).status, 200);
    } finally {
      assert.equal(await stopApp(app), 0);
    }
  });
});

describe('shop: ratings (Node, gRPC)', { timeout: 30_000 }, () => {
  it('returns a product rating, NOT_FOUND for an unknown product, is healthy, and stops on SIGTERM', async () => {
    const app = await startApp([process.execPath, 'ratings/ratings.mjs']);
    const address = `127.0.0.1:${app.port}`;
    const ratings = new Ratings(address, grpc.credentials.createInsecure());
    const health = new Health(address, grpc.credentials.createInsecure());
    try {
      assert.deepEqual(await unary(ratings, 'getRating', { productId: 1 }), {
        productId: 1,
        stars: 4.2,
        votes: 118,
      });
      await assert.rejects(unary(ratings, 'getRating', { productId: 99 }), (err: { code: number }) => {
        assert.equal(err.code, grpc.status.NOT_FOUND);
        return true;
      });
      assert.deepEqual(await unary(health, 'check', { service: '' }), { status: 'SERVING' });
      const lines = await loggedRequests(app, 2);
      assert.equal(lines.length, 2);
      assert.match(lines[0], /rpc=GetRating product=1 status=OK/);
    } finally {
      ratings.close();
      health.close();
      assert.equal(await stopApp(app), 0);
    }
  });
});

describe('shop: reviews (Node) v1/v2/v3', { timeout: 60_000 }, () => {
  it('v1 has no ratings and never calls the ratings service', async () => {
    const stub = await startRatingsStub();
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v1',
      RATINGS_ADDRESS: `127.0.0.1:${stub.port}`,
    });
    try {
      const r = await get(app.port, '/reviews/1');
      assert.equal(r.status, 200);
      const body = r.json();
      assert.equal(body.version, 'v1');
      assert.equal((body.reviews as unknown[]).length, 2);
      assert.equal(body.rating, undefined);
      assert.equal(stub.metadata.length, 0);
      assert.equal((await get(app.port, '/reviews/99')).status, 404);
      assert.equal((await get(app.port, '/healthz')).text, 'ok\n');
    } finally {
      assert.equal(await stopApp(app), 0);
      await stub.close();
    }
  });

  it('v2 asks ratings, passing on the trace and routing headers it received and no others', async () => {
    const stub = await startRatingsStub();
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v2',
      RATINGS_ADDRESS: `127.0.0.1:${stub.port}`,
    });
    try {
      const sent = {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'x-request-id': 'req-42',
        'x-b3-traceid': '0af7651916cd43dd8448eb211c80319c',
        'end-user': 'jason',
        'x-fault': 'ratings-delay',
        cookie: 'session=secret',
      };
      const body = (await get(app.port, '/reviews/1', sent)).json();
      assert.equal(body.version, 'v2');
      assert.deepEqual(body.rating, { stars: 3.4, votes: 12 });
      assert.equal(stub.metadata.length, 1);
      const md = stub.metadata[0];
      for (const k of ['traceparent', 'x-request-id', 'x-b3-traceid', 'end-user', 'x-fault'] as const)
        assert.equal(md[k], sent[k], k);
      assert.equal(md.cookie, undefined);
    } finally {
      assert.equal(await stopApp(app), 0);
      await stub.close();
    }
  });

  it('v3 draws the stars, using the real ratings app', async () => {
    const ratings = await startApp([process.execPath, 'ratings/ratings.mjs']);
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v3',
      RATINGS_ADDRESS: `127.0.0.1:${ratings.port}`,
    });
    try {
      const body = (await get(app.port, '/reviews/3')).json();
      assert.equal(body.version, 'v3');
      assert.deepEqual(body.rating, { stars: 4.8, votes: 7, display: '★★★★★' });
    } finally {
      assert.equal(await stopApp(app), 0);
      assert.equal(await stopApp(ratings), 0);
    }
  });

  it('a ratings call slower than the deadline costs the page its stars, not its reviews', async () => {
    const stub = await startRatingsStub(1_000);
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v2',
      RATINGS_ADDRESS: `127.0.0.1:${stub.port}`,
      RATINGS_DEADLINE_MS: '200',
    });
    try {
      const started = performance.now();
      const r = await get(app.port, '/reviews/1');
      const ms = performance.now() - started;
      assert.equal(r.status, 200);
      const body = r.json();
      assert.equal(body.rating, undefined);
      assert.match(String(body.ratingError), /^DEADLINE_EXCEEDED/);
      assert.equal((body.reviews as unknown[]).length, 2);
      assert.ok(ms >= 180 && ms < 900, `answered in ${ms.toFixed(0)} ms`);
    } finally {
      assert.equal(await stopApp(app), 0);
      await stub.close();
    }
  });

  it('with grpc_proxy set (as under weft up), sends its calls to the proxy as h2c for :authority ratings:50051', async () => {
    // The stub stands in for the sidecar's outbound listener: it is what grpc_proxy names.
    const stub = await startRatingsStub();
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v2',
      ...proxyEnv(stub.port),
    });
    try {
      const body = (await get(app.port, '/reviews/2', { 'end-user': 'ann' })).json();
      assert.deepEqual(body.rating, { stars: 3.4, votes: 12 });
      assert.deepEqual(stub.authorities, ['ratings:50051']);
      assert.equal(stub.metadata[0]['end-user'], 'ann');
    } finally {
      assert.equal(await stopApp(app), 0);
      await stub.close();
    }
  });

  it('with RATINGS_USE_CONNECT=1, calls ratings:50051 through a CONNECT tunnel instead', async () => {
    const stub = await startRatingsStub();
    const proxy = await startForwardProxy(() => stub.port);
    const app = await startApp([process.execPath, 'reviews/reviews.mjs'], {
      REVIEWS_VERSION: 'v2',
      RATINGS_USE_CONNECT: '1',
      ...proxyEnv(proxy.port),
    });
    try {
      const body = (await get(app.port, '/reviews/2')).json();
      assert.deepEqual(body.rating, { stars: 3.4, votes: 12 });
      assert.deepEqual(proxy.tunnels, ['ratings:50051']);
    } finally {
      assert.equal(await stopApp(app), 0);
      await proxy.close();
      await stub.close();
    }
  });
});

describe('shop: frontend (Node)', { timeout: 60_000 }, () => {
  let catalog: Stub;
  let reviews: Stub;
  let catalogDown = false;
  before(async () => {
    catalog = await startStub((url) => {
      if (catalogDown) return [503, { error: 'down' }];
      if (url === '/products') return [200, { products: [{ id: 1 }, { id: 2 }] }];
      if (url === '/products/1') return [200, { id: 1, name: 'Thermal mug' }];
      return [404, { error: 'no such product' }];
    });
    reviews = await startStub((url) =>
      url === '/reviews/1' ? [200, { version: 'v2', reviews: [] }] : [403, { error: 'RBAC: access denied' }],
    );
  });
  after(async () => {
    await catalog.close();
    await reviews.close();
  });

  const env = (): Record<string, string> => ({
    CATALOG_URL: `http://127.0.0.1:${catalog.port}`,
    REVIEWS_URL: `http://127.0.0.1:${reviews.port}`,
  });

  it('builds a product page from catalog and reviews, passing on trace and routing headers only', async () => {
    catalogDown = false;
    const app = await startApp([process.execPath, 'frontend/frontend.mjs'], env());
    try {
      const sent = {
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=1',
        'x-request-id': 'abc-123',
        'x-b3-traceid': '4bf92f3577b34da6a3ce929d0e0e4736',
        'x-b3-spanid': '00f067aa0ba902b7',
        'x-b3-sampled': '1',
        'end-user': 'jason',
        'x-canary': 'v3',
        authorization: 'Bearer not-for-upstreams',
      };
      const r = await get(app.port, '/', sent);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      const page = r.json();
      assert.deepEqual(page.product, { id: 1, name: 'Thermal mug' });
      assert.deepEqual(page.reviews, { version: 'v2', reviews: [] });
      assert.equal(page.frontend, 'frontend');
      for (const stub of [catalog, reviews]) {
        const seen = stub.seen.at(-1);
        assert.ok(seen);
        for (const [k, v] of Object.entries(sent))
          if (k === 'authorization') assert.equal(seen.headers[k], undefined);
          else assert.equal(seen.headers[k], v, k);
      }
      assert.equal(catalog.seen.at(-1)?.url, '/products/1');
      assert.equal(reviews.seen.at(-1)?.url, '/reviews/1');
      assert.equal((await get(app.port, '/healthz')).text, 'ok\n');
      assert.ok(Array.isArray((await get(app.port, '/products')).json().products));
      assert.equal((await get(app.port, '/products/7')).status, 404);
      assert.match(
        (await loggedRequests(app, 1))[0],
        /frontend method=GET path=\/ status=200 ms=[\d.]+ end-user=jason x-request-id=abc-123/,
      );
    } finally {
      assert.equal(await stopApp(app), 0);
    }
  });

  it('answers 404 for a product the catalog lacks, and 503 when the catalog fails', async () => {
    catalogDown = false;
    const app = await startApp([process.execPath, 'frontend/frontend.mjs'], env());
    try {
      assert.equal((await get(app.port, '/products/2')).status, 404);
      assert.equal((await get(app.port, '/')).status, 200);
      catalogDown = true;
      const down = await get(app.port, '/');
      assert.equal(down.status, 503);
      assert.match(String(down.json().catalog), /^503: down$/);
    } finally {
      catalogDown = false;
      assert.equal(await stopApp(app), 0);
    }
  });

  it('shows the reviews failure on the page', async () => {
    const reviewsDenied = await startStub(() => [403, { error: 'RBAC: access denied' }]);
    const app = await startApp([process.execPath, 'frontend/frontend.mjs'], {
      ...env(),
      REVIEWS_URL: `http://127.0.0.1:${reviewsDenied.port}`,
    });
    try {
      const r = await get(app.port, '/');
      assert.equal(r.status, 200);
      const page = r.json();
      assert.equal(page.reviews, undefined);
      assert.equal(page.reviewsError, '403: RBAC: access denied');
    } finally {
      assert.equal(await stopApp(app), 0);
      await reviewsDenied.close();
    }
  });

  it('with HTTP_PROXY set (as under weft up), sends absolute-form requests for catalog:9080 and reviews:9080', async () => {
    let n = 0;
    const upstream = await startStub((url) => {
      n++;
      return url.startsWith('/products/') ? [200, { id: 1 }] : [200, { version: 'v1', reviews: [] }];
    });
    const proxy = await startForwardProxy(() => upstream.port);
    const app = await startApp([process.execPath, 'frontend/frontend.mjs'], proxyEnv(proxy.port));
    try {
      const page = (await get(app.port, '/')).json();
      assert.deepEqual(page.product, { id: 1 });
      assert.deepEqual(page.reviews, { version: 'v1', reviews: [] });
      assert.equal(n, 2);
      assert.deepEqual(proxy.tunnels, []);
      assert.deepEqual([...proxy.requests].sort(), [
        'GET http://catalog:9080/products/1',
        'GET http://reviews:9080/reviews/1',
      ]);
    } finally {
      assert.equal(await stopApp(app), 0);
      await proxy.close();
      await upstream.close();
    }
  });
});

describe('shop: traffic.mjs', { timeout: 30_000 }, () => {
  it('sends the requested rate for the requested time and sums up the status codes', async () => {
    const target = await startStub(() => [200, { reviews: { version: 'v3' } }]);
    try {
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [
            path.join(SHOP, 'traffic.mjs'),
            '--url',
            `http://127.0.0.1:${target.port}/`,
            '--rps',
            '20',
            '--duration',
            '1.5',
            '--users',
            'ann,bob',
          ],
          { env: appEnv({}), timeout: 15_000 },
          (_err, stdout) => resolve({ code: child.exitCode, stdout }),
        );
      });
      assert.equal(out.code, 0, out.stdout);
      assert.equal(target.seen.length, 30);
      assert.deepEqual(target.seen.map((s) => s.headers['end-user']).slice(0, 4), [
        'ann',
        'bob',
        'ann',
        'bob',
      ]);
      assert.match(out.stdout, /^ {3}1s +\d+ done {2}200×\d+/m);
      assert.match(
        out.stdout,
        /^total: 30 sent, +30 done {2}200×30 {2}p50 \d+ms p99 \d+ms {2}reviews v3×30$/m,
      );
    } finally {
      await target.close();
    }
  });
});

describe('shop: configuration', { timeout: 30_000 }, () => {
  /**
   * The ServiceEntries `weft up` generates from weft.yaml, so that analyze can check that the
   * VirtualServices and DestinationRules name services and ports that exist.
   */
  function serviceEntries(): string {
    interface Workload {
      name: string;
      service?: string;
      namespace?: string;
      labels?: Record<string, string>;
      ports: { port: number; name: string; protocol: string }[];
    }
    const doc = parse(readFileSync(path.join(SHOP, 'weft.yaml'), 'utf8')) as { workloads: Workload[] };
    const services = new Map<string, Workload>();
    for (const w of doc.workloads) services.set(w.service ?? w.labels?.app ?? w.name, w);
    return [...services]
      .map(([service, w]) =>
        JSON.stringify({
          apiVersion: 'networking.istio.io/v1',
          kind: 'ServiceEntry',
          metadata: { name: service, namespace: w.namespace ?? 'default' },
          spec: {
            hosts: [`${service}.${w.namespace ?? 'default'}.svc.cluster.local`],
            location: 'MESH_INTERNAL',
            resolution: 'STATIC',
            ports: w.ports.map((p) => ({ number: p.port, name: p.name, protocol: p.protocol })),
            workloadSelector: { labels: { app: service } },
          },
        }),
      )
      .join('\n---\n');
  }

  it('the directory passes `weft analyze` with no diagnostic (weft.yaml is not Istio config)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-shop-'));
    try {
      const context = path.join(dir, 'services.yaml');
      writeFileSync(context, serviceEntries());
      const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(
          process.execPath,
          [path.join(REPO, 'src/cli/main.ts'), 'analyze', SHOP, '--context', context],
          { timeout: 20_000 },
          (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }),
        ),
      );
      assert.equal(out.code, 0, out.stdout);
      assert.match(out.stdout, /^11 resources analyzed: 0 errors, 0 warnings, 0 infos$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
