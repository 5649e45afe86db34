import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, rawExchange, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

describe('failures get Envoy response flags and the right status', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  const ups: Upstream[] = [];
  let slowSockets = 0;
  before(async () => {
    const ok = await startHttpUpstream();
    // Accepts, reads the request, then closes without answering (connection termination).
    const closer = await startTcpUpstream((s) => s.once('data', () => s.end()));
    // Accepts, reads the request, then resets the connection.
    const resetter = await startTcpUpstream((s) => s.once('data', () => s.resetAndDestroy()));
    // Never answers.
    const slow = await startTcpUpstream((s) => {
      s.resume(); // read, so that the proxy's close is seen
      slowSockets++;
      s.once('close', () => slowSockets--);
    });
    // Sends garbage instead of HTTP.
    const garbage = await startTcpUpstream((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
    ups.push(ok, closer, resetter, slow, garbage);
    const dead = await closedPort();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              { match: { prefix: '/ok' }, route: { cluster: 'ok' } },
              { match: { prefix: '/uh' }, route: { cluster: 'unhealthy' } },
              { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
              { match: { prefix: '/uf' }, route: { cluster: 'dead' } },
              { match: { prefix: '/uc' }, route: { cluster: 'closer' } },
              { match: { prefix: '/ur' }, route: { cluster: 'resetter' } },
              { match: { prefix: '/ut' }, route: { cluster: 'slow', timeout: '0.3s' } },
              { match: { prefix: '/upe' }, route: { cluster: 'garbage' } },
            ],
          }),
        ],
        [
          staticCluster('ok', [{ port: ok.port }]),
          staticCluster('unhealthy', [{ port: ok.port, health: 'UNHEALTHY' }], {
            common_lb_config: { healthy_panic_threshold: { value: 0 } },
          }),
          {
            name: 'empty',
            type: 'STATIC',
            connect_timeout: '1s',
            load_assignment: { cluster_name: 'empty', endpoints: [] },
          },
          staticCluster('dead', [{ port: dead }]),
          staticCluster('closer', [{ port: closer.port }]),
          staticCluster('resetter', [{ port: resetter.port }]),
          staticCluster('slow', [{ port: slow.port }]),
          staticCluster('garbage', [{ port: garbage.port }]),
        ],
      ),
    );
  });
  after(async () => {
    await proxy.stop();
    for (const u of ups) await u.close();
  });

  const stat = (name: string): number => {
    const c = proxy.server.stats.counter(name);
    return c.value;
  };

  it('no route → 404 (NR)', async () => {
    const { server } = proxy;
    void server;
    const r = await request(proxy.port(), { path: '/nothing-here' });
    assert.equal(r.status, 404);
    assert.ok(stat('http.ingress_http.no_route') >= 1);
  });

  it('no healthy endpoint → 503 UH, empty cluster too', async () => {
    const a = await request(proxy.port(), { path: '/uh' });
    assert.equal(a.status, 503);
    assert.equal(a.body, 'no healthy upstream');
    const b = await request(proxy.port(), { path: '/empty' });
    assert.equal(b.status, 503);
    assert.equal(b.body, 'no healthy upstream');
  });

  it('connection refused → 503 UF', async () => {
    const r = await request(proxy.port(), { path: '/uf' });
    assert.equal(r.status, 503);
    assert.match(r.body, /connection failure/);
    assert.ok(stat('cluster.dead.upstream_cx_connect_fail') >= 1);
  });

  it('upstream closes before answering → 503 UC (after one retry on a fresh connection)', async () => {
    const r = await request(proxy.port(), { path: '/uc' });
    assert.equal(r.status, 503);
    assert.match(r.body, /connection termination/);
    assert.equal(stat('cluster.closer.upstream_rq_retry'), 1);
  });

  it('upstream resets → 503 UR', async () => {
    const r = await request(proxy.port(), {
      path: '/ur',
      method: 'POST',
      body: 'x',
      headers: { 'content-length': '1' },
    });
    assert.equal(r.status, 503);
    assert.match(r.body, /remote reset/);
  });

  it('route timeout → 504 UT and the upstream request is cancelled', async () => {
    const r = await request(proxy.port(), { path: '/ut' });
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.equal(stat('cluster.slow.upstream_rq_timeout'), 1);
    await waitFor(() => slowSockets === 0, 5000, 'the upstream connection to be closed');
  });

  it('malformed upstream response → 503 UPE', async () => {
    const r = await request(proxy.port(), { path: '/upe' });
    assert.equal(r.status, 503);
    assert.match(r.body, /protocol error/);
  });

  describe('hostile requests', () => {
    const expectStatus = async (raw: string, status: number): Promise<string> => {
      const out = await rawExchange(proxy.port(), raw);
      assert.match(out, new RegExp(`^HTTP/1.1 ${status} `), `got: ${out.slice(0, 200)}`);
      return out;
    };
    it('Content-Length together with Transfer-Encoding → 400 and closed', async () => {
      await expectStatus(
        'POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
      );
    });
    it('conflicting duplicate Content-Length → 400', async () => {
      await expectStatus(
        'POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
        400,
      );
    });
    it('invalid header characters → 400', async () => {
      await expectStatus('GET /ok HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n', 400);
      await expectStatus('GET /ok HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n', 400);
    });
    it('garbage request line → 400', async () => {
      await expectStatus('HELLO\r\n\r\n', 400);
    });
    it('headers over max_request_headers_kb (60 KiB) → 431', async () => {
      await expectStatus(`GET /ok HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(61 * 1024)}\r\n\r\n`, 431);
      // Just under the limit is fine.
      const r = await request(proxy.port(), { path: '/ok', headers: { 'x-big': 'a'.repeat(50 * 1024) } });
      assert.equal(r.status, 200);
    });
    it('missing Host on HTTP/1.1 → 400', async () => {
      await expectStatus('GET /ok HTTP/1.1\r\n\r\n', 400);
    });
    it('client aborts mid-body: no crash, no leaked sockets', async () => {
      const before = proxy.server.stats.gauge('http.ingress_http.downstream_cx_active').value;
      for (let i = 0; i < 20; i++) {
        const s = net.connect(proxy.port(), '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        s.write('POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
        await new Promise((r) => setTimeout(r, 5));
        s.destroy();
      }
      await waitFor(
        () =>
          proxy.server.stats.gauge('http.ingress_http.downstream_cx_active').value === before &&
          proxy.server.stats.gauge('cluster.ok.upstream_rq_active').value === 0,
        5000,
        'connections to be released',
      );
      const r = await request(proxy.port(), { path: '/ok' });
      assert.equal(r.status, 200);
    });
  });
});
