import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeGrpcFrame } from './grpc-framing.ts';
import { openGrpcStream } from './grpc-stream.ts';
import type { GrpcCallStatus } from './grpc-stream.ts';

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** A raw HTTP/2 server whose per-test handler plays a (mis)behaving gRPC server. */
let server: http2.Http2Server;
let port = 0;
let handler: Handler = () => undefined;

before(async () => {
  server = http2.createServer();
  server.on('stream', (stream, headers) => handler(stream, headers));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

interface Outcome {
  opened: boolean;
  messages: Buffer[];
  status: GrpcCallStatus;
  closes: number;
}

function call(opts: { maxMessageBytes?: number; port?: number; send?: Buffer[] } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { opened: false, messages: [], status: { code: -1, message: '' }, closes: 0 };
    const stream = openGrpcStream(
      {
        host: '127.0.0.1',
        port: opts.port ?? port,
        authority: 'xds-grpc',
        path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
        connectTimeoutMs: 2000,
        maxMessageBytes: opts.maxMessageBytes ?? 1024,
      },
      {
        onOpen: () => (out.opened = true),
        onMessage: (m) => out.messages.push(m),
        onClose: (status) => {
          out.status = status;
          out.closes++;
          // Give a (wrong) second onClose a chance to show up.
          setTimeout(() => resolve(out), 30);
        },
      },
    );
    for (const m of opts.send ?? []) stream.send(m);
  });
}

const ok = { ':status': 200, 'content-type': 'application/grpc' };

describe('a gRPC stream over node:http2', { timeout: 20_000 }, () => {
  it('sends gRPC headers and frames, reads messages and the status from trailers', async () => {
    let seen: http2.IncomingHttpHeaders = {};
    handler = (stream, headers) => {
      seen = headers;
      stream.respond(ok, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        // Both framed messages in: echo them as one DATA frame, then end with the status.
        if (Buffer.concat(chunks).length === 16) stream.end(Buffer.concat(chunks));
      });
    };
    const out = await call({ send: [Buffer.from('one'), Buffer.from('two')] });
    assert.equal(seen[':method'], 'POST');
    assert.equal(
      seen[':path'],
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    );
    assert.equal(seen[':authority'], 'xds-grpc');
    assert.equal(seen['content-type'], 'application/grpc');
    assert.equal(seen.te, 'trailers');
    assert.equal(out.opened, true);
    assert.deepEqual(
      out.messages.map((m) => m.toString()),
      ['one', 'two'],
    );
    assert.deepEqual(out.status, { code: 0, message: '' });
    assert.equal(out.closes, 1);
  });

  it('reassembles a message split across DATA frames', async () => {
    handler = (stream) => {
      stream.respond(ok, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const framed = encodeGrpcFrame(Buffer.from('split-message'));
      stream.write(framed.subarray(0, 3));
      setTimeout(() => stream.write(framed.subarray(3, 9)), 20);
      setTimeout(() => stream.end(framed.subarray(9)), 40);
    };
    const out = await call();
    assert.deepEqual(
      out.messages.map((m) => m.toString()),
      ['split-message'],
    );
    assert.equal(out.status.code, 0);
  });

  it('reads a trailers-only error response, with its percent-encoded message', async () => {
    handler = (stream) => {
      stream.respond(
        { ...ok, 'grpc-status': '12', 'grpc-message': 'delta%20not%20here' },
        { endStream: true },
      );
    };
    const out = await call();
    assert.deepEqual(out.status, { code: 12, message: 'delta not here' });
    assert.equal(out.opened, false);
  });

  it('ends the call on an oversized message, without buffering it', async () => {
    let reset = false;
    handler = (stream) => {
      stream.respond(ok);
      stream.on('close', () => (reset = stream.rstCode !== 0));
      stream.write(Buffer.from([0, 0, 0, 0x10, 0])); // announces 4096 bytes
    };
    const out = await call({ maxMessageBytes: 1024 });
    assert.equal(out.status.code, 13);
    assert.match(out.status.message, /4096 bytes exceeds the limit of 1024/);
    await waitUntil(() => reset);
  });

  it('ends the call on garbage that is not gRPC framing', async () => {
    handler = (stream) => {
      stream.respond(ok);
      stream.write('HTTP/1.1 200 OK\r\n\r\n');
    };
    const out = await call();
    assert.equal(out.status.code, 13);
    assert.match(out.status.message, /invalid compressed flag/);
    assert.equal(out.messages.length, 0);
  });

  it('reports a stream that ends inside a message, or without a status', async () => {
    handler = (stream) => {
      stream.respond(ok);
      stream.end(encodeGrpcFrame(Buffer.from('cut')).subarray(0, 6));
    };
    assert.match((await call()).status.message, /ended inside a message/);
    handler = (stream) => {
      stream.respond(ok);
      stream.end();
    };
    assert.deepEqual((await call()).status, { code: 2, message: 'the stream ended without a status' });
  });

  it('refuses a non-gRPC answer', async () => {
    handler = (stream) => stream.respond({ ':status': 404 }, { endStream: true });
    assert.deepEqual((await call()).status, { code: 2, message: 'HTTP status 404 from the server' });
    handler = (stream) =>
      stream.respond({ ':status': 200, 'content-type': 'text/html' }, { endStream: true });
    assert.match((await call()).status.message, /unexpected content-type "text\/html"/);
  });

  it('reports UNAVAILABLE when it cannot connect, or the connection dies', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const dead = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await call({ port: dead });
    assert.equal(refused.status.code, 14);
    assert.equal(refused.closes, 1);
    handler = (stream) => {
      stream.respond(ok);
      setTimeout(() => stream.session?.destroy(), 20);
    };
    const died = await call();
    assert.equal(died.status.code, 14);
    assert.equal(died.opened, true);
  });

  it('cancel() ends the call once, as CANCELLED', async () => {
    handler = (stream) => stream.respond(ok);
    const out = await new Promise<Outcome>((resolve) => {
      const o: Outcome = { opened: false, messages: [], status: { code: -1, message: '' }, closes: 0 };
      const s = openGrpcStream(
        {
          host: '127.0.0.1',
          port,
          authority: 'a',
          path: '/x/y',
          connectTimeoutMs: 2000,
          maxMessageBytes: 10,
        },
        {
          onOpen: () => {
            o.opened = true;
            s.cancel('bye');
            s.cancel('again');
            s.send(Buffer.from('ignored after cancel'));
          },
          onMessage: () => undefined,
          onClose: (status) => {
            o.status = status;
            o.closes++;
            setTimeout(() => resolve(o), 50);
          },
        },
      );
    });
    assert.deepEqual(out.status, { code: 1, message: 'bye' });
    assert.equal(out.closes, 1);
  });
});

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
