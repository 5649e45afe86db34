import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { StatsStore } from '../stats/store.ts';
import { checkExposition } from '../stats/exposition-check.ts';
import type { Host } from '../upstream/types.ts';
import type { AdminClusterStatus, AdminTarget } from './types.ts';
import { startAdminServer } from './server.ts';

/** A stand-in for the proxy's server object that records what the admin server asked of it. */
class FakeTarget implements AdminTarget {
  ready = false;
  state = 'PRE_INITIALIZING';
  drained = 0;
  quits = 0;
  drainError: Error | undefined;
  configDumpThrows = false;
  hosts: Host[] = [
    {
      key: '127.0.0.1:8080',
      address: '127.0.0.1',
      port: 8080,
      hostname: undefined,
      weight: 1,
      locality: { region: 'eu', zone: 'eu-1a', subZone: '' },
      priority: 0,
      health: 'HEALTHY',
      activeRequests: 2,
    },
    {
      key: '[::1]:8081',
      address: '::1',
      port: 8081,
      hostname: 'backend.local',
      weight: 3,
      locality: { region: '', zone: '', subZone: '' },
      priority: 1,
      health: 'UNHEALTHY',
      activeRequests: 0,
    },
  ];
  isReady(): boolean {
    return this.ready;
  }
  serverInfo(): Record<string, unknown> {
    return { version: 'test', state: this.state, uptime_current_epoch: '1s' };
  }
  configDump(): unknown {
    if (this.configDumpThrows) throw new Error('dump exploded');
    return { configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump' }] };
  }
  connections: ((h: Host) => number) | undefined = undefined;
  clusters(): readonly AdminClusterStatus[] {
    return [
      {
        name: 'backend',
        hosts: this.hosts,
        extras: { 'default_priority::max_connections': 1024 },
        ...(this.connections ? { connectionCount: this.connections } : {}),
      },
    ];
  }
  drainListeners(): Promise<void> {
    this.drained++;
    return this.drainError ? Promise.reject(this.drainError) : Promise.resolve();
  }
  quit(): void {
    this.quits++;
  }
}

async function withServer(
  fn: (base: string, target: FakeTarget, stats: StatsStore, port: number) => Promise<void>,
): Promise<void> {
  const target = new FakeTarget();
  const stats = new StatsStore();
  const server = await startAdminServer({ host: '127.0.0.1', port: 0, target, stats });
  try {
    await fn(`http://127.0.0.1:${server.port}`, target, stats, server.port);
  } finally {
    await server.close();
  }
}

async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

void test('/ready: 503 with the server state until ready, then 200 LIVE', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    assert.deepEqual(await pick(get(`${base}/ready`)), { status: 503, body: 'PRE_INITIALIZING\n' });
    target.state = 'DRAINING';
    assert.deepEqual(await pick(get(`${base}/ready`)), { status: 503, body: 'DRAINING\n' });
    target.state = 'garbage';
    assert.deepEqual(await pick(get(`${base}/ready`)), { status: 503, body: 'PRE_INITIALIZING\n' });
    target.ready = true;
    assert.deepEqual(await pick(get(`${base}/ready`)), { status: 200, body: 'LIVE\n' });
  }),
);

async function pick(p: Promise<{ status: number; body: string }>): Promise<{ status: number; body: string }> {
  const { status, body } = await p;
  return { status, body };
}

void test('/server_info and /config_dump are pretty JSON', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    const info = await get(`${base}/server_info`);
    assert.equal(info.status, 200);
    assert.match(info.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(JSON.parse(info.body), target.serverInfo());
    assert.match(info.body, /\n {2}"version"/);
    const dump = await get(`${base}/config_dump`);
    assert.equal(dump.status, 200);
    assert.deepEqual(JSON.parse(dump.body), target.configDump());
    assert.equal((await get(`${base}/config_dump?resource=dynamic_listeners`)).status, 400);
    target.configDumpThrows = true;
    const failed = await get(`${base}/config_dump`);
    assert.equal(failed.status, 500);
    assert.match(failed.body, /dump exploded/);
  }),
);

void test(
  'a target returning unserializable data gets a 500, and the server keeps serving',
  { timeout: 10_000 },
  () =>
    withServer(async (base, target) => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      target.configDump = () => circular;
      target.serverInfo = () => ({ big: 1n });
      assert.equal((await get(`${base}/config_dump`)).status, 500);
      assert.equal((await get(`${base}/server_info`)).status, 500);
      target.isReady = () => {
        throw new Error('not now');
      };
      assert.equal((await get(`${base}/ready`)).status, 500);
      assert.equal((await get(`${base}/stats`)).status, 200);
    }),
);

