import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatsStore } from './store.ts';

void test('counter, gauge and histogram are idempotent by name', () => {
  const s = new StatsStore();
  assert.equal(s.counter('a.b'), s.counter('a.b'));
  assert.equal(s.gauge('a.b'), s.gauge('a.b'));
  assert.equal(s.histogram('a.b'), s.histogram('a.b'));
  // `:` is sanitized as in Envoy, so both spellings name one stat.
  assert.equal(s.counter('listener.127.0.0.1:80.x'), s.counter('listener.127.0.0.1_80.x'));
});

void test('counters and gauges update in place', () => {
  const s = new StatsStore();
  const c = s.counter('c');
  c.inc();
  c.inc(4);
  assert.equal(c.value, 5);
  const g = s.gauge('g');
  g.inc(3);
  g.dec();
  assert.equal(g.value, 2);
  g.set(7);
  assert.equal(g.value, 7);
});

void test('renderText: counters and gauges sorted by name, then histograms', () => {
  const s = new StatsStore();
  s.gauge('server.live').set(1);
  s.counter('cluster.b.upstream_rq_total').inc(2);
  s.counter('cluster.a.upstream_rq_total');
  s.gauge('cluster.a.upstream_cx_active').set(3);
  s.histogram('cluster.a.upstream_rq_time').record(5);
  s.histogram('cluster.a.upstream_cx_connect_ms');
  assert.equal(
    s.renderText(),
    [
      'cluster.a.upstream_cx_active: 3',
      'cluster.a.upstream_rq_total: 0',
      'cluster.b.upstream_rq_total: 2',
      'server.live: 1',
      'cluster.a.upstream_cx_connect_ms: No recorded values',
      'cluster.a.upstream_rq_time: P0(5,5) P25(5,5) P50(5,5) P75(5,5) P90(5,5) P95(5,5) P99(5,5) P99.5(5,5) P99.9(5,5) P100(5,5)',
      '',
    ].join('\n'),
  );
});

void test('renderText: usedOnly and regex filter', () => {
  const s = new StatsStore();
  s.counter('cluster.a.upstream_rq_total').inc();
  s.counter('cluster.a.upstream_rq_timeout');
  s.gauge('cluster.a.upstream_cx_active').set(0); // set counts as used, even to 0
  s.gauge('cluster.a.upstream_rq_active');
  s.histogram('cluster.a.upstream_rq_time');
  s.counter('http.in.downstream_rq_total').inc();
  assert.equal(
    s.renderText({ usedOnly: true }),
    'cluster.a.upstream_cx_active: 0\ncluster.a.upstream_rq_total: 1\nhttp.in.downstream_rq_total: 1\n',
  );
  assert.equal(s.renderText({ filter: /^http\./ }), 'http.in.downstream_rq_total: 1\n');
  // A global regex must not skip matches because of lastIndex state.
  assert.equal(s.renderText({ filter: /rq_t/g, usedOnly: true }).split('\n').length - 1, 2);
});

void test('histogram interval column is nan after a merge', () => {
  const s = new StatsStore();
  s.histogram('h').record(3);
  s.mergeHistograms();
  assert.match(s.renderText(), /^h: P0\(nan,3\) P25\(nan,3\)/);
});

void test('renderJson: Envoy shape with histograms last and null for empty quantiles', () => {
  const s = new StatsStore();
  s.counter('b').inc(2);
  s.gauge('a').set(1);
  s.histogram('h').record(10);
  s.histogram('e');
  const json = s.renderJson() as { stats: unknown[] };
  assert.deepEqual(json.stats.slice(0, 2), [
    { name: 'a', value: 1 },
    { name: 'b', value: 2 },
  ]);
  const hist = json.stats[2] as {
    histograms: {
      supported_quantiles: number[];
      computed_quantiles: {
        name: string;
        values: { interval: number | null; cumulative: number | null }[];
      }[];
    };
  };
  assert.deepEqual(hist.histograms.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
  assert.deepEqual(
    hist.histograms.computed_quantiles.map((q) => q.name),
    ['e', 'h'],
  );
  assert.deepEqual(hist.histograms.computed_quantiles[0].values[0], { interval: null, cumulative: null });
  assert.deepEqual(hist.histograms.computed_quantiles[1].values[5], { interval: 10, cumulative: 10 });
  assert.deepEqual(new StatsStore().renderJson(), { stats: [] });
  // It is plain JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
});

void test('removeWhere forgets the selected stats; holders keep detached ones; names can be created again', () => {
  const store = new StatsStore();
  const kept = store.counter('cluster.web.upstream_rq_total');
  const gone = store.counter('cluster.old.upstream_rq_total');
  store.gauge('cluster.old.membership_total').set(3);
  store.histogram('cluster.old.upstream_rq_time').record(5);
  kept.inc();
  gone.inc();
  assert.equal(
    store.removeWhere((n) => n.startsWith('cluster.old.')),
    3,
  );
  assert.equal(store.renderText(), 'cluster.web.upstream_rq_total: 1\n');
  assert.doesNotMatch(store.renderPrometheus(), /old/);
  gone.inc();
  assert.equal(store.counter('cluster.old.upstream_rq_total').value, 0, 'a fresh stat');
});
