import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, setLogLevel } from '../../core/logger.ts';
import { AdsServer } from '../xds/ads-server.ts';
import type { ProxyStatus } from '../xds/ads-server.ts';
import { AdsTestClient, sidecarNode, testCluster, testEndpoints, TestGenerator } from '../xds/testing.ts';
import { TYPE_URL } from '../xds/types.ts';
import { DebugServer } from './server.ts';

setLogLevel('error');
const run = promisify(execFile);
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../cli/main.ts');
const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => Promise<void> | void, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

describe('control plane debug server and CLI', { timeout: 60_000 }, () => {
  const generator = TestGenerator.sample();
  const ads = new AdsServer({
    generator,
    debounceMs: 5,
    debounceMaxMs: 50,
    logger: createLogger('test-xds'),
  });
  let ready = true;
  const debug = new DebugServer({ ads, ready: () => ready, logger: createLogger('test-debug') });
  let base = '';
  let sotw: AdsTestClient;
  let delta: AdsTestClient;

  before(async () => {
    const port = await ads.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${await debug.listen(0, '127.0.0.1')}`;
    // A real grpc-js stream per proxy: a SotW sidecar fully synced, and a delta one that NACKs its listeners.
    sotw = new AdsTestClient(port, 'sotw');
    sotw.send({ node: sidecarNode('reviews-v1', '10.0.0.1'), type_url: TYPE_URL.cluster });
    sotw.send({ type_url: TYPE_URL.listener });
    const cds = await sotw.next();
    sotw.ack(cds);
    sotw.ack(await sotw.next());
    sotw.send({ type_url: TYPE_URL.endpoint, resource_names: [REVIEWS, RATINGS] });
    sotw.ack(await sotw.next(), [REVIEWS, RATINGS]);
    sotw.send({ type_url: TYPE_URL.route, resource_names: ['9080'] });
    sotw.ack(await sotw.next(), ['9080']);

    delta = new AdsTestClient(port, 'delta');
    delta.send({ node: sidecarNode('ratings-v1', '10.0.0.2'), type_url: TYPE_URL.cluster });
    const dcds = await delta.next();
    delta.send({ type_url: TYPE_URL.cluster, response_nonce: dcds.nonce });
    delta.send({ type_url: TYPE_URL.listener });
    const dlds = await delta.next();
    delta.send({
      type_url: TYPE_URL.listener,
      response_nonce: dlds.nonce,
      error_detail: { code: 3, message: 'listener 0.0.0.0_3306: port in use' },
    });
    await eventually(() => {
      const states = ads.status().flatMap((s) => s.types.map((t) => t.state));
      assert.deepEqual(states.sort(), ['NACK', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
    });
  });

  after(async () => {
    sotw.close();
    delta.close();
    await debug.close();
    await ads.close();
    setLogLevel('info');
  });

  it('answers /ready', async () => {
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    ready = false;
    assert.equal((await fetch(`${base}/ready`)).status, 503);
    ready = true;
  });

  it('serves /debug/syncz as JSON and as a table', async () => {
    const res = await fetch(`${base}/debug/syncz`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const statuses = (await res.json()) as ProxyStatus[];
    assert.deepEqual(
      statuses.map((s) => [s.node.name, s.stream]),
      [
        ['ratings-v1', 'delta'],
        ['reviews-v1', 'sotw'],
      ],
    );
    const lds = statuses[0].types.find((t) => t.typeUrl === TYPE_URL.listener)!;
    assert.equal(lds.state, 'NACK');
    assert.equal(lds.error, 'listener 0.0.0.0_3306: port in use');
    assert.deepEqual(lds.subscribed, ['*']);
    const eds = statuses[1].types.find((t) => t.typeUrl === TYPE_URL.endpoint)!;
    assert.deepEqual(eds.subscribed, [RATINGS, REVIEWS]);
    assert.equal(eds.lastAckedVersion, eds.lastSentVersion);

    const table = await (await fetch(`${base}/debug/syncz?format=table`)).text();
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0], /^NAME\s+TYPE\s+XDS\s+CDS\s+LDS\s+EDS\s+RDS$/);
    assert.match(
      lines[1],
      /^ratings-v1\.default\s+sidecar\s+delta\s+SYNCED \([0-9a-f]{8}\)\s+NACK \([0-9a-f]{8}\)\s+NOT SENT\s+NOT SENT$/,
    );
    assert.match(lines[2], /^reviews-v1\.default\s+sidecar\s+sotw(\s+SYNCED \([0-9a-f]{8}\)){4}$/);
    assert.equal(lines.at(-1), 'ratings-v1.default LDS NACK: listener 0.0.0.0_3306: port in use');
  });

  it('serves the generated config of one proxy, Envoy-style, and 404s an unknown one', async () => {
    const dump = (await (await fetch(`${base}/debug/config_dump?proxyID=reviews-v1.default`)).json()) as {
      node: { id: string };
      configs: { '@type': string; [k: string]: unknown }[];
    };
    assert.equal(dump.node.id, sidecarNode('reviews-v1', '10.0.0.1').id);
    assert.deepEqual(
      dump.configs.map((c) => c['@type'].split('.').at(-1)),
      ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump'],
    );
    const clusters = dump.configs[0].dynamic_active_clusters as {
      cluster: { name: string };
      version_info: string;
    }[];
    assert.deepEqual(clusters.map((c) => c.cluster.name).sort(), [RATINGS, REVIEWS]);
    assert.match(clusters[0].version_info, /^[0-9a-f]{16}$/);
    // The full node id works too.
    const byId = await fetch(`${base}/debug/config_dump?proxyID=${encodeURIComponent(dump.node.id)}`);
    assert.equal(byId.status, 200);
    await byId.body?.cancel();

    const missing = await fetch(`${base}/debug/config_dump?proxyID=nope.default`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'proxy "nope.default" is not connected' });
    const noParam = await fetch(`${base}/debug/config_dump`);
    assert.equal(noParam.status, 400);
    await noParam.body?.cancel();
    const unknown = await fetch(`${base}/debug/nothing`);
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: string }).error, /no such endpoint/);
  });

  it('serves /debug/connections and /debug/push_status', async () => {
    const connections = (await (await fetch(`${base}/debug/connections`)).json()) as { stream: string }[];
    assert.deepEqual(connections.map((c) => c.stream).sort(), ['delta', 'sotw']);
    const stats = (await (await fetch(`${base}/debug/push_status`)).json()) as {
      responses: Record<string, number>;
    };
    assert.equal(stats.responses.cds, 2);
    assert.equal(stats.responses.lds, 2);
  });

  it('serves /debug/memory: RSS beside what V8 and Node account for', async () => {
    const m = (await (await fetch(`${base}/debug/memory`)).json()) as {
      rssMiB: number;
      heapUsedMiB: number;
      heapTotalMiB: number;
      externalMiB: number;
      unaccountedMiB: number;
      heapSpaces: Record<string, { usedMiB: number; committedMiB: number }>;
    };
    const rss = process.memoryUsage().rss / 1048576;
    // Same process: the figures are this test process's own, within what a few allocations can move.
    assert.ok(Math.abs(m.rssMiB - rss) < 64, `rss ${m.rssMiB} vs ${rss}`);
    assert.ok(m.heapUsedMiB > 0 && m.heapUsedMiB <= m.heapTotalMiB);
    assert.ok(m.rssMiB > m.heapUsedMiB);
    assert.ok(m.heapSpaces.old_space.committedMiB > 0);
    const spaces = Object.values(m.heapSpaces).reduce((sum, s) => sum + s.usedMiB, 0);
    assert.ok(Math.abs(spaces - m.heapUsedMiB) < 4, `spaces ${spaces} vs heap used ${m.heapUsedMiB}`);
  });

  it('serves Prometheus metrics that Prometheus parses', async () => {
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.99', port: 9080 }]));
    ads.push({ full: false, reason: 'endpoint' });
    const eds = await sotw.next();
    sotw.ack(eds, [REVIEWS, RATINGS]);
    const res = await fetch(`${base}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^weft_xds_connected_proxies 2$/m);
    assert.match(text, /^weft_xds_pushes_total\{type="cds"\} 2$/m);
    assert.match(text, /^weft_xds_pushes_total\{type="eds"\} 2$/m);
    assert.match(text, /^weft_xds_nacks_total\{type="lds"\} 1$/m);
    assert.match(text, /^weft_xds_push_duration_seconds_count\{type="eds"\} 1$/m);
    assert.match(text, /^weft_xds_push_rounds_total\{kind="eds"\} 1$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    // istiod's names for the same facts.
    assert.match(text, /^pilot_xds\{version="unknown"\} 2$/m);
    assert.match(text, /^pilot_xds_pushes\{type="eds"\} 2$/m);
    assert.match(text, /^pilot_total_xds_rejects\{type="lds"\} 1$/m);
    assert.match(text, /^pilot_total_xds_rejects\{type="cds"\} 0$/m);
    assert.match(
      text,
      /^pilot_xds_lds_reject\{node="sidecar~10\.0\.0\.2~ratings-v1\.default~default\.svc\.cluster\.local",err="listener 0\.0\.0\.0_3306: port in use"\} 1$/m,
    );
    assert.doesNotMatch(text, /^pilot_xds_cds_reject\{/m);
    assert.match(text, /^pilot_xds_push_time_count\{type="eds"\} 1$/m);
    assert.match(text, /^pilot_proxy_convergence_time_bucket\{le="30"\} 1$/m);
    assert.match(text, /^pilot_proxy_convergence_time_count 1$/m);
    // No CA here: none of its metrics (a zero expiry would read as expired).
    assert.doesNotMatch(text, /citadel_server_|weft_ca_/);
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(check.error, undefined, 'promtool must be installed (scripts/install-test-deps.sh)');
    assert.doesNotMatch(check.stdout + check.stderr, /error|parsing/i);
  });

  it('weft proxy-status prints the sync table and JSON', async () => {
    const { stdout } = await run(process.execPath, [MAIN, 'proxy-status', '--control-plane', base]);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0], /^NAME\s+TYPE\s+XDS\s+CDS\s+LDS\s+EDS\s+RDS$/);
    assert.match(lines[2], /^reviews-v1\.default\s+sidecar\s+sotw(\s+SYNCED \([0-9a-f]{8}\)){4}$/);
    assert.match(stdout, /ratings-v1\.default LDS NACK: listener 0\.0\.0\.0_3306: port in use/);
    const json = await run(process.execPath, [
      MAIN,
      'proxy-status',
      '--control-plane',
      base,
      '--output',
      'json',
    ]);
    const statuses = JSON.parse(json.stdout) as ProxyStatus[];
    assert.equal(statuses.length, 2);
  });

  it('weft proxy-config prints listeners, routes, clusters and endpoints of one proxy', async () => {
    generator.set(
      testCluster(RATINGS, { type: 'STRICT_DNS', lb_policy: 'LEAST_REQUEST', eds_cluster_config: null }),
    );
    const proxyConfig = async (...args: string[]): Promise<string> =>
      (
        await run(process.execPath, [
          MAIN,
          'proxy-config',
          ...args,
          'reviews-v1.default',
          '--control-plane',
          base,
        ])
      ).stdout;
    assert.equal(
      await proxyConfig('listeners'),
      [
        'NAME           ADDRESS:PORT   FILTER CHAINS',
        `0.0.0.0_3306   0.0.0.0:3306   TCP → ${RATINGS}`,
        '0.0.0.0_9080   0.0.0.0:9080   HTTP → RDS 9080',
        '',
      ].join('\n'),
    );
    assert.equal(
      await proxyConfig('routes'),
      [
        'ROUTE CONFIG   DOMAINS                                      MATCH   DESTINATION',
        `9080           reviews, reviews.default.svc.cluster.local   /*      ${REVIEWS}`,
        '',
      ].join('\n'),
    );
    const clusters = await proxyConfig('clusters');
    assert.match(clusters, /^NAME\s+TYPE\s+LB POLICY\s+ENDPOINTS$/m);
    assert.match(clusters, new RegExp(`^${escape(REVIEWS)}\\s+EDS\\s+ROUND_ROBIN\\s+1$`, 'm'));
    assert.match(clusters, new RegExp(`^${escape(RATINGS)}\\s+STRICT_DNS\\s+LEAST_REQUEST\\s+-$`, 'm'));
    const endpoints = await proxyConfig('endpoints');
    assert.match(endpoints, /^CLUSTER\s+ADDRESS:PORT\s+LOCALITY\s+WEIGHT\s+HEALTH$/m);
    assert.match(
      endpoints,
      new RegExp(`^${escape(REVIEWS)}\\s+10\\.0\\.0\\.99:9080\\s+eu/eu-a\\s+1\\s+HEALTHY$`, 'm'),
    );
    assert.match(
      endpoints,
      new RegExp(`^${escape(RATINGS)}\\s+10\\.0\\.1\\.1:9080\\s+eu/eu-a\\s+1\\s+HEALTHY$`, 'm'),
    );
    const json = JSON.parse(await proxyConfig('clusters', '--output', 'json')) as { name: string }[];
    assert.deepEqual(json.map((c) => c.name).sort(), [RATINGS, REVIEWS]);
  });

  it('weft proxy-config and proxy-status fail clearly on an unknown proxy or an unreachable control plane', async () => {
    await assert.rejects(
      run(process.execPath, [MAIN, 'proxy-config', 'clusters', 'nope.default', '--control-plane', base]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.equal(err.stderr, 'weft: proxy "nope.default" is not connected\n');
        return true;
      },
    );
    const closed = net.createServer();
    const freePort = await new Promise<number>((resolve) =>
      closed.listen(0, '127.0.0.1', () => resolve((closed.address() as net.AddressInfo).port)),
    );
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      run(process.execPath, [MAIN, 'proxy-status', '--control-plane', `http://127.0.0.1:${freePort}`]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.equal(
          err.stderr,
          `weft: cannot reach the control plane at http://127.0.0.1:${freePort}: ECONNREFUSED\n`,
        );
        return true;
      },
    );
  });
});

function escape(s: string): string {
  return s.replace(/[|.]/g, (c) => `\\${c}`);
}
