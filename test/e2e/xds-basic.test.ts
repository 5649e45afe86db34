import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestAdsServer, TYPES } from '../support/ads-server.ts';
import { request } from '../support/http.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { adsBootstrap, assignment, edsCluster, rdsListener, routeConfig, routeTo } from '../support/xds.ts';

describe('xDS: initial configuration (state of the world)', { timeout: 60_000 }, () => {
  let ads: TestAdsServer;
  let a: Awaited<ReturnType<typeof startHttpUpstream>>;
  let proxy: RunningProxy;

  before(async () => {
    a = await startHttpUpstream({ name: 'a' });
    ads = await TestAdsServer.start();
    ads.set(TYPES.cluster, [edsCluster('web')]);
    ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }])]);
    ads.set(TYPES.listener, [rdsListener('http', 'web-routes')]);
    ads.set(TYPES.route, [routeConfig('web-routes', [routeTo('web')])]);
    proxy = await startProxy(adsBootstrap(ads.port));
  });
  after(async () => {
    await proxy.stop();
    ads.stop();
    await a.close();
  });

  it('is ready once listeners, clusters, routes and endpoints are applied, and traffic flows', async () => {
    assert.equal(proxy.server.isReady(), true);
    const r = await request(proxy.port('http'), { path: '/x' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).name, 'a');
    const ready = await request(proxy.adminPort, { path: '/ready' });
    assert.equal(ready.status, 200);
  });

  it('ACKs each type with its version and the response nonce', async () => {
    for (const t of [TYPES.cluster, TYPES.endpoint, TYPES.listener, TYPES.route]) {
      await ads.waitForAck(t, 'v1');
    }
    const first = ads.requests.find((r) => r.stream === 1)!;
    assert.equal(first.json.type_url, TYPES.cluster, 'clusters are requested first');
    assert.equal(
      (first.json.node as { id: string }).id,
      'sidecar~127.0.0.1~test-1.default~default.svc.cluster.local',
    );
    const eds = await ads.waitForRequest((r) => r.json.type_url === TYPES.endpoint);
    assert.deepEqual(eds.json.resource_names, ['web']);
    const rds = await ads.waitForRequest((r) => r.json.type_url === TYPES.route);
    assert.deepEqual(rds.json.resource_names, ['web-routes']);
  });

  it('shows the dynamic configuration in /config_dump with versions', async () => {
    const dump = JSON.parse((await request(proxy.adminPort, { path: '/config_dump' })).body);
    const listeners = dump.configs.find((c: { '@type': string }) =>
      c['@type'].endsWith('ListenersConfigDump'),
    );
    assert.equal(listeners.version_info, 'v1');
    assert.equal(listeners.dynamic_listeners[0].name, 'http');
    assert.equal(listeners.dynamic_listeners[0].active_state.version_info, 'v1');
    assert.equal(listeners.dynamic_listeners[0].active_state.listener['@type'], TYPES.listener);
    assert.match(listeners.dynamic_listeners[0].active_state.last_updated, /^\d{4}-\d\d-\d\dT/);
    const clusters = dump.configs.find((c: { '@type': string }) => c['@type'].endsWith('ClustersConfigDump'));
    assert.equal(clusters.dynamic_active_clusters[0].cluster.name, 'web');
    assert.equal(clusters.static_clusters[0].cluster.name, 'xds-grpc');
    const routes = dump.configs.find((c: { '@type': string }) => c['@type'].endsWith('RoutesConfigDump'));
    assert.equal(routes.dynamic_route_configs[0].route_config.name, 'web-routes');
    const endpoints = dump.configs.find((c: { '@type': string }) =>
      c['@type'].endsWith('EndpointsConfigDump'),
    );
    assert.equal(endpoints.dynamic_endpoint_configs[0].endpoint_config.cluster_name, 'web');
    const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
    assert.match(stats, /listener_manager\.lds\.update_success: 1/);
    assert.match(stats, /cluster_manager\.cds\.update_success: 1/);
    assert.match(stats, /control_plane\.connected_state: 1/);
    assert.match(stats, /http\.http\.rds\.web-routes\.update_success: 1/);
    assert.match(stats, /cluster\.web\.update_success: 1/);
    await waitFor(() => proxy.server.isReady());
  });

  it('applies a large response (2,000 clusters in one multi-frame message) and ACKs it', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => edsCluster(`svc-${i}`, { lb_policy: 'RANDOM' }));
    const v = ads.set(TYPES.cluster, [edsCluster('web'), ...many]);
    const endpoints = Array.from({ length: 2000 }, (_, i) => assignment(`svc-${i}`, [{ port: 10_000 + i }]));
    ads.set(TYPES.endpoint, [assignment('web', [{ port: a.port }]), ...endpoints]);
    await ads.waitForAck(TYPES.cluster, v, 30_000);
    await waitFor(
      () => proxy.server.clusterManager.get('svc-1999')?.cluster.hosts().length === 1,
      30_000,
      'the EDS clusters',
    );
    assert.equal((await request(proxy.port('http'), { path: '/' })).status, 200);
    const restore = ads.set(TYPES.cluster, [edsCluster('web')]);
    await ads.waitForAck(TYPES.cluster, restore, 30_000);
    assert.equal(proxy.server.clusterManager.get('svc-0'), undefined);
    // A removed cluster's stats go with it.
    await waitFor(
      async () => !(await request(proxy.adminPort, { path: '/stats' })).body.includes('cluster.svc-'),
    );
  });
});
