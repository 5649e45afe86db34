import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttp2Upstream, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

type Up = Awaited<ReturnType<typeof startHttpUpstream>>;

describe('connection manager and route options', { timeout: 60_000 }, () => {
  let up: Up;
  let up6: http.Server;
  let silent: Upstream;
  let h2up: Upstream;
  let proxy: RunningProxy;

  before(async () => {
    up = await startHttpUpstream({ name: 'v4' });
    up6 = http.createServer((req, res) => res.end(`v6 ${req.socket.remoteAddress}`));
    await new Promise<void>((r) => up6.listen(0, '::1', r));
    silent = await startTcpUpstream((s) => s.resume());
    h2up = await startHttp2Upstream((stream, headers) => {
      if (headers[':method'] === 'POST') {
        let n = 0;
        stream.on('data', (c: Buffer) => (n += c.length));
        stream.on('end', () => {
          stream.respond({ ':status': 200 });
          stream.end(String(n));
        });
        return;
      }
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 'z');
      let left = 20 * 1024 * 1024;
      const pump = (): void => {
        while (left > 0) {
          left -= chunk.length;
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    });
    const v6port = (up6.address() as AddressInfo).port;
    const ipv6Listener = httpListener({
      name: 'v6',
      routes: [{ match: { prefix: '/' }, route: { cluster: 'v6' } }],
    });
    (ipv6Listener.address as { socket_address: { address: string } }).socket_address.address = '::1';
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/rewrite-host' },
                route: { cluster: 'v4', host_rewrite_literal: 'rewritten.example' },
              },
              { match: { prefix: '/dns' }, route: { cluster: 'dns', auto_host_rewrite: true } },
              { match: { prefix: '/silent' }, route: { cluster: 'silent', timeout: '0s' } },
              { match: { prefix: '/h2' }, route: { cluster: 'h2', timeout: '0s' } },
              { match: { prefix: '/' }, route: { cluster: 'v4', timeout: '0s' } },
            ],
            hcm: {
              use_remote_address: true,
              stream_idle_timeout: '0.4s',
              request_timeout: '1s',
              common_http_protocol_options: { idle_timeout: '1.5s' },
            },
          }),
          ipv6Listener,
        ],
        [
          staticCluster('v4', [{ port: up.port }]),
          staticCluster('v6', [{ address: '::1', port: v6port }]),
          staticCluster('silent', [{ port: silent.port }]),
          staticCluster('h2', [{ port: h2up.port }], HTTP2_PROTOCOL_OPTIONS),
          {
            name: 'dns',
            type: 'STRICT_DNS',
            connect_timeout: '1s',
            dns_lookup_family: 'V4_ONLY',
            load_assignment: {
              cluster_name: 'dns',
              endpoints: [
                {
                  lb_endpoints: [
                    {
                      endpoint: {
                        address: { socket_address: { address: 'localhost', port_value: up.port } },
                      },
                    },
                  ],
                },
              ],
            },
          },
        ],
      ),
    );
  });
  after(async () => {
    await proxy.stop();
    await up.close();
    up6.close();
    await silent.close();
    await h2up.close();
  });

  it('listens on IPv6 and reaches an IPv6 endpoint', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '::1', port: proxy.port('v6'), path: '/', agent: false }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    assert.match(body, /^v6 ::1$/);
  });

  it('use_remote_address appends the peer to x-forwarded-for', async () => {
    await request(proxy.port(), { path: '/xff', headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(up.seen.at(-1)!.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  });

  it('host_rewrite_literal and auto_host_rewrite (STRICT_DNS cluster on localhost)', async () => {
    await request(proxy.port(), { path: '/rewrite-host', headers: { host: 'orig.example' } });
    assert.equal(up.seen.at(-1)!.headers.host, 'rewritten.example');
    const r = await request(proxy.port(), { path: '/dns', headers: { host: 'orig.example' } });
    assert.equal(r.status, 200);
    assert.equal(up.seen.at(-1)!.headers.host, 'localhost');
  });

  it('stream_idle_timeout ends a stream that sees no activity', async () => {
    const r = await request(proxy.port(), { path: '/silent' });
    assert.equal(r.status, 504);
    assert.equal(r.body, 'stream timeout');
  });

  it('request_timeout answers 408 when the request body does not arrive in time', async () => {
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(proxy.port(), '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
    });
    assert.match(out, /^HTTP\/1.1 408 /);
  });

  it('the downstream idle_timeout closes an idle keep-alive connection, not a busy one', async () => {
    // Envoy's default is one hour, so without the configured 1.5 s this would wait out the suite's timeout.
    const s = net.connect(proxy.port(), '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    const responses = (): number => (got.match(/HTTP\/1.1 200 /g) ?? []).length;
    const waitResponses = async (n: number): Promise<void> => {
      while (responses() < n) await new Promise((r) => setTimeout(r, 10));
    };
    s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitResponses(1);
    s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitResponses(2);
    await new Promise((r) => s.once('close', r));
    assert.equal(responses(), 2);
    assert.match(got, /keep-alive: timeout=1/i);
  });

  it('HTTP/2 end to end: 20 MiB each way with flow control, h2 downstream to h2 upstream', async () => {
    const c = http2.connect(`http://127.0.0.1:${proxy.port()}`);
    try {
      const down = await new Promise<number>((resolve, reject) => {
        const s = c.request({ ':path': '/h2/down' });
        let n = 0;
        s.on('data', (d: Buffer) => (n += d.length));
        s.on('end', () => resolve(n));
        s.on('error', reject);
        s.end();
      });
      assert.equal(down, 20 * 1024 * 1024);
      const upCount = await new Promise<string>((resolve, reject) => {
        const s = c.request({ ':path': '/h2/up', ':method': 'POST' });
        let b = '';
        s.on('data', (d: Buffer) => (b += d.toString()));
        s.on('end', () => resolve(b));
        s.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 'u');
        let left = 20 * 1024 * 1024;
        const pump = (): void => {
          while (left > 0) {
            left -= chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      });
      assert.equal(upCount, String(20 * 1024 * 1024));
    } finally {
      c.close();
    }
  });
});
