import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { StatsStore } from './store.ts';
import { checkExposition } from './exposition-check.ts';

function sampleStore(): StatsStore {
  const s = new StatsStore();
  s.counter('cluster.foo.upstream_rq_total').inc(3);
  s.counter('cluster.foo.upstream_rq_200').inc(2);
  s.counter('cluster.foo.upstream_rq_503').inc();
  s.counter('cluster.foo.upstream_rq_2xx').inc(2);
  s.counter('cluster.foo.upstream_rq_5xx').inc();
  s.counter('cluster.bar.upstream_rq_total').inc();
  s.gauge('cluster.foo.upstream_cx_active').set(4);
  s.counter('http.ingress_http.downstream_rq_total').inc(5);
  s.counter('http.ingress_http.downstream_rq_5xx').inc();
  s.gauge('http.ingress_http.downstream_cx_active').inc();
  s.counter('listener.127.0.0.1:15001.downstream_cx_total').inc();
  s.counter('listener.[::1]:15001.downstream_cx_total').inc();
  s.gauge('server.live').set(1);
  const h = s.histogram('cluster.foo.upstream_rq_time');
  for (const v of [0.2, 3, 3, 70, 20000, 5e6]) h.record(v);
  s.histogram('http.ingress_http.downstream_rq_time');
  return s;
}

void test('names and labels follow Envoy tag extraction', () => {
  const lines = sampleStore().renderPrometheus().split('\n');
  for (const expected of [
    '# TYPE envoy_cluster_upstream_rq counter',
    'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="foo"} 2',
    'envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="foo"} 1',
    '# TYPE envoy_cluster_upstream_rq_xx counter',
    'envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="foo"} 2',
    'envoy_cluster_upstream_rq_total{envoy_cluster_name="bar"} 1',
    'envoy_cluster_upstream_rq_total{envoy_cluster_name="foo"} 3',
    '# TYPE envoy_cluster_upstream_cx_active gauge',
    'envoy_cluster_upstream_cx_active{envoy_cluster_name="foo"} 4',
    'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress_http"} 5',
    'envoy_http_downstream_rq_xx{envoy_response_code_class="5",envoy_http_conn_manager_prefix="ingress_http"} 1',
    'envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="ingress_http"} 1',
    'envoy_listener_downstream_cx_total{envoy_listener_address="127.0.0.1_15001"} 1',
    'envoy_listener_downstream_cx_total{envoy_listener_address="[__1]_15001"} 1',
    '# TYPE envoy_server_live gauge',
    'envoy_server_live 1',
  ]) {
    assert.ok(lines.includes(expected), `missing line: ${expected}`);
  }
  // One TYPE line per family even with several series.
  assert.equal(lines.filter((l) => l === '# TYPE envoy_cluster_upstream_rq_total counter').length, 1);
});

void test('histograms: cumulative buckets over Envoy default bounds, +Inf, _sum, _count', () => {
  const lines = sampleStore().renderPrometheus().split('\n');
  const prefix = 'envoy_cluster_upstream_rq_time';
  const buckets = lines.filter((l) => l.startsWith(`${prefix}_bucket{envoy_cluster_name="foo"`));
  assert.deepEqual(
    buckets.map((l) => /le="([^"]+)"\} (\d+)$/.exec(l)!.slice(1).join(' ')),
    [
      '0.5 1',
      '1 1',
      '5 3',
      '10 3',
      '25 3',
      '50 3',
      '100 4',
      '250 4',
      '500 4',
      '1000 4',
      '2500 4',
      '5000 4',
      '10000 4',
      '30000 5',
      '60000 5',
      '300000 5',
      '600000 5',
      '1800000 5',
      '3600000 5',
      '+Inf 6',
    ],
  );
  assert.ok(lines.includes(`${prefix}_sum{envoy_cluster_name="foo"} 5020076.2`));
  assert.ok(lines.includes(`${prefix}_count{envoy_cluster_name="foo"} 6`));
  assert.ok(lines.includes('# TYPE envoy_http_downstream_rq_time histogram'));
  assert.ok(
    lines.includes('envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix="ingress_http"} 0'),
  );
});

void test('label values are escaped; odd names still yield valid output', () => {
  const s = new StatsStore();
  s.counter('cluster.we"ird\\name\nx.upstream_rq_total').inc();
  s.counter('cluster.\ud800bad.upstream_rq_total').inc();
  s.counter('9starts.with-digit').inc();
  s.gauge('g.neg').dec(2);
  s.histogram('cluster.we"ird\\name\nx.upstream_rq_time').record(1);
  const text = s.renderPrometheus();
  assert.ok(text.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="we\\"ird\\\\name\\nx"} 1'));
  assert.ok(text.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="\ufffdbad"} 1'));
  assert.ok(text.includes('envoy_9starts_with_digit 1'));
  assert.ok(text.includes('envoy_g_neg -2'));
  assert.deepEqual(checkExposition(text), []);
});

void test('collisions are dropped instead of producing an unparseable scrape', () => {
  const s = new StatsStore();
  s.counter('http.a.x.y').inc(1);
  s.counter('http.a.x_y').inc(2); // same family and labels as above after sanitizing
  s.gauge('server.z').set(1);
  s.counter('server.z').inc(); // counter and gauge with one family name
  s.histogram('server.lat').record(1);
  s.counter('server.lat_count').inc(); // would clash with the histogram's _count series
  const text = s.renderPrometheus();
  assert.deepEqual(checkExposition(text), []);
  assert.equal(text.match(/^envoy_http_x_y\{/gm)?.length, 1);
  assert.ok(text.includes('# TYPE envoy_server_z counter'));
  assert.ok(!text.includes('# TYPE envoy_server_z gauge'));
  assert.ok(!text.includes('# TYPE envoy_server_lat_count'));
});

void test('filter and usedOnly apply to the Prometheus output too', () => {
  const s = sampleStore();
  s.counter('cluster.foo.upstream_rq_timeout');
  const used = s.renderPrometheus({ usedOnly: true });
  assert.ok(!used.includes('upstream_rq_timeout'));
  assert.ok(!used.includes('envoy_http_downstream_rq_time'));
  const onlyServer = s.renderPrometheus({ filter: /^server\./ });
  assert.equal(onlyServer, '# TYPE envoy_server_live gauge\nenvoy_server_live 1\n');
  assert.equal(new StatsStore().renderPrometheus(), '');
});

void test('output passes the strict exposition-format check', () => {
  assert.deepEqual(checkExposition(sampleStore().renderPrometheus()), []);
});

// promtool comes from Debian's prometheus package, which scripts/install-test-deps.sh installs.
void test("output parses with promtool (Prometheus's own parser)", () => {
  const text = sampleStore().renderPrometheus();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  const report = r.stdout + r.stderr;
  // Exit 3 means lint findings only (no HELP lines, counters without _total: Envoy's naming);
  // a parse failure exits 1 with "error while linting".
  assert.ok(r.status === 0 || r.status === 3, report);
  assert.doesNotMatch(report, /error|parsing/i);
});
