/** Real upstream servers for tests, on 127.0.0.1 and port 0. */
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Upstream {
  readonly port: number;
  close(): Promise<void>;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP/1.1 echo server: answers with JSON describing the request, unless `handler` takes over. */
export async function startHttpUpstream(
  opts: { name?: string; handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void } = {},
): Promise<Upstream & { seen: SeenRequest[]; server: http.Server }> {
  const seen: SeenRequest[] = [];
  const server = http.createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
    if (opts.handler) return opts.handler(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const out = JSON.stringify({
        name: opts.name ?? 'upstream',
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyLength: body.length,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': opts.name ?? 'upstream' });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    seen,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An h2c (prior knowledge) server. */
export async function startHttp2Upstream(
  handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<Upstream> {
  const server = http2.createServer();
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A raw TCP server for misbehaving upstreams and TCP proxy tests. */
export async function startTcpUpstream(
  onConnection: (s: net.Socket) => void,
  allowHalfOpen = false,
): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConnection(s);
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

/** A port with nothing listening on it (bound then released). */
export async function closedPort(): Promise<number> {
  // A port from below the kernel's ephemeral range: a port that listen(0) handed out and we closed
  // could be handed to a concurrently running test's server a moment later (CI saw exactly that),
  // whereas nothing here binds a fixed port in this range.
  const floor = ephemeralFloor();
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * (floor - 10_000));
    const s = net.createServer();
    const free = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (!free) continue;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
}

function ephemeralFloor(): number {
  try {
    const low = Number(
      fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    if (Number.isInteger(low) && low > 11_000) return low;
  } catch {
    // not Linux: assume Linux's default range
  }
  return 32_768;
}

/** Sends raw bytes and collects everything the peer sends until it closes (or `ms` passes). */
export function rawExchange(port: number, data: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(done, ms);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('close', done);
    s.on('error', done);
    s.write(data);
  });
}
