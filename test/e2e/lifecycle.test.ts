import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { spawnProxy, waitFor, writeBootstrap } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

/** Reads the ports a spawned proxy bound from its admin /config_dump-independent log line. */
async function portsOf(p: ProxyProcess): Promise<{ admin: number; http: number }> {
  const line = (await waitFor(() => /proxy ready (\{.*\})/.exec(p.output()), 15_000, 'proxy ready'))!;
  const info = JSON.parse(line[1]) as { listeners: string[]; admin: number };
  const http = Number(info.listeners[0].split(':').pop());
  return { admin: info.admin, http };
}

describe('the weft proxy process', { timeout: 60_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  before(async () => {
    up = await startHttpUpstream({
      handler: (req, res) => {
        const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? '0');
        setTimeout(() => res.end('done'), delay);
      },
    });
  });
  after(() => up.close());

  it('rejects a bootstrap with a bad field, naming its path, and exits 1', async () => {
    const doc = bootstrapDoc(
      [],
      [staticCluster('a', [{ port: 1 }]), staticCluster('b', [{ port: 2 }], { lb_policy: 'ROUND_ROBINN' })],
    );
    const p = spawnProxy(writeBootstrap(doc));
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /static_resources\.clusters\[1\]\.lb_policy: unknown value "ROUND_ROBINN"/);
  });

  it('rejects unknown fields and unsupported extensions', async () => {
    const doc = bootstrapDoc([], [staticCluster('a', [{ port: 1 }], { lb_polcy: 'RANDOM' })]);
    const p = spawnProxy(writeBootstrap(doc));
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /static_resources\.clusters\[0\]\.lb_polcy: unknown field/);
  });

  it('serves admin endpoints, then drains in-flight requests on SIGTERM and exits 0', async () => {
    const p = spawnProxy(
      writeBootstrap(bootstrapDoc([httpListener({})], [staticCluster('backend', [{ port: up.port }])])),
    );
    try {
      const ports = await portsOf(p);
      const ready = await request(ports.admin, { path: '/ready' });
      assert.equal(ready.status, 200);
      assert.match(ready.body, /LIVE/);
      const info = JSON.parse((await request(ports.admin, { path: '/server_info' })).body);
      assert.equal(info.state, 'LIVE');
      const dump = JSON.parse((await request(ports.admin, { path: '/config_dump' })).body);
      assert.equal(dump.configs[0].bootstrap.static_resources.clusters[0].name, 'backend');
      await request(ports.http, { path: '/' });
      const clusters = (await request(ports.admin, { path: '/clusters' })).body;
      assert.match(clusters, new RegExp(`backend::127\\.0\\.0\\.1:${up.port}::health_flags::healthy`));
      assert.match(clusters, new RegExp(`backend::127\\.0\\.0\\.1:${up.port}::cx_active::1`));
      const stats = (await request(ports.admin, { path: '/stats' })).body;
      assert.match(stats, /http\.ingress_http\.downstream_rq_total: 1/);
      assert.match(stats, /cluster\.backend\.upstream_rq_2xx: 1/);
      const prom = (await request(ports.admin, { path: '/stats/prometheus' })).body;
      assert.match(prom, /envoy_cluster_upstream_rq_total\{envoy_cluster_name="backend"\} 1/);
      assert.equal((await request(ports.admin, { path: '/quitquitquit' })).status, 405);

      // A slow request in flight when SIGTERM arrives still completes.
      const slow = request(ports.http, { path: '/?delay=700' });
      await new Promise((r) => setTimeout(r, 150));
      p.kill('SIGTERM');
      const r = await slow;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'done');
      assert.equal(await p.exited, 0);
      // And nothing listens any more.
      await assert.rejects(request(ports.http, { path: '/' }));
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('on SIGTERM, a connection accepted just before gets to send its request and is answered', async () => {
    const p = spawnProxy(
      writeBootstrap(bootstrapDoc([httpListener({})], [staticCluster('backend', [{ port: up.port }])])),
    );
    try {
      const ports = await portsOf(p);
      // Accepted, but its request only comes after the drain began: nothing else is in flight, so a proxy that
      // stops as soon as no request is active would reset it.
      const fresh = net.connect(ports.http, '127.0.0.1');
      await once(fresh, 'connect');
      let reply = '';
      fresh.on('data', (d: Buffer) => (reply += d.toString('latin1')));
      fresh.on('error', () => undefined);
      const closed = once(fresh, 'close');
      await new Promise((r) => setTimeout(r, 50));
      p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      fresh.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await closed;
      assert.match(reply, /^HTTP\/1\.1 200 /, `answered: ${JSON.stringify(reply)}`);
      assert.match(reply, /done$/);
      assert.equal(await p.exited, 0);
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('POST /drain_listeners stops accepting and POST /quitquitquit exits', async () => {
    const p = spawnProxy(
      writeBootstrap(bootstrapDoc([httpListener({})], [staticCluster('backend', [{ port: up.port }])])),
    );
    try {
      const ports = await portsOf(p);
      const agent = new http.Agent({ keepAlive: true });
      assert.equal((await request(ports.http, { agent })).status, 200);
      assert.equal((await request(ports.admin, { path: '/drain_listeners', method: 'POST' })).status, 200);
      await assert.rejects(request(ports.http, { path: '/' }));
      assert.equal((await request(ports.admin, { path: '/quitquitquit', method: 'POST' })).status, 200);
      assert.equal(await p.exited, 0);
      agent.destroy();
    } finally {
      p.kill('SIGKILL');
    }
  });
});
