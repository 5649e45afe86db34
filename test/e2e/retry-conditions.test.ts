/**
 * retry_on conditions end to end, each against an upstream that really fails that way: retriable-4xx
 * (409 only), reset (the upstream destroys the connection before answering), refused-stream (an HTTP/2
 * upstream refusing the stream with RST_STREAM REFUSED_STREAM) and the gRPC conditions cancelled,
 * deadline-exceeded, internal and resource-exhausted (a grpc-js server answering with that status).
 * Every case counts the attempts the upstream saw, so "retried" and "not retried" are exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { request } from '../support/http.ts';
import { REPO, startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
};

const HOST = '127.0.91.3';
const BACK_OFF = { base_interval: '0.005s', max_interval: '0.02s' };
const NUM_RETRIES = 2;

const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const Echo = (
  grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } }
).weft.test.Echo;

/** The gRPC retry conditions under test and the status a server answers to trigger each. */
const GRPC_CONDITIONS: Record<string, grpc.status> = {
  cancelled: grpc.status.CANCELLED,
  'deadline-exceeded': grpc.status.DEADLINE_EXCEEDED,
  internal: grpc.status.INTERNAL,
  'resource-exhausted': grpc.status.RESOURCE_EXHAUSTED,
};

function retryRoute(name: string, cluster: string, retryOn: string): Record<string, unknown> {
  return {
    match: { prefix: '/', headers: [{ name: 'x-route', string_match: { exact: name } }] },
    route: {
      cluster,
      retry_policy: { retry_on: retryOn, num_retries: NUM_RETRIES, retry_back_off: BACK_OFF },
    },
  };
}

