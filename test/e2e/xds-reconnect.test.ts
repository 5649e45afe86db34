/**
 * The control plane goes away and comes back: the proxy keeps serving its last configuration, reconnects
 * with backoff, resubscribes with what it holds (versions in the state of the world,
 * initial_resource_versions in delta), and applies what changed meanwhile.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestAdsServer, TYPES } from '../support/ads-server.ts';
import { request } from '../support/http.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { adsBootstrap, assignment, edsCluster, rdsListener, routeConfig, routeTo } from '../support/xds.ts';

for (const delta of [false, true]) {
  describe(
    `xDS: control plane restarts (${delta ? 'delta' : 'state of the world'})`,
    { timeout: 60_000 },
    () => {
      let ads: TestAdsServer;
      let a: Awaited<ReturnType<typeof startHttpUpstream>>;
      let b: Awaited<ReturnType<typeof startHttpUpstream>>;
      let proxy: RunningProxy;
      const answeredBy = async (): Promise<string> => {
        const r = await request(proxy.port('http'), { path: '/' });
        assert.equal(r.status, 200);
        return (JSON.parse(r.body) as { name: string }).name;
      };

      before(async () => {
        a = await startHttpUpstream({ name: 'a' });
        b = await startHttpUpstream({ name: 'b' });
        ads = await TestAdsServer.start();
        ads.set(TYPES.cluster, [edsCluster('web')]);
        ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }])]);
        ads.set(TYPES.listener, [rdsListener('http', 'routes')]);
        ads.set(TYPES.route, [routeConfig('routes', [routeTo('web')])]);
        proxy = await startProxy(adsBootstrap(ads.port, { delta }), {
          xdsBackoff: { baseMs: 50, maxMs: 400 },
        });
      });
      after(async () => {
        await proxy.stop();
        ads.stop();
        await Promise.all([a.close(), b.close()]);
      });

      it('keeps serving while the control plane is down, and retries with backoff', async () => {
        assert.equal(await answeredBy(), 'a');
        const stream1 = ads.streamCount;
        ads.stop();
        await waitFor(async () =>
          /control_plane\.connected_state: 0/.test((await request(proxy.adminPort, { path: '/stats' })).body),
        );
        for (let i = 0; i < 20; i++) assert.equal(await answeredBy(), 'a');
        assert.equal(proxy.server.isReady(), true, 'still LIVE');
        const attempts = proxy.server.ads!.attempts;
        await waitFor(() => proxy.server.ads!.attempts >= attempts + 2, 5000, 'reconnect attempts');
        assert.equal(ads.streamCount, stream1);
      });

      it('reconnects, resubscribes with what it holds, and applies what changed meanwhile', async () => {
        const requestsBefore = ads.requests.length;
        // While the control plane is down, its state moves on.
        ads.set(TYPES.endpoint, [assignment('web', [{ port: b.port }])]);
        await ads.listen();
        const resumed = await ads.waitForRequest(
          (r) => ads.requests.indexOf(r) >= requestsBefore,
          10_000,
          'a new stream',
        );
        const stream = resumed.stream;
        assert.ok(
          (resumed.json.node as { id: string }).id.startsWith('sidecar~'),
          'the first request of the new stream carries the node',
        );
        const first = (type: string) =>
          ads.waitForRequest((r) => r.stream === stream && r.json.type_url === type);
        const cds = await first(TYPES.cluster);
        const lds = await first(TYPES.listener);
        const eds = await first(TYPES.endpoint);
        const rds = await first(TYPES.route);
        if (delta) {
          assert.deepEqual(
            cds.json.initial_resource_versions && Object.keys(cds.json.initial_resource_versions),
            ['web'],
          );
          assert.deepEqual(
            lds.json.initial_resource_versions && Object.keys(lds.json.initial_resource_versions),
            ['http'],
          );
          assert.deepEqual(eds.json.resource_names_subscribe, ['web']);
          assert.deepEqual(rds.json.resource_names_subscribe, ['routes']);
          assert.deepEqual(Object.keys(rds.json.initial_resource_versions as object), ['routes']);
        } else {
          assert.equal(
            cds.json.version_info,
            'v1',
            'the state of the world resumes from the last accepted version',
          );
          assert.equal(lds.json.version_info, 'v1');
          assert.equal(cds.json.response_nonce ?? '', '');
          assert.deepEqual(eds.json.resource_names, ['web']);
          assert.deepEqual(rds.json.resource_names, ['routes']);
        }
        await waitFor(
          async () => (await answeredBy()) === 'b',
          10_000,
          'the endpoint change made while disconnected',
        );
        const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
        assert.match(stats, /control_plane\.connected_state: 1/);
        assert.match(stats, /listener_manager\.lds\.update_failure: [1-9]/);
      });

      it('takes updates on the new stream', async () => {
        const v = ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }])]);
        await ads.waitForAck(TYPES.endpoint, v);
        await waitFor(async () => (await answeredBy()) === 'a');
      });
    },
  );
}
