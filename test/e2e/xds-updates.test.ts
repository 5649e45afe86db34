/**
 * Listener, route, cluster and endpoint updates under continuous load: not one request may fail, and
 * requests in flight during an update (long-running, or still sending their body) complete.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { TestAdsServer, TYPES } from '../support/ads-server.ts';
import { request } from '../support/http.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { adsBootstrap, assignment, edsCluster, rdsListener, routeConfig, routeTo } from '../support/xds.ts';

/** An upstream that answers with its name after `?delay=ms`, and reads (and counts) any request body. */
function named(name: string): Promise<Awaited<ReturnType<typeof startHttpUpstream>>> {
  return startHttpUpstream({
    name,
    handler: (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? '0');
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ name, bytes }));
        }, delay);
      });
    },
  });
}

/** Keep-alive clients sending requests back to back until stopped; every failure is kept. */
class Load {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
  readonly byUpstream = new Map<string, number>();
  readonly failures: string[] = [];
  readonly servers = new Set<string>();
  total = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(port: number, concurrency = 6) {
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop(port));
  }

  private async loop(port: number): Promise<void> {
    while (this.running) {
      try {
        const r = await request(port, { path: '/load', agent: this.agent });
        this.total++;
        if (r.status !== 200) this.failures.push(`${r.status} ${r.body}`);
        else {
          const name = (JSON.parse(r.body) as { name: string }).name;
          this.byUpstream.set(name, (this.byUpstream.get(name) ?? 0) + 1);
          this.servers.add(String(r.headers.server));
        }
      } catch (err) {
        this.total++;
        this.failures.push(String(err));
      }
    }
  }

  /** Waits until `n` more requests were answered by `name`. */
  async reach(name: string, n = 20): Promise<void> {
    const start = this.byUpstream.get(name) ?? 0;
    await waitFor(() => (this.byUpstream.get(name) ?? 0) >= start + n, 10_000, `traffic to ${name}`);
  }

  /** Counts what is answered from now on. */
  mark(): Map<string, number> {
    return new Map(this.byUpstream);
  }

  since(mark: Map<string, number>, name: string): number {
    return (this.byUpstream.get(name) ?? 0) - (mark.get(name) ?? 0);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
  }
}

/** Lets requests already sent before an update (to the old hosts) finish before counting. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 100));
}

/** A request whose body is sent in two halves, `gapMs` apart; resolves with the response. */
function slowUpload(
  port: number,
  gapMs: number,
  wait: Promise<void>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/upload',
        headers: { 'content-length': '20000' },
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.write(Buffer.alloc(10000, 'a'));
    void wait.then(() => setTimeout(() => req.end(Buffer.alloc(10000, 'b')), gapMs));
  });
}

