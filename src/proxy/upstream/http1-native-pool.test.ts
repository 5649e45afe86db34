import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { UpstreamError, UpstreamHandler, UpstreamRequest } from './codec.ts';
import { DEFAULT_THRESHOLDS } from './circuit-breakers.ts';
import { createHost } from './host.ts';
import { NativeHttp1Pool } from './http1-native-pool.ts';
import { testClusterConfig } from './testing.ts';
import type { ClusterConfig, Host } from './types.ts';

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

const pools: NativeHttp1Pool[] = [];
const servers: net.Server[] = [];
after(() => {
  for (const p of pools) p.destroy();
  for (const s of servers) s.close();
});

function pool(port: number, overrides: Partial<ClusterConfig> = {}): NativeHttp1Pool {
  const p = new NativeHttp1Pool(hostAt(port), testClusterConfig({ connectTimeoutMs: 2000, ...overrides }));
  pools.push(p);
  return p;
}

/** A node:http server on 127.0.0.1:0 that counts the connections it accepted. */
async function httpServer(
  onRequest: http.RequestListener,
  opts: http.ServerOptions = {},
): Promise<{ server: http.Server; port: number; connections: () => number; open: () => number }> {
  const server = http.createServer(opts, onRequest);
  let count = 0;
  let open = 0;
  server.on('connection', (s: Socket) => {
    count++;
    open++;
    s.on('close', () => open--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, connections: () => count, open: () => open };
}

/** A raw TCP server: each connection gets `onSocket`, called with the first request bytes. */
async function rawServer(
  onRequest: (socket: Socket, head: string) => void,
): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        onRequest(socket, head);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

interface Outcome {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | null;
  error: UpstreamError | null;
  upgrade: { status: number; headers: IncomingHttpHeaders; socket: Duplex } | null;
}

interface Hooks {
  /** Returned by onData; defaults to true. */
  onData?: (chunk: Buffer, resume: () => void) => boolean;
  onHeaders?: (status: number, abort: (e: Error) => void) => void;
}

/** Sends one request and resolves with everything the handler saw. */
function exchange(p: NativeHttp1Pool, req: Partial<UpstreamRequest>, hooks: Hooks = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = {
      status: 0,
      headers: {},
      body: Buffer.alloc(0),
      trailers: null,
      error: null,
      upgrade: null,
    };
    const chunks: Buffer[] = [];
    let abort: (e: Error) => void = () => undefined;
    let resume: () => void = () => undefined;
    let settled = false;
    const settle = (): void => {
      assert.equal(settled, false, 'the handler got a second final callback');
      settled = true;
      out.body = Buffer.concat(chunks);
      resolve(out);
    };
    const handler: UpstreamHandler = {
      onStart(a, _pause, r) {
        abort = a;
        resume = r;
      },
      onHeaders(status, headers) {
        out.status = status;
        out.headers = headers;
        hooks.onHeaders?.(status, abort);
      },
      onData(chunk) {
        assert.equal(settled, false, 'data after the end');
        chunks.push(chunk);
        return hooks.onData ? hooks.onData(chunk, resume) : true;
      },
      onEnd(trailers) {
        out.trailers = trailers;
        settle();
      },
      onError(err) {
        out.error = err;
        settle();
      },
      onUpgrade(status, headers, socket) {
        out.upgrade = { status, headers, socket };
        settle();
      },
    };
    p.send({ method: 'GET', path: '/', headers: { host: 'test.local' }, body: null, ...req }, handler);
  });
}

