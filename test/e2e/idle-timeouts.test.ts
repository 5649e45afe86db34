/**
 * Idle timeouts through a real proxy (static bootstrap), on real sockets:
 * - tcp_proxy `idle_timeout`: no byte either way on either connection for that long closes both; bytes in
 *   either direction keep the connection open however long it lasts.
 * - RouteAction `idle_timeout` (a stream's idle timeout, overriding the connection manager's
 *   stream_idle_timeout; 0 disables it): expiry before the response started answers as Envoy's stream idle
 *   timeout does once the request was fully received, 504 "stream timeout" (408 only while the request is
 *   still arriving); after it started, the stream is reset. Activity restarts the clock, request body bytes
 *   included: a stalled upload gets 408 and its connection closed, a slow but steady one completes.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';

const PROXY_IP = '127.0.93.20';
const UPSTREAM_IP = '127.0.93.21';
/** Long enough that a loaded machine's event-loop stalls do not pass for idleness between 150 ms ticks. */
const TCP_IDLE = '1s';
const TICK_MS = 150;
/** An active connection lives through three idle timeouts. */
const ACTIVE_MS = 3_000;
/** How long a test waits for the close that the idle timeout should bring before calling it missing. */
const CLOSE_GUARD_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function socketAddress(address: string, port = 0): Record<string, unknown> {
  return { socket_address: { address, port_value: port } };
}

function cluster(name: string, port: number): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(UPSTREAM_IP, port) } }] }],
    },
  };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, UPSTREAM_IP, r));
  return (server.address() as AddressInfo).port;
}

async function adminStat(proxy: RunningProxy, name: string): Promise<number> {
  const r = await request(proxy.adminPort, { host: PROXY_IP, path: '/stats?format=json' });
  const stats = (JSON.parse(r.body) as { stats: { name: string; value?: number }[] }).stats;
  return stats.find((s) => s.name === name)?.value ?? 0;
}