void test('/clusters: Envoy text lines and JSON', { timeout: 10_000 }, () =>
  withServer(async (base) => {
    const t = await get(`${base}/clusters`);
    assert.equal(t.status, 200);
    const lines = t.body.split('\n');
    for (const expected of [
      'backend::observability_name::backend',
      'backend::default_priority::max_connections::1024',
      'backend::127.0.0.1:8080::rq_active::2',
      'backend::127.0.0.1:8080::health_flags::healthy',
      'backend::127.0.0.1:8080::weight::1',
      'backend::127.0.0.1:8080::region::eu',
      'backend::127.0.0.1:8080::zone::eu-1a',
      'backend::127.0.0.1:8080::sub_zone::',
      'backend::127.0.0.1:8080::priority::0',
      'backend::127.0.0.1:8080::hostname::',
      'backend::[::1]:8081::health_flags::/failed_eds_health',
      'backend::[::1]:8081::weight::3',
      'backend::[::1]:8081::priority::1',
      'backend::[::1]:8081::hostname::backend.local',
    ]) {
      assert.ok(lines.includes(expected), `missing ${expected}`);
    }
    const j = await get(`${base}/clusters?format=json`);
    assert.equal(j.status, 200);
    const parsed = JSON.parse(j.body);
    const hosts = parsed.cluster_statuses[0].host_statuses;
    assert.equal(parsed.cluster_statuses[0].name, 'backend');
    assert.deepEqual(hosts[1].address, { socket_address: { address: '::1', port_value: 8081 } });
    assert.deepEqual(hosts[1].health_status, { eds_health_status: 'UNHEALTHY' });
    assert.deepEqual(hosts[0].stats, [{ name: 'rq_active', type: 'GAUGE', value: '2' }]);
    assert.equal((await get(`${base}/clusters?format=yaml`)).status, 400);
  }),
);

void test('/clusters prints cx_active when the pool layer counts connections', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    target.connections = (h) => (h.port === 8080 ? 5 : 0);
    const t = await get(`${base}/clusters`);
    assert.ok(t.body.split('\n').includes('backend::127.0.0.1:8080::cx_active::5'));
  }),
);

void test('/stats: text, filter, usedonly, json, prometheus, and bad input', { timeout: 10_000 }, () =>
  withServer(async (base, _t, stats) => {
    stats.counter('cluster.backend.upstream_rq_total').inc(7);
    stats.counter('cluster.backend.upstream_rq_timeout');
    stats.gauge('server.live').set(1);
    const all = await get(`${base}/stats`);
    assert.equal(all.status, 200);
    assert.equal(
      all.body,
      'cluster.backend.upstream_rq_timeout: 0\ncluster.backend.upstream_rq_total: 7\nserver.live: 1\n',
    );
    assert.equal(
      (await get(`${base}/stats?usedonly`)).body,
      'cluster.backend.upstream_rq_total: 7\nserver.live: 1\n',
    );
    assert.equal(
      (await get(`${base}/stats?filter=${encodeURIComponent('^server\\.')}`)).body,
      'server.live: 1\n',
    );
    assert.equal((await get(`${base}/stats?filter=rq_t.*l$`)).body, 'cluster.backend.upstream_rq_total: 7\n');
    const j = await get(`${base}/stats?format=json&usedonly`);
    assert.deepEqual(JSON.parse(j.body), {
      stats: [
        { name: 'cluster.backend.upstream_rq_total', value: 7 },
        { name: 'server.live', value: 1 },
      ],
    });
    const p = await get(`${base}/stats?format=prometheus`);
    assert.match(p.body, /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="backend"\} 7$/m);
    const bad = await get(`${base}/stats?filter=${encodeURIComponent('([')}`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /Invalid regex/);
    assert.equal((await get(`${base}/stats?filter=${'a'.repeat(2000)}`)).status, 400);
    assert.equal((await get(`${base}/stats?format=xml`)).status, 400);
    // Malformed percent-escapes are taken literally, not thrown on.
    assert.equal((await get(`${base}/stats?filter=%E0%A4%A`)).status, 200);
  }),
);

