import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { curl, request } from '../support/http.ts';

describe('HTTP/1.1 through the proxy', { timeout: 30_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let proxy: RunningProxy;
  before(async () => {
    up = await startHttpUpstream({ name: 'a' });
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            virtualHosts: [
              {
                name: 'all',
                domains: ['*'],
                routes: [
                  { match: { prefix: '/rewrite/' }, route: { cluster: 'backend', prefix_rewrite: '/new/' } },
                  {
                    match: { prefix: '/direct' },
                    direct_response: { status: 418, body: { inline_string: 'teapot' } },
                  },
                  { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
                  {
                    match: { prefix: '/' },
                    route: { cluster: 'backend' },
                    request_headers_to_add: [{ header: { key: 'x-added', value: 'yes' } }],
                    response_headers_to_add: [{ header: { key: 'x-resp', value: 'r' } }],
                  },
                ],
              },
            ],
          }),
        ],
        [staticCluster('backend', [{ port: up.port }])],
      ),
    );
  });
  after(async () => {
    await proxy.stop();
    await up.close();
  });

  it('forwards a GET with curl and keeps Host, adds request id and x-forwarded-proto', async () => {
    const r = await curl(['-i', '-H', 'Host: shop.example', `http://127.0.0.1:${proxy.port()}/items?x=1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1.1 200/);
    assert.match(r.stdout, /x-resp: r/i);
    assert.match(r.stdout, /server: weft/i);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.url, '/items?x=1');
    assert.equal(seen.headers.host, 'shop.example');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-added'], 'yes');
    assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('keeps an incoming x-request-id', async () => {
    await request(proxy.port(), { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(up.seen.at(-1)!.headers['x-request-id'], 'abc-123');
  });

  it('removes hop-by-hop headers and those named in Connection', async () => {
    await request(proxy.port(), {
      headers: {
        connection: 'keep-alive, x-secret',
        'x-secret': 's',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'x',
        te: 'gzip',
      },
    });
    const h = up.seen.at(-1)!.headers;
    assert.equal(h['x-secret'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    assert.equal(h.te, undefined);
    assert.equal(h['keep-alive'], undefined);
  });

  it('streams a POST body with Content-Length and chunked', async () => {
    const body = 'x'.repeat(100_000);
    const a = await request(proxy.port(), {
      method: 'POST',
      body,
      headers: { 'content-length': String(body.length) },
    });
    assert.equal(JSON.parse(a.body).bodyLength, 100_000);
    const r = await curl([
      '-s',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      'hello',
      `http://127.0.0.1:${proxy.port()}/`,
    ]);
    assert.equal(JSON.parse(r.stdout).bodyLength, 5);
  });

  it('rewrites the path prefix', async () => {
    await request(proxy.port(), { path: '/rewrite/a/b' });
    assert.equal(up.seen.at(-1)!.url, '/new/a/b');
  });

  it('answers direct responses and redirects itself', async () => {
    const d = await request(proxy.port(), { path: '/direct' });
    assert.equal(d.status, 418);
    assert.equal(d.body, 'teapot');
    const r = await request(proxy.port(), { path: '/old', headers: { host: 'h.example' } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://h.example/new');
  });

  it('serves many requests on one keep-alive connection, and pipelined requests in order', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) {
      const r = await request(proxy.port(), { path: `/k${i}`, agent });
      assert.equal(r.status, 200);
    }
    agent.destroy();
    const { rawExchange } = await import('../support/servers.ts');
    const raw = await rawExchange(
      proxy.port(),
      'GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\nGET /p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const urls = [...raw.matchAll(/"url":"(\/p\d)"/g)].map((m) => m[1]);
    assert.deepEqual(urls, ['/p1', '/p2', '/p3']);
  });
});