/** Resolves true when `socket` closes within `ms`, false otherwise (the socket is then left open). */
function closesWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('tcp_proxy idle_timeout through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let upstream: net.Server;
  /** Server-side sockets, in accept order. */
  const accepted: net.Socket[] = [];
  /** The push timers of 'P' connections, to silence them. */
  const pushers = new Map<net.Socket, NodeJS.Timeout>();

  before(async () => {
    // The first byte picks the upstream's behaviour: 'E' echoes it once, then stays silent; 'S' swallows
    // everything; 'P' pushes a byte every tick and never reads.
    upstream = net.createServer((s) => {
      accepted.push(s);
      s.on('error', () => undefined);
      s.once('data', (first: Buffer) => {
        const mode = first.toString('latin1', 0, 1);
        if (mode === 'E') s.write(first);
        if (mode === 'P') {
          pushers.set(
            s,
            setInterval(() => s.write('p'), TICK_MS),
          );
          s.once('close', () => clearInterval(pushers.get(s)));
        }
      });
    });
    const port = await listen(upstream);
    proxy = await startProxy({
      node: { id: 'idle-test', cluster: 'test' },
      admin: { address: socketAddress(PROXY_IP) },
      static_resources: {
        listeners: [
          {
            name: 'tcp',
            address: socketAddress(PROXY_IP),
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.tcp_proxy',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                      stat_prefix: 'idle_test',
                      cluster: 'backend',
                      idle_timeout: TCP_IDLE,
                    },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [cluster('backend', port)],
      },
    });
  });

  after(async () => {
    for (const s of accepted) s.destroy();
    await proxy?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  const connect = async (mode: string): Promise<{ socket: net.Socket; received: () => string }> => {
    const socket = net.connect(proxy.port('tcp'), PROXY_IP);
    socket.on('error', () => undefined);
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(mode);
    return { socket, received: () => got };
  };

  it('closes a connection on which nothing moves, downstream and upstream, and counts it', async () => {
    const before = await adminStat(proxy, 'tcp.idle_test.idle_timeout');
    const { socket, received } = await connect('E');
    assert.equal(await closesWithin(socket, CLOSE_GUARD_MS), true, 'the idle connection was closed');
    assert.equal(received(), 'E', 'bytes flowed before the connection went idle');
    // The upstream side of the same connection was closed too.
    assert.equal(await closesWithin(accepted.at(-1)!, CLOSE_GUARD_MS), true);
    assert.equal(await adminStat(proxy, 'tcp.idle_test.idle_timeout'), before + 1);
  });

  it('keeps a connection open while the downstream keeps writing, though the upstream never answers', async () => {
    const before = await adminStat(proxy, 'tcp.idle_test.idle_timeout');
    const { socket } = await connect('S');
    const ticks = ACTIVE_MS / TICK_MS;
    for (let i = 0; i < ticks && !socket.destroyed; i++) {
      socket.write('.');
      await sleep(TICK_MS);
    }
    assert.equal(socket.destroyed, false, 'the active connection is still open');
    assert.equal(await adminStat(proxy, 'tcp.idle_test.idle_timeout'), before);
    const server = accepted.at(-1)!;
    assert.equal(server.bytesRead, 1 + ticks, 'every byte reached the upstream');
    socket.destroy();
  });

  it('keeps a connection open while only the upstream writes', async () => {
    const before = await adminStat(proxy, 'tcp.idle_test.idle_timeout');
    const { socket, received } = await connect('P');
    await sleep(ACTIVE_MS);
    assert.equal(socket.destroyed, false, 'the connection with upstream traffic is still open');
    assert.ok(received().length >= 2, `pushed bytes arrived (${received().length})`);
    assert.equal(await adminStat(proxy, 'tcp.idle_test.idle_timeout'), before);
    // Once the upstream falls silent too, the idle timeout applies again.
    clearInterval(pushers.get(accepted.at(-1)!));
    assert.equal(await closesWithin(socket, CLOSE_GUARD_MS), true);
    assert.equal(await adminStat(proxy, 'tcp.idle_test.idle_timeout'), before + 1);
  });
});

describe('route idle_timeout through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let upstream: http.Server;
  /** Upstream requests that were torn down before their response ended, by path. */
  const cancelled = new Set<string>();

  before(async () => {
    upstream = http.createServer((req, res) => {
      const path = req.url ?? '';
      req.resume();
      res.on('close', () => {
        if (!res.writableFinished) cancelled.add(path);
      });
      if (path.endsWith('/silent')) return;
      if (path.endsWith('/upload')) {
        let n = 0;
        req.on('data', (d: Buffer) => (n += d.length));
        req.on('end', () => res.writeHead(200).end(`got ${n}`));
        return;
      }
      if (path.endsWith('/slow')) {
        const t = setTimeout(() => res.writeHead(200).end('slow'), 1_000);
        res.on('close', () => clearTimeout(t));
        return;
      }
      if (path.endsWith('/trickle')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const t = setInterval(() => {
          res.write(String(n % 10));
          if (++n === 15) {
            clearInterval(t);
            res.end();
          }
        }, 200);
        res.on('close', () => clearInterval(t));
        return;
      }
      if (path.endsWith('/stall')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first');
        return;
      }
      res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, UPSTREAM_IP, r));
    const port = (upstream.address() as AddressInfo).port;
    const route = (prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      match: { prefix },
      route: { cluster: 'backend', timeout: '0s', ...extra },
    });
    proxy = await startProxy({
      node: { id: 'idle-test', cluster: 'test' },
      admin: { address: socketAddress(PROXY_IP) },
      static_resources: {
        listeners: [
          {
            name: 'http',
            address: socketAddress(PROXY_IP),
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: {
                      '@type':
                        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      stat_prefix: 'idle_http',
                      // Shorter than the routes' own, so each test shows which one applied.
                      stream_idle_timeout: '0.3s',
                      route_config: {
                        name: 'local',
                        virtual_hosts: [
                          {
                            name: 'all',
                            domains: ['*'],
                            routes: [
                              route('/off/', { idle_timeout: '0s' }),
                              route('/route/', { idle_timeout: '2s' }),
                              route('/'),
                            ],
                          },
                        ],
                      },
                      http_filters: [
                        {
                          name: 'envoy.filters.http.router',
                          typed_config: {
                            '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [cluster('backend', port)],
      },
    });
  });

  after(async () => {
    await proxy?.stop();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  const get = (path: string) => request(proxy.port('http'), { host: PROXY_IP, path });

  it('answers 504 "stream timeout" when the route\'s idle_timeout passes before any response', async () => {
    const idle = proxy.server.stats.counter('http.idle_http.downstream_rq_idle_timeout');
    const before = idle.value;
    const r = await get('/route/silent');
    assert.equal(r.status, 504);
    assert.equal(r.body, 'stream timeout');
    assert.equal(idle.value, before + 1);
    await waitUntil(() => cancelled.has('/route/silent'));
  });

  it("lets the route's longer idle_timeout override the connection manager's stream_idle_timeout", async () => {
    // The upstream answers after 1 s: past the connection manager's 0.3 s, within the route's 2 s.
    const r = await get('/route/slow');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow');
  });

  it("applies the connection manager's stream_idle_timeout where the route sets none", async () => {
    const r = await get('/default/slow');
    assert.equal(r.status, 504);
    assert.equal(r.body, 'stream timeout');
  });

  it('disables the stream idle timeout with a route idle_timeout of 0s', async () => {
    const r = await get('/off/slow');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow');
  });

  it('restarts the idle clock on every chunk: a response outlasting the idle timeout completes', async () => {
    // 15 chunks 200 ms apart: 3 s in all, longer than the route's 2 s idle_timeout.
    const r = await get('/route/trickle');
    assert.equal(r.status, 200);
    assert.equal(r.body, '012345678901234');
  });

  it('resets the stream when the idle timeout passes after the response started', async () => {
    const outcome = await new Promise<{ status: number; body: string; aborted: boolean }>((resolve) => {
      const req = http.get(
        { host: PROXY_IP, port: proxy.port('http'), path: '/route/stall', agent: false },
        (res) => {
          let body = '';
          let aborted = false;
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('aborted', () => (aborted = true));
          res.on('error', () => (aborted = true));
          res.on('close', () => resolve({ status: res.statusCode ?? 0, body, aborted }));
        },
      );
      req.on('error', () => resolve({ status: 0, body: '', aborted: true }));
    });
    assert.equal(outcome.status, 200);
    assert.equal(outcome.body, 'first');
    assert.equal(outcome.aborted, true, 'the response was cut short, not ended');
    await waitUntil(() => cancelled.has('/route/stall'));
  });

  it('answers 408 "stream timeout" to an upload that stalls, and closes its connection', async () => {
    const idle = proxy.server.stats.counter('http.idle_http.downstream_rq_idle_timeout');
    const before = idle.value;
    const socket = net.connect(proxy.port('http'), PROXY_IP);
    socket.on('error', () => undefined);
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    socket.write('POST /route/upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789');
    assert.equal(await closesWithin(socket, CLOSE_GUARD_MS), true, 'the connection closed after the answer');
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.match(reply, /stream timeout$/);
    assert.equal(idle.value, before + 1);
    await waitUntil(() => cancelled.has('/route/upload'));
  });

  it('lets an upload that outlasts the idle timeout complete while its bytes keep coming', async () => {
    // 20 chunks 150 ms apart: 3 s in all, longer than the route's 2 s idle_timeout.
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: PROXY_IP,
          port: proxy.port('http'),
          path: '/route/steady/upload',
          method: 'POST',
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      let n = 0;
      const t = setInterval(() => {
        req.write('0123456789');
        if (++n === 20) {
          clearInterval(t);
          req.end();
        }
      }, TICK_MS);
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'got 200');
  });
});

async function waitUntil(fn: () => boolean, ms = CLOSE_GUARD_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(20);
  }
}