void test('/stats/prometheus: content type and valid exposition', { timeout: 10_000 }, () =>
  withServer(async (base, _t, stats) => {
    stats.counter('cluster.backend.upstream_rq_200').inc(3);
    stats.counter('http.inbound.downstream_rq_2xx').inc(3);
    stats.histogram('cluster.backend.upstream_rq_time').record(12);
    const r = await get(`${base}/stats/prometheus`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.deepEqual(checkExposition(r.body), []);
    assert.match(
      r.body,
      /^envoy_cluster_upstream_rq\{envoy_response_code="200",envoy_cluster_name="backend"\} 3$/m,
    );
    assert.match(r.body, /^envoy_cluster_upstream_rq_time_count\{envoy_cluster_name="backend"\} 1$/m);
    const filtered = await get(`${base}/stats/prometheus?filter=^http`);
    assert.doesNotMatch(filtered.body, /cluster/);
    assert.equal((await get(`${base}/stats/prometheus?filter=(`)).status, 400);
  }),
);

void test('mutating endpoints need POST; 405 otherwise', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    for (const path of ['/drain_listeners', '/quitquitquit']) {
      const r = await get(`${base}${path}`);
      assert.equal(r.status, 405, path);
      assert.equal(r.headers.get('allow'), 'POST');
    }
    assert.equal(target.drained, 0);
    assert.equal(target.quits, 0);
    assert.equal((await get(`${base}/stats`, { method: 'DELETE' })).status, 405);
  }),
);

void test('POST /drain_listeners drains; failures become 500', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    assert.deepEqual(await pick(get(`${base}/drain_listeners`, { method: 'POST' })), {
      status: 200,
      body: 'OK\n',
    });
    assert.equal(target.drained, 1);
    assert.equal((await get(`${base}/drain_listeners?inboundonly`, { method: 'POST' })).status, 400);
    target.drainError = new Error('listener stuck');
    const failed = await get(`${base}/drain_listeners`, { method: 'POST' });
    assert.equal(failed.status, 500);
    assert.match(failed.body, /listener stuck/);
  }),
);

void test('POST /quitquitquit answers OK, then quits', { timeout: 10_000 }, () =>
  withServer(async (base, target) => {
    const r = await get(`${base}/quitquitquit`, { method: 'POST' });
    assert.deepEqual({ status: r.status, body: r.body }, { status: 200, body: 'OK\n' });
    const deadline = Date.now() + 2000;
    while (target.quits === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    assert.equal(target.quits, 1);
  }),
);

void test('help at /, 404 with the help for unknown paths', { timeout: 10_000 }, () =>
  withServer(async (base) => {
    const help = await get(`${base}/`);
    assert.equal(help.status, 200);
    for (const p of ['/ready', '/stats/prometheus', '/clusters', '/config_dump', '/quitquitquit (POST)']) {
      assert.ok(help.body.includes(`  ${p}`), p);
    }
    const missing = await get(`${base}/nope`);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /^invalid path\. admin commands are:/);
    assert.equal((await get(`${base}/stats/`)).status, 404);
  }),
);

void test('HEAD gets headers only', { timeout: 10_000 }, () =>
  withServer(async (base) => {
    const r = await get(`${base}/ready`, { method: 'HEAD' });
    assert.equal(r.status, 503);
    assert.equal(r.body, '');
  }),
);

/** Sends raw bytes and returns the status line of the reply. */
function rawStatusLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n')) {
        resolve(data.slice(0, data.indexOf('\r\n')));
        sock.destroy();
      }
    });
    sock.on('error', reject);
    sock.write(request);
  });
}

void test('odd request targets never crash the server', { timeout: 10_000 }, () =>
  withServer(async (base, _t, _s, port) => {
    assert.equal(
      await rawStatusLine(port, 'GET http://[bad HTTP/1.1\r\nHost: x\r\n\r\n'),
      'HTTP/1.1 400 Bad Request',
    );
    assert.equal(
      await rawStatusLine(port, 'GET http://admin/ready HTTP/1.1\r\nHost: x\r\n\r\n'),
      'HTTP/1.1 503 Service Unavailable',
    );
    assert.equal(
      await rawStatusLine(port, 'GET //ready HTTP/1.1\r\nHost: x\r\n\r\n'),
      'HTTP/1.1 404 Not Found',
    );
    assert.equal(await rawStatusLine(port, 'GET * HTTP/1.1\r\nHost: x\r\n\r\n'), 'HTTP/1.1 400 Bad Request');
    assert.match(await rawStatusLine(port, 'garbage\r\n\r\n'), /^HTTP\/1\.1 400/);
    // Still serving.
    assert.equal((await get(`${base}/ready`)).status, 503);
  }),
);

void test('a taken port rejects the start promise', { timeout: 10_000 }, () =>
  withServer(async (_b, target, stats, port) => {
    await assert.rejects(startAdminServer({ host: '127.0.0.1', port, target, stats }), {
      code: 'EADDRINUSE',
    });
  }),
);
