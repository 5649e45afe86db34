import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMessage, EncodedAny } from '../../src/api/envoy/wire.ts';
import { TestAdsServer, TYPES } from '../support/ads-server.ts';
import { request } from '../support/http.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { adsBootstrap, assignment, edsCluster, rdsListener, routeConfig, routeTo } from '../support/xds.ts';

for (const delta of [false, true]) {
  describe(
    `xDS: bad resources are refused, the last good config keeps serving (${delta ? 'delta' : 'state of the world'})`,
    { timeout: 60_000 },
    () => {
      let ads: TestAdsServer;
      let up: Awaited<ReturnType<typeof startHttpUpstream>>;
      let proxy: RunningProxy;
      const good = (): Promise<void> =>
        request(proxy.port('http'), { path: '/' }).then((r) => {
          assert.equal(r.status, 200);
          assert.equal(JSON.parse(r.body).name, 'up');
        });

      before(async () => {
        up = await startHttpUpstream({ name: 'up' });
        ads = await TestAdsServer.start();
        ads.set(TYPES.cluster, [edsCluster('web')]);
        ads.set(TYPES.endpoint, [assignment('web', [{ port: up.port }])]);
        ads.set(TYPES.listener, [rdsListener('http', 'routes')]);
        ads.set(TYPES.route, [routeConfig('routes', [routeTo('web')])]);
        proxy = await startProxy(adsBootstrap(ads.port, { delta }));
      });
      after(async () => {
        await proxy.stop();
        ads.stop();
        await up.close();
      });

      it('a cluster with an unknown lb_policy: NACK naming the resource and field, previous version kept', async () => {
        await good();
        const accepted = ads.version(TYPES.cluster);
        await ads.waitForAck(TYPES.cluster, accepted);
        ads.set(TYPES.cluster, [edsCluster('web'), { name: 'bad', type: 'STATIC', lb_policy: 42 }]);
        const nack = await ads.waitForNack(TYPES.cluster);
        const detail = nack.json.error_detail as { code: number; message: string };
        assert.equal(detail.code, 3);
        assert.equal(detail.message, 'Cluster "bad": lb_policy: unknown value 42');
        if (!delta)
          assert.equal(nack.json.version_info, accepted, 'a NACK carries the last accepted version');
        assert.ok(nack.json.response_nonce);
        await good();
        assert.equal(proxy.server.clusterManager.get('bad'), undefined);
        const stats = (await request(proxy.adminPort, { path: '/stats?filter=cds' })).body;
        assert.match(stats, /cluster_manager\.cds\.update_rejected: 1/);
        const dump = JSON.parse((await request(proxy.adminPort, { path: '/config_dump' })).body);
        const clusters = dump.configs.find((c: { '@type': string }) =>
          c['@type'].endsWith('ClustersConfigDump'),
        );
        assert.equal(clusters.dynamic_failed_clusters[0].name, 'bad');
        assert.match(clusters.dynamic_failed_clusters[0].error_state.details, /lb_policy: unknown value 42/);
      });

      it('the next good response is accepted', async () => {
        const v = ads.set(TYPES.cluster, [
          edsCluster('web'),
          { name: 'fixed', type: 'STATIC', lb_policy: 'RANDOM' },
        ]);
        await ads.waitForAck(TYPES.cluster, v);
        await waitFor(() => proxy.server.clusterManager.get('fixed'));
        await good();
      });

      it('a bad listener, route configuration and assignment are each refused by path', async () => {
        ads.set(TYPES.listener, [
          rdsListener('http', 'routes'),
          rdsListener('other', 'routes', { hcm: { codec_type: 'HTTP3' } }),
        ]);
        const l = await ads.waitForNack(TYPES.listener);
        assert.equal(
          (l.json.error_detail as { message: string }).message,
          'Listener "other": filter_chains[0].filters[0].typed_config.codec_type: HTTP3 is not supported by Weft (AUTO, HTTP1 or HTTP2)',
        );
        ads.set(TYPES.route, [
          routeConfig('routes', [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'web' } }]),
        ]);
        const r = await ads.waitForNack(TYPES.route);
        assert.match(
          (r.json.error_detail as { message: string }).message,
          /^RouteConfiguration "routes": virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex/,
        );
        ads.set(TYPES.endpoint, [
          {
            cluster_name: 'web',
            endpoints: [
              {
                lb_endpoints: [
                  { endpoint: { address: { socket_address: { address: 'example.com', port_value: 80 } } } },
                ],
              },
            ],
          },
        ]);
        const e = await ads.waitForNack(TYPES.endpoint);
        assert.match(
          (e.json.error_detail as { message: string }).message,
          /^ClusterLoadAssignment "web": endpoints\[0\]\.lb_endpoints\[0\]\.endpoint\.address\.socket_address\.address: "example\.com" is not an IP address/,
        );
        await good();
        assert.equal(proxy.server.listenerPort('other'), undefined);
      });

      it('an undecodable resource is refused by position; the stream goes on', async () => {
        const streams = ads.streamCount;
        const typeUrl = TYPES.cluster;
        const body = delta
          ? {
              system_version_info: 'garbage',
              resources: [
                { name: 'x', version: '1', resource: new EncodedAny(typeUrl, Buffer.from([0x0a, 0xff])) },
              ],
              type_url: typeUrl,
              nonce: 'garbage-1',
            }
          : {
              version_info: 'garbage',
              resources: [new EncodedAny(typeUrl, Buffer.from([0x0a, 0xff]))],
              type_url: typeUrl,
              nonce: 'garbage-1',
            };
        const type = delta
          ? 'envoy.service.discovery.v3.DeltaDiscoveryResponse'
          : 'envoy.service.discovery.v3.DiscoveryResponse';
        ads.sendRaw(Buffer.from(encodeMessage(type, body)));
        const nack = await ads.waitForRequest((r) => r.json.response_nonce === 'garbage-1');
        assert.match(
          (nack.json.error_detail as { message: string }).message,
          delta ? /^Cluster "x": malformed/ : /^Cluster "resources\[0\]": malformed/,
        );
        assert.equal(ads.streamCount, streams);
        await good();
      });

      it('a message that is not a response at all ends the stream; the proxy reconnects and keeps serving', async () => {
        const streams = ads.streamCount;
        ads.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff]));
        await waitFor(() => ads.streamCount > streams, 10_000, 'a new ADS stream');
        await good();
        await waitFor(() => ads.connectedStreams() === 1);
      });
    },
  );
}
