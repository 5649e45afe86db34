import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

describe(
  'a pooled connection the upstream closed (503 UC race): an idempotent request is sent again, a POST is not',
  { timeout: 30_000 },
  () => {
    let up: Upstream;
    let proxy: RunningProxy;
    let connections = 0;
    before(async () => {
      // Answers the first request on each connection with keep-alive, then closes the connection
      // when the next request arrives on it, without answering: the race a keep-alive pool must survive.
      up = await startTcpUpstream((s) => {
        connections++;
        let served = 0;
        s.on('data', () => {
          if (served++ === 0)
            s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
          else s.destroy();
        });
      });
      proxy = await startProxy(
        bootstrapDoc([httpListener({})], [staticCluster('backend', [{ port: up.port }])]),
      );
    });
    after(async () => {
      await proxy.stop();
      await up.close();
    });

    it('retries a bodiless request on a fresh connection', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 10; i++) {
        const r = await request(proxy.port(), { path: `/r${i}`, agent });
        assert.equal(r.status, 200, `request ${i}`);
        assert.equal(r.body, 'ok');
      }
      agent.destroy();
      assert.ok(connections >= 10, `expected a fresh upstream connection per request, saw ${connections}`);
      assert.ok(proxy.server.stats.counter('cluster.backend.upstream_rq_retry').value >= 9);
    });

    it('does not send a POST again once the upstream may have seen it', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const retries = (): number => proxy.server.stats.counter('cluster.backend.upstream_rq_retry').value;
      const post = (path: string): ReturnType<typeof request> =>
        request(proxy.port(), { method: 'POST', path, agent, headers: { 'content-length': '0' } });
      // A fresh upstream connection answers once; the next POST on it is read, then the connection is reset.
      assert.equal((await request(proxy.port(), { path: '/warm', agent })).status, 200);
      const before = { retries: retries(), connections };
      const r = await post('/p');
      agent.destroy();
      assert.equal(r.status, 503);
      assert.equal(retries(), before.retries, 'the POST was not sent again');
      assert.equal(connections, before.connections, 'no new upstream connection was opened for it');
    });
  },
);