for (const direct of [true, false]) {
  describe(
    `NativeHttp1Pool (${direct ? 'parser reads the socket handle' : "'data' events"})`,
    { timeout: 30_000 },
    () => {
      before(() => {
        NativeHttp1Pool.readHandlesDirectly = direct;
      });
      after(() => {
        NativeHttp1Pool.readHandlesDirectly = true;
      });

      it('reuses one keep-alive connection for sequential requests', async () => {
        const s = await httpServer((req, res) => res.end(`hello ${req.url}`));
        const p = pool(s.port);
        for (let i = 0; i < 5; i++) {
          const r = await exchange(p, { path: `/n${i}` });
          assert.equal(r.error, null);
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), `hello /n${i}`);
        }
        assert.equal(s.connections(), 1);
        assert.equal(p.connectionCount(), 1);
      });

      it('queues beyond max connections per host and serves the queue in order', async () => {
        let active = 0;
        let peak = 0;
        const order: string[] = [];
        const s = await httpServer((req, res) => {
          active++;
          peak = Math.max(peak, active);
          order.push(req.url!);
          setTimeout(() => {
            active--;
            res.end('ok');
          }, 30);
        });
        const p = pool(s.port, { circuitBreakers: { ...DEFAULT_THRESHOLDS, maxConnections: 2 } });
        const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => exchange(p, { path: `/${i}` })));
        for (const r of results) assert.equal(r.status, 200);
        assert.equal(peak, 2);
        assert.equal(s.connections(), 2);
        assert.deepEqual(order, ['/0', '/1', '/2', '/3', '/4', '/5']);
      });

      it('counts a request as pending while its new connection is being established', async () => {
        const s = await httpServer((_req, res) => res.end('ok'));
        const p = pool(s.port, { circuitBreakers: { ...DEFAULT_THRESHOLDS, maxPendingRequests: 1 } });
        const first = exchange(p, { path: '/a' });
        // Connecting takes at least a turn of the event loop: the request is pending, not yet active.
        assert.equal(p.breakers.pending.count, 1);
        assert.equal(p.breakers.requests.count, 0);
        // A second request would need a second connection: it is pending too, over the limit of 1.
        const second = await exchange(p, { path: '/b' });
        assert.equal(second.error?.message, 'circuit breaker overflow');
        assert.equal((await first).status, 200);
        assert.equal(p.breakers.pending.count, 0);
        // Once connected, the idle connection takes the next request at once (active, never pending).
        const third = exchange(p, { path: '/c' });
        assert.equal(p.breakers.pending.count, 0);
        assert.equal(p.breakers.requests.count, 1);
        assert.equal((await third).status, 200);
      });

      it('closes a connection after max requests per connection', async () => {
        const s = await httpServer((_req, res) => res.end('ok'));
        const p = pool(s.port, { maxRequestsPerConnection: 2 });
        for (let i = 0; i < 5; i++) assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 3);
      });

      it('sends a content-length request body as is', async () => {
        let seen: { headers: IncomingHttpHeaders; body: string } | null = null;
        const s = await httpServer((req, res) => {
          const parts: Buffer[] = [];
          req.on('data', (d: Buffer) => parts.push(d));
          req.on('end', () => {
            seen = { headers: req.headers, body: Buffer.concat(parts).toString() };
            res.end('done');
          });
        });
        const p = pool(s.port);
        const r = await exchange(p, {
          method: 'POST',
          headers: { host: 'h', 'content-length': '11' },
          body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
        });
        assert.equal(r.status, 200);
        assert.deepEqual(seen!.body, 'hello world');
        assert.equal(seen!.headers['content-length'], '11');
        assert.equal(seen!.headers['transfer-encoding'], undefined);
        assert.equal(seen!.headers.host, 'h');
        // The connection is reusable after a body.
        assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 1);
      });

      it('frames a body of unknown length as chunked', async () => {
        let seen: { headers: IncomingHttpHeaders; body: string } | null = null;
        const s = await httpServer((req, res) => {
          const parts: Buffer[] = [];
          req.on('data', (d: Buffer) => parts.push(d));
          req.on('end', () => {
            seen = { headers: req.headers, body: Buffer.concat(parts).toString() };
            res.end('done');
          });
        });
        const p = pool(s.port);
        const r = await exchange(p, {
          method: 'PUT',
          headers: { host: 'h' },
          body: Readable.from([Buffer.from('a'), Buffer.from(''), Buffer.from('bcdef')]),
        });
        assert.equal(r.status, 200);
        assert.equal(seen!.headers['transfer-encoding'], 'chunked');
        assert.equal(seen!.body, 'abcdef');
        assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 1);
      });

      it('adds content-length: 0 to a bodiless POST and a host header when none is given', async () => {
        let seen: IncomingHttpHeaders | null = null;
        const s = await httpServer((req, res) => {
          seen = req.headers;
          res.end();
        });
        const p = pool(s.port);
        await exchange(p, { method: 'POST', headers: {} });
        assert.equal(seen!['content-length'], '0');
        assert.equal(seen!.host, `127.0.0.1:${s.port}`);
      });

      it('reads content-length and chunked response bodies, with trailers', async () => {
        const s = await httpServer((req, res) => {
          if (req.url === '/cl') {
            res.setHeader('content-length', '5');
            res.end('12345');
            return;
          }
          res.setHeader('trailer', 'x-checksum');
          res.write('abc');
          res.write('def');
          res.addTrailers({ 'x-checksum': 'c0ffee' });
          res.end();
        });
        const p = pool(s.port);
        const cl = await exchange(p, { path: '/cl' });
        assert.equal(cl.body.toString(), '12345');
        assert.equal(cl.headers['content-length'], '5');
        assert.equal(cl.trailers, null);
        const ch = await exchange(p, { path: '/chunked' });
        assert.equal(ch.headers['transfer-encoding'], 'chunked');
        assert.equal(ch.body.toString(), 'abcdef');
        assert.deepEqual({ ...ch.trailers }, { 'x-checksum': 'c0ffee' });
        assert.equal(s.connections(), 1);
      });

      it('joins duplicate response headers as node:http does, with set-cookie as an array', async () => {
        const s = await rawServer((socket) => {
          socket.write(
            'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Multi: one\r\nset-cookie: b=2\r\nx-multi: two\r\n' +
              'Content-Type: text/plain\r\nContent-Type: text/html\r\nCONTENT-LENGTH: 0\r\n\r\n',
          );
        });
        const r = await exchange(pool(s.port), {});
        assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
        assert.equal(r.headers['x-multi'], 'one, two');
        assert.equal(r.headers['content-type'], 'text/plain');
        assert.equal(r.headers['content-length'], '0');
      });

      it('streams large bodies both ways with backpressure', async () => {
        const size = 16 * 1024 * 1024;
        let received = 0;
        let produced = 0;
        let maxAhead = 0;
        const s = await httpServer((req, res) => {
          const hash = createHash('sha256');
          req.on('data', (d: Buffer) => {
            received += d.length;
            hash.update(d);
            // Read slowly for a while so the upload has to wait for the upstream.
            if (received < 4 * 1024 * 1024) {
              req.pause();
              setTimeout(() => req.resume(), 2);
            }
          });
          req.on('end', () => {
            res.setHeader('x-upload-sha256', hash.digest('hex'));
            const chunk = Buffer.alloc(64 * 1024, 7);
            let left = size;
            const pump = (): void => {
              while (left > 0) {
                left -= chunk.length;
                if (!res.write(chunk)) return void res.once('drain', pump);
              }
              res.end();
            };
            pump();
          });
        });
        const source = Buffer.alloc(size);
        for (let i = 0; i < size; i += 4096) source[i] = i & 255;
        const expected = createHash('sha256').update(source).digest('hex');
        function* upload(): Generator<Buffer> {
          for (let i = 0; i < size; i += 64 * 1024) {
            produced += 64 * 1024;
            maxAhead = Math.max(maxAhead, produced - received);
            yield source.subarray(i, i + 64 * 1024);
          }
        }
        let pauses = 0;
        let callsWhilePaused = 0;
        let paused = false;
        const r = await exchange(
          pool(s.port),
          {
            method: 'POST',
            headers: { host: 'h', 'content-length': String(size) },
            body: Readable.from(upload()),
          },
          {
            onData(_chunk, resume) {
              if (paused) callsWhilePaused++;
              if (pauses >= 20) return true;
              pauses++;
              paused = true;
              setTimeout(() => {
                paused = false;
                resume();
              }, 5);
              return false;
            },
          },
        );
        assert.equal(r.error, null);
        assert.equal(r.headers['x-upload-sha256'], expected);
        assert.equal(r.body.length, size);
        // Without backpressure the whole upload would be produced at once, far ahead of the reader.
        assert.ok(maxAhead < 8 * 1024 * 1024, `upload ran ${maxAhead} bytes ahead of the upstream`);
        // After onData returns false, at most what was already read from the socket is delivered.
        assert.ok(callsWhilePaused <= pauses, `${callsWhilePaused} chunks delivered while paused`);
      });

      it('expects no body for HEAD, 204 and 304, and keeps the connection', async () => {
        const s = await httpServer((req, res) => {
          if (req.url === '/204') return void res.writeHead(204).end();
          if (req.url === '/304') return void res.writeHead(304, { etag: '"x"' }).end();
          res.setHeader('content-length', '100');
          res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(100));
        });
        const p = pool(s.port);
        const head = await exchange(p, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers['content-length'], '100');
        assert.equal(head.body.length, 0);
        assert.equal(head.error, null);
        const r204 = await exchange(p, { path: '/204' });
        assert.equal(r204.status, 204);
        const r304 = await exchange(p, { path: '/304' });
        assert.equal(r304.status, 304);
        assert.equal(r304.body.length, 0);
        const full = await exchange(p, {});
        assert.equal(full.body.length, 100);
        assert.equal(s.connections(), 1);
      });

      it('skips 1xx informational responses', async () => {
        const s = await rawServer((socket) => {
          socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n');
          setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 10);
        });
        const r = await exchange(pool(s.port), {});
        assert.equal(r.status, 200);
        assert.equal(r.headers.link, undefined);
        assert.equal(r.body.toString(), 'ok');
      });

      it('reads a close-delimited body to EOF and does not reuse the connection', async () => {
        const s = await rawServer((socket) => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ');
          setTimeout(() => socket.end('part two'), 10);
        });
        const p = pool(s.port);
        const r = await exchange(p, {});
        assert.equal(r.error, null);
        assert.equal(r.body.toString(), 'part one, part two');
        const again = await exchange(p, {});
        assert.equal(again.body.toString(), 'part one, part two');
        assert.equal(s.connections(), 2);
      });

      it('does not reuse a connection after Connection: close or an HTTP/1.0 response', async () => {
        const s = await rawServer((socket, head) => {
          if (head.startsWith('GET /close'))
            socket.write('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na');
          else socket.write('HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb');
        });
        const p = pool(s.port);
        assert.equal((await exchange(p, { path: '/close' })).body.toString(), 'a');
        assert.equal((await exchange(p, { path: '/old' })).body.toString(), 'b');
        assert.equal((await exchange(p, { path: '/close' })).body.toString(), 'a');
        assert.equal(s.connections(), 3);
      });

      it('hands the socket over on 101 Switching Protocols, with bytes read past the head', async () => {
        const server = http.createServer((_req, res) => res.end('no'));
        server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
          // The head and the first frame in one write, so the client reads them together.
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\nhello;`,
          );
          socket.on('data', (d) => socket.write(d));
        });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        servers.push(server);
        const p = pool((server.address() as AddressInfo).port);
        const r = await exchange(p, { headers: { host: 'h' }, upgrade: 'websocket' });
        assert.equal(r.error, null);
        assert.ok(r.upgrade);
        assert.equal(r.upgrade.status, 101);
        assert.equal(r.upgrade.headers.upgrade, 'websocket');
        assert.equal(p.connectionCount(), 0);
        const socket = r.upgrade.socket;
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString()));
        socket.write('ping');
        const deadline = Date.now() + 5000;
        while (got !== 'hello;ping' && Date.now() < deadline) await sleep(5);
        assert.equal(got, 'hello;ping');
        socket.destroy();
      });

      it('relays a declined upgrade as a plain response and does not reuse its connection', async () => {
        const s = await rawServer((socket) =>
          socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno'),
        );
        const p = pool(s.port);
        const r = await exchange(p, { upgrade: 'websocket' });
        assert.equal(r.upgrade, null);
        assert.equal(r.status, 403);
        assert.equal(r.body.toString(), 'no');
        assert.equal((await exchange(p, {})).status, 403);
        assert.equal(s.connections(), 2);
      });

      it('assembles many headers arriving in pieces', async () => {
        let head = 'HTTP/1.1 200 OK\r\n';
        for (let i = 0; i < 40; i++) head += `x-h${i}: v${i}\r\n`;
        head += 'content-length: 2\r\n\r\nok';
        const s = await rawServer((socket) => {
          socket.write(head.slice(0, 300));
          setTimeout(() => socket.write(head.slice(300)), 20);
        });
        const r = await exchange(pool(s.port), {});
        assert.equal(r.status, 200);
        for (let i = 0; i < 40; i++) assert.equal(r.headers[`x-h${i}`], `v${i}`);
        assert.equal(r.body.toString(), 'ok');
      });

      it('closes the connection when the response ends before the request body', async () => {
        const s = await httpServer((_req, res) => {
          res.writeHead(413, { connection: 'keep-alive', 'content-length': '3' });
          res.end('big');
        });
        const p = pool(s.port);
        let pushes = 0;
        const body = new Readable({
          read() {
            // A body that trickles on for much longer than the exchange takes.
            if (pushes++ < 200) setTimeout(() => this.push(Buffer.alloc(1024)), 10);
          },
        });
        const r = await exchange(p, {
          method: 'POST',
          headers: { host: 'h', 'content-length': '204800' },
          body,
        });
        assert.equal(r.status, 413);
        assert.equal(r.body.toString(), 'big');
        assert.equal(r.error, null);
        body.destroy();
        assert.equal((await exchange(p, {})).status, 413);
        assert.equal(s.connections(), 2);
      });

      it('maps a malformed response to protocol', async () => {
        const s = await rawServer((socket) => socket.write('HTTP/1.1 2x0 Nope\r\n\r\n'));
        const r = await exchange(pool(s.port), {});
        assert.equal(r.error?.failure, 'protocol');
      });

      it('maps an unsolicited 101 to protocol', async () => {
        const s = await rawServer((socket) =>
          socket.write('HTTP/1.1 101 Switching\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n'),
        );
        const r = await exchange(pool(s.port), {});
        assert.equal(r.error?.failure, 'protocol');
      });

      it('maps a close in the middle of a response to termination', async () => {
        const s = await rawServer((socket) => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b');
          setTimeout(() => socket.end(), 10);
        });
        const r = await exchange(pool(s.port), {});
        assert.equal(r.status, 200);
        assert.equal(r.error?.failure, 'termination');
        assert.equal(r.error?.beforeRequestSent, false);
      });

      it('maps a close before any response to termination', async () => {
        const s = await rawServer((socket) => socket.end());
        const r = await exchange(pool(s.port), {});
        assert.equal(r.status, 0);
        assert.equal(r.error?.failure, 'termination');
      });

      it('maps a reset to reset', async () => {
        const s = await rawServer((socket) => socket.resetAndDestroy());
        const r = await exchange(pool(s.port), {});
        assert.equal(r.error?.failure, 'reset');
      });

      it('maps a refused connection to connect, before the request was sent', async () => {
        const probe = net.createServer().listen(0, '127.0.0.1');
        await once(probe, 'listening');
        const port = (probe.address() as AddressInfo).port;
        probe.close();
        await once(probe, 'close');
        const r = await exchange(pool(port), {});
        assert.equal(r.error?.failure, 'connect');
        assert.equal(r.error?.beforeRequestSent, true);
      });

      it('times out a connect that gets no answer', async () => {
        // A listener whose thread never accepts: once its accept queue is full, further SYNs are dropped.
        const worker = new Worker(
          `const net = require('node:net');
       const { parentPort } = require('node:worker_threads');
       const server = net.createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         parentPort.postMessage(server.address().port);
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
       });`,
          { eval: true },
        );
        const fillers: Socket[] = [];
        try {
          const [port] = (await once(worker, 'message')) as [number];
          for (let i = 0; i < 4; i++) {
            const s = net.connect(port, '127.0.0.1');
            s.on('error', () => undefined);
            fillers.push(s);
          }
          await sleep(100);
          const started = Date.now();
          const r = await exchange(pool(port, { connectTimeoutMs: 300 }), {});
          const took = Date.now() - started;
          assert.equal(r.error?.failure, 'connect');
          assert.equal(r.error?.beforeRequestSent, true);
          assert.ok(took >= 250 && took < 2000, `gave up after ${took} ms`);
        } finally {
          for (const s of fillers) s.destroy();
          await worker.terminate();
        }
      });

      it('closes the socket on abort and reports the reason', async () => {
        let closed = false;
        const s = await rawServer((socket) => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nstart');
          socket.on('close', () => (closed = true));
        });
        const p = pool(s.port);
        const { UpstreamError } = await import('./codec.ts');
        const r = await exchange(
          p,
          {},
          { onHeaders: (_s, abort) => abort(new UpstreamError('local', 'gone')) },
        );
        assert.equal(r.error?.failure, 'local');
        const deadline = Date.now() + 3000;
        while (!closed && Date.now() < deadline) await sleep(5);
        assert.equal(closed, true);
        assert.equal(p.connectionCount(), 0);
      });

      it('drops a queued request on abort without sending it', async () => {
        const paths: string[] = [];
        const s = await httpServer((req, res) => {
          paths.push(req.url!);
          setTimeout(() => res.end('ok'), 50);
        });
        const p = pool(s.port, { circuitBreakers: { ...DEFAULT_THRESHOLDS, maxConnections: 1 } });
        const first = exchange(p, { path: '/first' });
        let abortSecond: (e: Error) => void = () => undefined;
        const second = new Promise<UpstreamError>((resolve) => {
          p.send(
            { method: 'GET', path: '/second', headers: { host: 'h' }, body: null },
            {
              onStart: (a) => (abortSecond = a),
              onHeaders: () => assert.fail('the aborted request got a response'),
              onData: () => true,
              onEnd: () => assert.fail('the aborted request ended'),
              onError: resolve,
              onUpgrade: () => undefined,
            },
          );
        });
        abortSecond(new Error('cancelled'));
        assert.equal((await second).failure, 'local');
        assert.equal((await first).status, 200);
        assert.equal((await exchange(p, { path: '/third' })).status, 200);
        assert.deepEqual(paths, ['/first', '/third']);
      });

      it('closes idle connections after the upstream idle timeout', async () => {
        const s = await httpServer((_req, res) => res.end('ok'));
        const p = pool(s.port, { upstreamIdleTimeoutMs: 100 });
        await exchange(p, {});
        assert.equal(s.open(), 1);
        const deadline = Date.now() + 3000;
        while (s.open() > 0 && Date.now() < deadline) await sleep(10);
        assert.equal(s.open(), 0);
        assert.equal(p.connectionCount(), 0);
        assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 2);
      });

      it('closes an idle connection at max_connection_duration, and the next request opens a new one', async () => {
        const s = await httpServer((_req, res) => res.end('ok'));
        const p = pool(s.port, { maxConnectionDurationMs: 150 });
        await exchange(p, {});
        assert.equal(s.open(), 1);
        const deadline = Date.now() + 3000;
        while (s.open() > 0 && Date.now() < deadline) await sleep(10);
        assert.equal(s.open(), 0, 'the expired idle connection was closed (the idle timeout is 1 h)');
        assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 2);
      });

      it('lets a request in flight at max_connection_duration finish, then closes its connection', async () => {
        let answer: (() => void) | null = null;
        const s = await httpServer((req, res) => {
          if (req.url === '/slow') answer = () => res.end('slow');
          else res.end('ok');
        });
        const p = pool(s.port, { maxConnectionDurationMs: 150 });
        const slow = exchange(p, { path: '/slow' });
        const deadline = Date.now() + 3000;
        while (answer === null && Date.now() < deadline) await sleep(10);
        await sleep(300);
        assert.equal(s.open(), 1, 'the busy connection stays open past its duration');
        (answer as unknown as () => void)();
        const r = await slow;
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'slow');
        while (s.open() > 0 && Date.now() < deadline) await sleep(10);
        assert.equal(s.open(), 0, 'and closes once its exchange is done');
        assert.equal((await exchange(p, {})).status, 200);
        assert.equal(s.connections(), 2);
      });

      it('never hands out a connection the upstream closed while it was idle', async () => {
        const s = await rawServer((socket) => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
          setTimeout(() => socket.end(), 50);
        });
        const p = pool(s.port);
        await exchange(p, {});
        assert.equal(p.connectionCount(), 1);
        await sleep(300);
        assert.equal(p.connectionCount(), 0);
        const r = await exchange(p, {});
        assert.equal(r.error, null);
        assert.equal(s.connections(), 2);
      });

      it('refuses header values that could split the request head', async () => {
        const s = await httpServer((_req, res) => res.end('ok'));
        const p = pool(s.port);
        for (const headers of [
          { host: 'h', 'x-evil': 'a\r\nx-injected: 1' },
          { host: 'h', 'x-evil': 'a\nb' },
          { host: 'h', 'x-evil': ['ok', 'nul\0'] },
          { host: 'h', 'bad name': 'v' },
        ]) {
          const r = await exchange(p, { headers });
          assert.equal(r.error?.failure, 'protocol');
        }
        const r = await exchange(p, { path: '/a b' });
        assert.equal(r.error?.failure, 'protocol');
        assert.equal(s.connections(), 0);
      });

      it('lets in-flight exchanges finish on close, then resolves', async () => {
        const s = await httpServer((_req, res) => setTimeout(() => res.end('late'), 50));
        const p = pool(s.port);
        const pending = exchange(p, {});
        await sleep(10);
        const closed = p.close();
        const r = await pending;
        assert.equal(r.body.toString(), 'late');
        await closed;
        assert.equal(p.connectionCount(), 0);
        assert.equal((await exchange(p, {})).error?.failure, 'termination');
      });
    },
  );
}
