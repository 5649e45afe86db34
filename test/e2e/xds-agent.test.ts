/**
 * `weft proxy --xds-address ...`: the proxy builds its own bootstrap as istio-agent does, identifies
 * itself to the control plane the way Istio's sidecars do, and serves Prometheus stats and the readiness
 * probe on their own ports.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { TestAdsServer, TYPES } from '../support/ads-server.ts';
import { request } from '../support/http.ts';
import { REPO, launcherNodeFlags, spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import { assignment, edsCluster, rdsListener, routeConfig, routeTo } from '../support/xds.ts';

function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...launcherNodeFlags(), path.join(REPO, 'dist/cli/main.js'), 'proxy', ...args],
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('weft proxy as a mesh sidecar (istio-agent style bootstrap)', { timeout: 60_000 }, () => {
  for (const delta of [false, true]) {
    describe(delta ? 'delta xDS' : 'state of the world', () => {
      let ads: TestAdsServer;
      let up: Awaited<ReturnType<typeof startHttpUpstream>>;
      let proxy: ProxyProcess;
      let ports: { admin: number; prometheus: number; health: number };

      before(async () => {
        up = await startHttpUpstream({ name: 'up' });
        ads = await TestAdsServer.start();
        ports = { admin: await closedPort(), prometheus: await closedPort(), health: await closedPort() };
        proxy = spawnWeftProxy([
          '--xds-address',
          `127.0.0.1:${ads.port}`,
          '--name',
          'reviews-v1-7d9f',
          '--namespace',
          'bookinfo',
          '--ip',
          '10.44.0.7',
          '--labels',
          'app=reviews,version=v1',
          '--service-account',
          'bookinfo-reviews',
          '--locality',
          'eu-west/eu-west-1a/rack-4',
          '--workload-name',
          'reviews-v1',
          '--admin-port',
          String(ports.admin),
          '--prometheus-port',
          String(ports.prometheus),
          '--health-port',
          String(ports.health),
          ...(delta ? [] : ['--sotw']),
        ]);
      });
      after(async () => {
        proxy.kill('SIGKILL');
        await proxy.exited;
        ads.stop();
        await up.close();
      });

      it('identifies itself with the Istio node id, cluster, metadata and locality', async () => {
        const first = await ads.waitForRequest(() => true, 15_000, 'the first ADS request');
        assert.equal(first.mode, delta ? 'delta' : 'sotw');
        const node = first.json.node as Record<string, unknown>;
        assert.equal(node.id, 'sidecar~10.44.0.7~reviews-v1-7d9f.bookinfo~bookinfo.svc.cluster.local');
        assert.equal(node.cluster, 'reviews.bookinfo');
        assert.deepEqual(node.locality, { region: 'eu-west', zone: 'eu-west-1a', sub_zone: 'rack-4' });
        assert.equal(node.user_agent_name, 'weft');
        const md = node.metadata as Record<string, unknown>;
        assert.equal(md.NAME, 'reviews-v1-7d9f');
        assert.equal(md.NAMESPACE, 'bookinfo');
        assert.deepEqual(md.LABELS, { app: 'reviews', version: 'v1' });
        assert.equal(md.SERVICE_ACCOUNT, 'bookinfo-reviews');
        assert.equal(md.WORKLOAD_NAME, 'reviews-v1');
        assert.equal(md.INSTANCE_IPS, '10.44.0.7');
        assert.equal(md.INTERCEPTION_MODE, 'NONE');
        assert.equal(md.CLUSTER_ID, 'Kubernetes');
        assert.equal(typeof md.ISTIO_VERSION, 'string');
        assert.equal(md.WEFT_ADMIN_PORT, ports.admin);
        assert.equal(md.ENVOY_PROMETHEUS_PORT, ports.prometheus);
        assert.equal(md.ENVOY_STATUS_PORT, ports.health);
        // The node goes in a stream's first request only (the bootstrap sets set_node_on_first_message_only).
        const second = await ads.waitForRequest((r) => r !== first && r.stream === first.stream);
        assert.equal(second.json.node, undefined);
      });

      it('reports not ready on the health port until its configuration arrives, then ready', async () => {
        const notReady = await waitFor(
          () => request(ports.health, { path: '/healthz/ready' }),
          10_000,
          'the health listener',
        );
        assert.equal(notReady.status, 503);
        ads.set(TYPES.cluster, [
          edsCluster('outbound|9080||reviews.bookinfo.svc.cluster.local', {
            eds_cluster_config: { eds_config: { ads: {} }, service_name: 'reviews' },
          }),
        ]);
        ads.set(TYPES.endpoint, [assignment('reviews', [{ port: up.port }])]);
        ads.set(TYPES.listener, [rdsListener('outbound_9080', '9080')]);
        ads.set(TYPES.route, [
          routeConfig('9080', [routeTo('outbound|9080||reviews.bookinfo.svc.cluster.local')]),
        ]);
        await waitFor(
          async () => (await request(ports.health, { path: '/healthz/ready' })).status === 200,
          15_000,
          'ready',
        );
        const dump = JSON.parse((await request(ports.admin, { path: '/config_dump' })).body);
        const listeners = dump.configs.find((c: { '@type': string }) =>
          c['@type'].endsWith('ListenersConfigDump'),
        );
        assert.equal(listeners.dynamic_listeners[0].name, 'outbound_9080');
      });

      it('serves Prometheus stats on its own port, with the xDS stats', async () => {
        const prom = await request(ports.prometheus, { path: '/stats/prometheus' });
        assert.equal(prom.status, 200);
        assert.match(prom.body, /envoy_listener_manager_lds_update_success 1/);
        assert.match(prom.body, /envoy_control_plane_connected_state 1/);
        assert.equal(
          (await request(ports.prometheus, { path: '/config_dump' })).status,
          404,
          'only stats on this port',
        );
      });
    });
  }

  it('prints its bootstrap, and refuses incomplete or bad identities', async () => {
    const printed = await weft([
      '--xds-address',
      'istiod.istio-system.svc:15010',
      '--name',
      'gw-1',
      '--namespace',
      'istio-system',
      '--type',
      'router',
      '--ip',
      '10.0.0.1',
      '--print-bootstrap',
    ]);
    assert.equal(printed.code, 0, printed.stderr);
    const doc = JSON.parse(printed.stdout);
    assert.equal(doc.node.id, 'router~10.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local');
    assert.equal(doc.static_resources.clusters[0].type, 'STRICT_DNS');
    assert.equal(doc.static_resources.listeners[0].address.socket_address.port_value, 15090);
    assert.equal(doc.static_resources.listeners[1].address.socket_address.port_value, 15021);
    assert.equal(doc.admin.address.socket_address.port_value, 15000);
    const noName = await weft(['--xds-address', '127.0.0.1:15010']);
    assert.equal(noName.code, 1);
    assert.match(noName.stderr, /--name: required with --xds-address/);
    const neither = await weft([]);
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /either --bootstrap FILE or --xds-address HOST:PORT is required/);
    const badIp = await weft(['--xds-address', '127.0.0.1:15010', '--name', 'a', '--ip', 'nope']);
    assert.match(badIp.stderr, /--ip: "nope" is not an IP address/);
  });
});
