import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import { curl } from '../support/http.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
  Unary(m: Msg, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
  ServerStream(m: Msg): grpc.ClientReadableStream<Msg>;
  ClientStream(cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(): grpc.ClientDuplexStream<Msg, Msg>;
};

const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  weft: { test: { Echo: grpc.ServiceClientConstructor } };
};
const Echo = pkg.weft.test.Echo;

function h2get(
  port: number,
  headers: http2.OutgoingHttpHeaders,
): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.on('error', reject);
    const s = c.request(headers);
    let body = '';
    let h: http2.IncomingHttpHeaders = {};
    s.on('response', (x) => (h = x));
    s.on('data', (d: Buffer) => (body += d.toString()));
    s.on('end', () => {
      c.close();
      resolve({ headers: h, body });
    });
    s.on('error', reject);
    s.end();
  });
}

describe('HTTP/2 and gRPC through the proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let grpcServer: grpc.Server;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let client: EchoClient;

  before(async () => {
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        if (call.request.text === 'fail') {
          cb({ code: grpc.status.FAILED_PRECONDITION, details: 'asked to fail' });
          return;
        }
        const md = new grpc.Metadata();
        md.set('x-trailer', 'yes');
        cb(null, { text: `echo:${call.request.text}`, n: call.request.n + 1 }, md);
      },
      ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        for (let i = 0; i < call.request.n; i++) call.write({ text: `s${i}`, n: i });
        call.end();
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
    up = await startHttpUpstream({ name: 'h1' });
    const dead = await closedPort();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/weft.test.Echo/', headers: [{ name: 'x-broken', present_match: true }] },
                route: { cluster: 'dead' },
              },
              { match: { prefix: '/weft.test.Echo/' }, route: { cluster: 'grpc', timeout: '0s' } },
              { match: { prefix: '/' }, route: { cluster: 'h1' } },
            ],
          }),
        ],
        [
          staticCluster('grpc', [{ port: grpcPort }], HTTP2_PROTOCOL_OPTIONS),
          staticCluster('dead', [{ port: dead }], HTTP2_PROTOCOL_OPTIONS),
          staticCluster('h1', [{ port: up.port }]),
        ],
      ),
    );
    client = new Echo(
      `127.0.0.1:${proxy.port()}`,
      grpc.credentials.createInsecure(),
    ) as unknown as EchoClient;
  });
  after(async () => {
    client.close();
    await proxy.stop();
    grpcServer.forceShutdown();
    await up.close();
  });

  it('curl --http2-prior-knowledge reaches an HTTP/1.1 upstream', async () => {
    const r = await curl(['--http2-prior-knowledge', '-i', `http://127.0.0.1:${proxy.port()}/h2-path`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/2 200/);
    assert.equal(up.seen.at(-1)!.url, '/h2-path');
    assert.equal(up.seen.at(-1)!.headers.host, `127.0.0.1:${proxy.port()}`);
  });

  it('carries many concurrent streams on one HTTP/2 connection', async () => {
    const c = http2.connect(`http://127.0.0.1:${proxy.port()}`);
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<number>((resolve, reject) => {
            const s = c.request({ ':path': `/c${i}` });
            s.on('response', (h) => resolve(Number(h[':status'])));
            s.on('error', reject);
            s.resume();
            s.end();
          }),
      ),
    );
    c.close();
    assert.deepEqual(results, Array(50).fill(200));
  });

  it('a node http2 client reaches the HTTP/1.1 upstream', async () => {
    const r = await h2get(proxy.port(), { ':path': '/', ':authority': 'x' });
    assert.equal(r.headers[':status'], 200);
  });

  it('unary gRPC with trailers and metadata', async () => {
    const reply = await new Promise<{ m: Msg; trailer: string | undefined }>((resolve, reject) => {
      const call = client.Unary({ text: 'hi', n: 41 }, (e, r) =>
        e ? reject(e) : resolve({ m: r!, trailer }),
      );
      let trailer: string | undefined;
      (call as unknown as grpc.ClientUnaryCall).on('status', (s: grpc.StatusObject) => {
        trailer = s.metadata.get('x-trailer')[0] as string;
      });
    });
    assert.equal(reply.m.text, 'echo:hi');
    assert.equal(reply.m.n, 42);
  });

  it('gRPC errors from the upstream keep their status and message', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.Unary({ text: 'fail', n: 0 }, (e) => resolve(e!)),
    );
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(err.details, 'asked to fail');
  });

  it('server streaming, client streaming and bidi streaming', async () => {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.ServerStream({ text: '', n: 100 });
      s.on('data', (m: Msg) => got.push(m));
      s.on('end', resolve);
      s.on('error', reject);
    });
    assert.equal(got.length, 100);
    assert.equal(got[99].text, 's99');

    const sum = await new Promise<Msg>((resolve, reject) => {
      const w = client.ClientStream((e, r) => (e ? reject(e) : resolve(r!)));
      for (let i = 1; i <= 10; i++) w.write({ text: '', n: i });
      w.end();
    });
    assert.equal(sum.n, 55);

    const bidi = client.Bidi();
    const echoes: Msg[] = [];
    // Interleaved: each reply arrives before the next message is sent, proving full duplex.
    for (let i = 0; i < 5; i++) {
      const next = new Promise<Msg>((resolve) => bidi.once('data', resolve));
      bidi.write({ text: `m${i}`, n: i });
      echoes.push(await next);
    }
    bidi.end();
    assert.deepEqual(
      echoes.map((m) => m.text),
      ['b:m0', 'b:m1', 'b:m2', 'b:m3', 'b:m4'],
    );
  });

  it('a proxy-generated failure is a trailers-only gRPC response (UNAVAILABLE)', async () => {
    const md = new grpc.Metadata();
    md.set('x-broken', '1');
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.Unary({ text: 'x', n: 0 }, md, (e) => resolve(e!)),
    );
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /connection failure/);
  });
});