describe('retry_on conditions against real failing upstreams', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let h1: http.Server;
  let h2: http2.Http2Server;
  let grpcServer: grpc.Server;
  let client: EchoClient;
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  /** Attempts each upstream saw, by the request's x-key (HTTP) or text (gRPC). */
  const seen = new Map<string, number>();
  const count = (key: string): number => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n;
  };

  before(async () => {
    // HTTP/1: x-fail attempts fail as x-mode says (a status, or "reset"), then 200.
    h1 = http.createServer((req, res) => {
      const n = count(String(req.headers['x-key']));
      const fail = Number(req.headers['x-fail'] ?? 0);
      const mode = String(req.headers['x-mode'] ?? '');
      req.resume();
      if (n <= fail && mode === 'reset') {
        // Before any byte of a response: the proxy sees the connection die under the request.
        req.socket.destroy();
        return;
      }
      res.writeHead(n <= fail ? Number(mode) : 200, { 'content-type': 'text/plain' });
      res.end(`attempt ${n}`);
    });
    await new Promise<void>((r) => h1.listen(0, HOST, r));

    // HTTP/2: the first x-fail streams are refused (RST_STREAM REFUSED_STREAM), later ones answered.
    h2 = http2.createServer();
    h2.on('session', (s) => {
      h2Sessions.add(s);
      s.on('close', () => h2Sessions.delete(s));
    });
    h2.on('stream', (stream, headers) => {
      const n = count(String(headers['x-key']));
      // Closing with an error code reports it on this end too; it is the point here, not a failure.
      stream.on('error', () => undefined);
      if (n <= Number(headers['x-fail'] ?? 0)) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`attempt ${n}`);
    });
    await new Promise<void>((r) => h2.listen(0, HOST, r));

    // gRPC: a request text `<condition>:<key>` always fails with that condition's status.
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        const text = call.request.text;
        count(text);
        const code = GRPC_CONDITIONS[text.split(':')[0]];
        if (code !== undefined) cb({ code, details: `server says ${text}` });
        else cb(null, { text: `echo:${text}`, n: 0 });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );

    const conditions = Object.keys(GRPC_CONDITIONS);
    const listener = httpListener({
      routes: [
        retryRoute('4xx', 'h1', 'retriable-4xx'),
        retryRoute('reset', 'h1', 'reset'),
        // Every HTTP condition but the ones that cover resets: a reset must not be retried here.
        retryRoute('no-reset', 'h1', 'retriable-4xx,connect-failure,refused-stream'),
        retryRoute('refused', 'h2', 'refused-stream'),
        retryRoute('no-refused', 'h2', 'retriable-4xx,connect-failure'),
        ...conditions.map((c) => retryRoute(`grpc-${c}`, 'grpc', c)),
        // The other gRPC conditions (and unavailable) but not this one.
        ...conditions.map((c) =>
          retryRoute(
            `grpc-not-${c}`,
            'grpc',
            [...conditions.filter((o) => o !== c), 'unavailable', 'retriable-4xx'].join(','),
          ),
        ),
      ],
    });
    listener.address = { socket_address: { address: HOST, port_value: 0 } };
    proxy = await startProxy(
      bootstrapDoc(
        [listener],
        [
          staticCluster('h1', [{ address: HOST, port: (h1.address() as AddressInfo).port }]),
          staticCluster(
            'h2',
            [{ address: HOST, port: (h2.address() as AddressInfo).port }],
            HTTP2_PROTOCOL_OPTIONS,
          ),
          staticCluster('grpc', [{ address: HOST, port: grpcPort }], HTTP2_PROTOCOL_OPTIONS),
        ],
      ),
    );
    client = new Echo(`${HOST}:${proxy.port()}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  });

  after(async () => {
    client?.close();
    await proxy?.stop();
    h1?.closeAllConnections();
    await new Promise((r) => h1?.close(r));
    for (const s of h2Sessions) s.destroy();
    await new Promise((r) => h2?.close(r));
    grpcServer?.forceShutdown();
  });

  function send(route: string, key: string, headers: Record<string, string> = {}) {
    return request(proxy.port(), {
      host: HOST,
      path: `/${key}`,
      headers: { 'x-route': route, 'x-key': key, ...headers },
    });
  }

  /**
   * With a body: a bodiless first try that dies without an answer is sent once more regardless of the
   * policy (the keep-alive race the router covers), which would hide whether the condition applied.
   */
  function post(route: string, key: string, headers: Record<string, string> = {}) {
    return request(proxy.port(), {
      host: HOST,
      method: 'POST',
      path: `/${key}`,
      headers: { 'x-route': route, 'x-key': key, 'content-type': 'text/plain', ...headers },
      body: 'payload',
    });
  }

  function unary(route: string, text: string): Promise<grpc.ServiceError | null> {
    const md = new grpc.Metadata();
    md.set('x-route', route);
    return new Promise((resolve) => client.Unary({ text, n: 0 }, md, (err) => resolve(err)));
  }

  it('retriable-4xx retries a 409 and nothing else', async () => {
    const conflict = await send('4xx', 'conflict-once', { 'x-fail': '1', 'x-mode': '409' });
    assert.equal(conflict.status, 200);
    assert.equal(conflict.body, 'attempt 2');
    assert.equal(seen.get('conflict-once'), 2);

    const always = await send('4xx', 'conflict-always', { 'x-fail': '99', 'x-mode': '409' });
    assert.equal(always.status, 409);
    assert.equal(seen.get('conflict-always'), 1 + NUM_RETRIES);

    const missing = await send('4xx', 'not-found', { 'x-fail': '99', 'x-mode': '404' });
    assert.equal(missing.status, 404);
    assert.equal(seen.get('not-found'), 1);

    const unavailable = await send('4xx', 'unavailable', { 'x-fail': '99', 'x-mode': '503' });
    assert.equal(unavailable.status, 503);
    assert.equal(seen.get('unavailable'), 1);
  });

  it('reset retries a request whose connection the upstream destroyed before answering', async () => {
    const once = await post('reset', 'reset-once', { 'x-fail': '1', 'x-mode': 'reset' });
    assert.equal(once.status, 200);
    assert.equal(once.body, 'attempt 2');
    assert.equal(seen.get('reset-once'), 2);

    const always = await post('reset', 'reset-always', { 'x-fail': '99', 'x-mode': 'reset' });
    assert.equal(always.status, 503);
    assert.equal(seen.get('reset-always'), 1 + NUM_RETRIES);

    const notListed = await post('no-reset', 'reset-not-listed', { 'x-fail': '1', 'x-mode': 'reset' });
    assert.equal(notListed.status, 503);
    assert.equal(seen.get('reset-not-listed'), 1);
  });

  it('refused-stream retries a stream the HTTP/2 upstream refused', async () => {
    const once = await post('refused', 'refused-once', { 'x-fail': '1' });
    assert.equal(once.status, 200);
    assert.equal(once.body, 'attempt 2');
    assert.equal(seen.get('refused-once'), 2);

    const always = await post('refused', 'refused-always', { 'x-fail': '99' });
    assert.equal(always.status, 503);
    assert.equal(seen.get('refused-always'), 1 + NUM_RETRIES);

    const notListed = await post('no-refused', 'refused-not-listed', { 'x-fail': '1' });
    assert.equal(notListed.status, 503);
    assert.equal(seen.get('refused-not-listed'), 1);
  });

  for (const [condition, code] of Object.entries(GRPC_CONDITIONS)) {
    it(`${condition} retries a gRPC ${grpc.status[code]} only when listed`, async () => {
      const listed = `${condition}:listed`;
      const err = await unary(`grpc-${condition}`, listed);
      assert.equal(err?.code, code);
      assert.equal(err?.details, `server says ${listed}`);
      assert.equal(seen.get(listed), 1 + NUM_RETRIES);

      const unlisted = `${condition}:unlisted`;
      const err2 = await unary(`grpc-not-${condition}`, unlisted);
      assert.equal(err2?.code, code);
      assert.equal(seen.get(unlisted), 1);
    });
  }
});