for (const delta of [false, true])
  describe(
    `xDS updates under continuous load (${delta ? 'delta' : 'state of the world'})`,
    { timeout: 120_000 },
    () => {
      let ads: TestAdsServer;
      let a: Awaited<ReturnType<typeof named>>;
      let b: Awaited<ReturnType<typeof named>>;
      let c: Awaited<ReturnType<typeof named>>;
      let proxy: RunningProxy;
      let load: Load;
      let port = 0;

      before(async () => {
        [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
        ads = await TestAdsServer.start();
        ads.set(TYPES.cluster, [edsCluster('web')]);
        ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }])]);
        ads.set(TYPES.listener, [rdsListener('http', 'routes')]);
        ads.set(TYPES.route, [routeConfig('routes', [routeTo('web')])]);
        proxy = await startProxy(adsBootstrap(ads.port, { delta }), { drainMs: 2000 });
        port = proxy.port('http');
        load = new Load(port);
        await load.reach('a');
      });
      after(async () => {
        await load.stop();
        await proxy.stop();
        ads.stop();
        await Promise.all([a.close(), b.close(), c.close()]);
      });

      it('endpoints: added hosts take traffic, removed ones stop, hosts that stay keep their pool', async () => {
        const entry = proxy.server.clusterManager.get('web')!;
        const hostA = entry.cluster.hosts()[0];
        const poolA = entry.pool(hostA);
        const v = ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }, { port: b.port }])]);
        await ads.waitForAck(TYPES.endpoint, v);
        await load.reach('b');
        assert.equal(proxy.server.clusterManager.get('web'), entry, 'an endpoint update keeps the cluster');
        assert.equal(entry.cluster.hosts()[0], hostA, 'a host that stays keeps its Host object');
        assert.equal(entry.pool(hostA), poolA, '... and its connection pool');

        const v2 = ads.set(TYPES.endpoint, [assignment('web', [{ port: b.port }])]);
        await ads.waitForAck(TYPES.endpoint, v2);
        await settle();
        const mark = load.mark();
        await load.reach('b', 50);
        assert.equal(load.since(mark, 'a'), 0, 'no traffic to a removed endpoint');
        assert.deepEqual(load.failures, []);
      });

      it('health status from EDS applies to hosts in place', async () => {
        const v = ads.set(TYPES.endpoint, [
          assignment('web', [{ port: b.port }, { port: c.port, health: 'UNHEALTHY' }]),
        ]);
        await ads.waitForAck(TYPES.endpoint, v);
        await settle();
        const mark = load.mark();
        await load.reach('b', 40);
        assert.equal(load.since(mark, 'c'), 0, 'an unhealthy endpoint gets no traffic');
        const hostC = proxy.server.clusterManager.get('web')!.cluster.hosts()[1];
        const v2 = ads.set(TYPES.endpoint, [
          assignment('web', [{ port: b.port }, { port: c.port, health: 'HEALTHY' }]),
        ]);
        await ads.waitForAck(TYPES.endpoint, v2);
        await load.reach('c');
        assert.equal(proxy.server.clusterManager.get('web')!.cluster.hosts()[1], hostC);
        assert.deepEqual(load.failures, []);
      });

      it('routes: a new route table applies to existing keep-alive connections on their next request', async () => {
        const cv = ads.set(TYPES.cluster, [edsCluster('web'), edsCluster('api')]);
        const ev = ads.set(TYPES.endpoint, [
          assignment('web', [{ port: b.port }, { port: c.port }]),
          assignment('api', [{ port: a.port }]),
        ]);
        await ads.waitForAck(TYPES.cluster, cv);
        await ads.waitForAck(TYPES.endpoint, ev);
        await waitFor(() => proxy.server.clusterManager.get('api')?.cluster.hosts().length === 1);
        const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const first = await request(port, { path: '/', agent: keepAlive });
        assert.notEqual(JSON.parse(first.body).name, 'a');
        const rv = ads.set(TYPES.route, [routeConfig('routes', [routeTo('api')])]);
        await ads.waitForAck(TYPES.route, rv);
        await load.reach('a');
        const second = await request(port, { path: '/', agent: keepAlive });
        assert.equal(JSON.parse(second.body).name, 'a', 'the same keep-alive connection sees the new route');
        assert.equal(second.headers.connection, 'keep-alive');
        keepAlive.destroy();
        assert.deepEqual(load.failures, []);
      });

      it('clusters: a changed cluster replaces the old one, an unchanged one is untouched', async () => {
        const web = proxy.server.clusterManager.get('web');
        const api = proxy.server.clusterManager.get('api');
        const cv = ads.set(TYPES.cluster, [edsCluster('web'), edsCluster('api', { lb_policy: 'RANDOM' })]);
        await ads.waitForAck(TYPES.cluster, cv);
        assert.equal(proxy.server.clusterManager.get('web'), web, 'unchanged cluster untouched');
        const replaced = proxy.server.clusterManager.get('api')!;
        assert.notEqual(replaced, api);
        assert.equal(replaced.config.lbPolicy, 'RANDOM');
        assert.equal(replaced.cluster.hosts().length, 1, 'the updated EDS cluster has its endpoints at once');
        await load.reach('a');
        assert.deepEqual(load.failures, []);
      });

      it('requests in flight during updates complete: long-running, and mid-body', async () => {
        const long = request(port, { path: '/load?delay=1500' });
        let bodyGate!: () => void;
        const upload = slowUpload(port, 50, new Promise<void>((r) => (bodyGate = r)));
        await new Promise((r) => setTimeout(r, 100));
        // Route back to web, change the listener, and remove the api cluster while both are in flight.
        const rv = ads.set(TYPES.route, [routeConfig('routes', [routeTo('web')])]);
        await ads.waitForAck(TYPES.route, rv);
        const lv = ads.set(TYPES.listener, [
          rdsListener('http', 'routes', { hcm: { server_name: 'weft-v2' } }),
        ]);
        await ads.waitForAck(TYPES.listener, lv);
        const cv = ads.set(TYPES.cluster, [edsCluster('web')]);
        await ads.waitForAck(TYPES.cluster, cv);
        assert.equal(proxy.server.clusterManager.get('api'), undefined);
        bodyGate();
        const [l, u] = await Promise.all([long, upload]);
        assert.equal(l.status, 200);
        assert.equal(JSON.parse(l.body).name, 'a', 'the long request finished on the removed cluster');
        assert.equal(u.status, 200);
        assert.deepEqual(JSON.parse(u.body), { name: 'a', bytes: 20000 });
        assert.deepEqual(load.failures, []);
      });

      it('listeners: a changed listener keeps its port and serves new connections with the new chain', async () => {
        assert.equal(proxy.port('http'), port, 'same address, same socket');
        await waitFor(() => load.servers.has('weft-v2'), 10_000, 'responses from the new filter chain');
        const stats = (await request(proxy.adminPort, { path: '/stats?filter=listener_manager' })).body;
        assert.match(stats, /listener_manager\.listener_in_place_updated: 1/);
        // The same listener again, at a new version: untouched (no update, connections stay).
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const before = await request(port, { path: '/', agent });
        const lv = ads.set(
          TYPES.listener,
          [rdsListener('http', 'routes', { hcm: { server_name: 'weft-v2' } })],
          {
            resendAll: true,
          },
        );
        await ads.waitForAck(TYPES.listener, lv);
        const again = await request(port, { path: '/', agent });
        assert.equal(before.status, 200);
        assert.equal(again.headers.connection, 'keep-alive');
        const after = (await request(proxy.adminPort, { path: '/stats?filter=listener_manager' })).body;
        assert.match(after, /listener_manager\.listener_in_place_updated: 1/);
        assert.match(after, /listener_manager\.listener_modified: 1/);
        agent.destroy();
        assert.deepEqual(load.failures, []);
      });

      it('listeners: an added listener serves, a removed one stops accepting', async () => {
        const lv = ads.set(TYPES.listener, [
          rdsListener('http', 'routes', { hcm: { server_name: 'weft-v2' } }),
          rdsListener('second', 'routes'),
        ]);
        await ads.waitForAck(TYPES.listener, lv);
        const second = (await waitFor(() => proxy.server.listenerPort('second')))!;
        assert.equal((await request(second, { path: '/' })).status, 200);
        const lv2 = ads.set(TYPES.listener, [
          rdsListener('http', 'routes', { hcm: { server_name: 'weft-v2' } }),
        ]);
        await ads.waitForAck(TYPES.listener, lv2);
        assert.equal(proxy.server.listenerPort('second'), undefined);
        await assert.rejects(request(second, { path: '/' }));
        assert.ok(load.total > 200, `enough load to mean something (${load.total})`);
        assert.deepEqual(load.failures, []);
      });
    },
  );
