/**
 * The collector over real exposition text: each fake proxy is an IstioMetrics (the proxy's own metric code),
 * recorded into as the stats filter does and rendered as /stats/prometheus renders it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CounterSeries, HistogramSeries } from '../proxy/telemetry/istio-metrics.ts';
import { IstioMetrics, renderLabels } from '../proxy/telemetry/istio-metrics.ts';
import { HTTP_LABELS, TCP_LABELS } from '../proxy/telemetry/labels.ts';
import { clusterServiceHost, parseEjectedHosts, StatsCollector } from './stats-collector.ts';
import type { GraphEdge } from './types.ts';

interface Call {
  reporter?: 'source' | 'destination';
  from?: string;
  to?: string;
  service?: string;
  code?: number;
  grpc?: string;
  protocol?: 'http' | 'grpc';
  security?: string;
  principal?: string;
}

function httpLabels(c: Call): string {
  const from = c.from ?? 'productpage-v1';
  const to = c.to ?? 'reviews-v1';
  const service = c.service ?? 'reviews';
  const v: Record<string, string> = {
    reporter: c.reporter ?? 'source',
    source_workload: from,
    source_canonical_service: from.replace(/-v\d$/, ''),
    source_canonical_revision: 'v1',
    source_workload_namespace: 'default',
    source_principal: `spiffe://cluster.local/ns/default/sa/${from}`,
    source_app: from.replace(/-v\d$/, ''),
    source_version: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: to,
    destination_workload_namespace: 'default',
    destination_principal: c.principal ?? `spiffe://cluster.local/ns/default/sa/${service}`,
    destination_app: service,
    destination_version: to.slice(-2),
    destination_service: `${service}.default.svc.cluster.local`,
    destination_canonical_service: service,
    destination_canonical_revision: to.slice(-2),
    destination_service_name: service,
    destination_service_namespace: 'default',
    destination_cluster: 'Kubernetes',
    request_protocol: c.protocol ?? 'http',
    response_code: String(c.code ?? 200),
    grpc_response_status: c.grpc ?? '',
    response_flags: '-',
    connection_security_policy: c.security ?? (c.reporter === 'destination' ? 'mutual_tls' : 'unknown'),
  };
  return renderLabels(
    HTTP_LABELS,
    HTTP_LABELS.map((l) => v[l]),
  );
}

/** Records `n` requests of `ms` milliseconds each. */
function record(m: IstioMetrics, c: Call, n: number, ms = 3): void {
  const labels = httpLabels(c);
  (m.series('requests_total', labels) as CounterSeries).value += n;
  const h = m.series('request_duration_milliseconds', labels) as HistogramSeries;
  for (let i = 0; i < n; i++) h.record(ms);
}

/** A collector driven by hand: each proxy's text is read from its IstioMetrics at every collection. */
function harness(opts: { retentionMs?: number; maxEntities?: number } = {}) {
  const proxies = new Map<string, IstioMetrics>();
  let now = 1_000_000;
  const collector = new StatsCollector({
    targets: () => [...proxies.keys()].map((address) => ({ address, proxyId: address })),
    scrape: (address) => Promise.resolve(proxies.get(address)!.renderPrometheus({})),
    now: () => now,
    intervalMs: 5000,
    ...opts,
  });
  return {
    collector,
    proxy(address: string, m = new IstioMetrics()): IstioMetrics {
      proxies.set(address, m);
      return m;
    },
    /** Advances the clock one interval and collects. */
    async step(): Promise<void> {
      now += 5000;
      await collector.collect();
    },
  };
}

const edge = (edges: GraphEdge[], kind: 'call' | 'split', source: string, target: string): GraphEdge => {
  const e = edges.find((x) => x.kind === kind && x.source === source && x.target === target);
  assert.ok(e, `no ${kind} edge ${source} → ${target} in ${JSON.stringify(edges.map((x) => x.id))}`);
  return e;
};

const PRODUCTPAGE = 'workload:default/productpage-v1';
const REVIEWS = 'service:reviews.default.svc.cluster.local';

describe('StatsCollector', () => {
  it('turns counter deltas into rates and error ratios; the first scrape is a baseline', async () => {
    const h = harness();
    const client = h.proxy('client:1');
    record(client, {}, 1000); // before the dashboard was looking: never counted
    await h.step();
    assert.equal(h.collector.graph().edges.length, 0);
    record(client, {}, 45);
    record(client, { code: 503 }, 5);
    await h.step();
    const g = h.collector.graph();
    const call = edge(g.edges, 'call', PRODUCTPAGE, REVIEWS);
    assert.equal(call.rps, 10); // 50 requests in 5 s, over one interval of history
    assert.equal(call.errorPct, 10);
    assert.equal(call.protocol, 'http');
    assert.equal(call.mtls, true); // the caller verified a SPIFFE identity
    assert.equal(call.reporter, 'source');
    const split = edge(g.edges, 'split', REVIEWS, 'workload:default/reviews-v1');
    assert.equal(split.rps, 10);
    assert.deepEqual(
      g.nodes.map((n) => n.id).sort(),
      [PRODUCTPAGE, 'workload:default/reviews-v1', REVIEWS].sort(),
    );
    // Averaged over the window: a quiet interval halves the rate.
    await h.step();
    assert.equal(edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS).rps, 5);
  });

  it('counts gRPC non-OK statuses (HTTP 200) as errors', async () => {
    const h = harness();
    const client = h.proxy('client:1');
    record(client, { protocol: 'grpc', grpc: '0' }, 1);
    await h.step();
    record(client, { protocol: 'grpc', grpc: '0' }, 30);
    record(client, { protocol: 'grpc', grpc: '5' }, 10);
    await h.step();
    const call = edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS);
    assert.equal(call.protocol, 'grpc');
    assert.equal(call.errorPct, 25);
    assert.equal(call.rps, 8);
  });

  it('computes p50/p90/p99 from bucket deltas only', async () => {
    const h = harness();
    const client = h.proxy('client:1');
    record(client, {}, 500, 20000); // slow requests before the baseline must not count
    await h.step();
    record(client, {}, 90, 3); // bucket (1, 5]
    record(client, {}, 10, 200); // bucket (100, 250]
    await h.step();
    const call = edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS);
    assert.ok(Math.abs(call.p50Ms! - (1 + 4 * (50 / 90))) < 1e-9, String(call.p50Ms));
    assert.equal(call.p90Ms, 5);
    assert.ok(Math.abs(call.p99Ms! - 235) < 1e-9, String(call.p99Ms));
  });

  it('takes a restarted proxy (counters back near zero) as a reset, never a negative rate', async () => {
    const h = harness();
    const before = h.proxy('client:1');
    record(before, {}, 100);
    await h.step();
    record(before, {}, 50);
    await h.step();
    // The proxy restarts at the same admin address: fresh counters.
    const after = h.proxy('client:1');
    record(after, {}, 20);
    await h.step();
    const series = h.collector.workload('default', 'productpage-v1')!.outbound;
    assert.deepEqual(series.rps, [null, 10, 4]);
    for (const v of series.p99Ms) assert.ok(v === null || v > 0);
  });

  it("prefers the caller's view, and takes mTLS from the server's", async () => {
    const h = harness();
    const client = h.proxy('client:1');
    const server = h.proxy('server:1');
    record(client, {}, 1);
    record(server, { reporter: 'destination' }, 1);
    await h.step();
    // The caller saw 10 failures that never reached the server (no healthy upstream).
    record(client, { code: 503 }, 10);
    record(client, {}, 40);
    record(server, { reporter: 'destination', security: 'none' }, 40);
    await h.step();
    const call = edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS);
    assert.equal(call.reporter, 'source');
    assert.equal(call.rps, 10);
    assert.equal(call.errorPct, 20);
    assert.equal(call.mtls, false);
    // Only the server reports (the caller has no sidecar): its numbers are used.
    await h.step();
    record(server, { reporter: 'destination', from: 'unknown' }, 25);
    await h.step();
    const inbound = h.collector.graph().edges.find((e) => e.source === 'workload:default/unknown');
    assert.ok(inbound);
    assert.equal(inbound.reporter, 'destination');
    assert.equal(inbound.mtls, true);
  });

  it('counts a series that appears after the baseline from zero', async () => {
    const h = harness();
    const client = h.proxy('client:1');
    record(client, {}, 1);
    await h.step();
    record(client, { to: 'reviews-v2' }, 15);
    record(client, {}, 5);
    await h.step();
    const g = h.collector.graph();
    // A canary split: one call edge, one share per version.
    assert.equal(edge(g.edges, 'call', PRODUCTPAGE, REVIEWS).rps, 4);
    assert.equal(edge(g.edges, 'split', REVIEWS, 'workload:default/reviews-v2').rps, 3);
    assert.equal(edge(g.edges, 'split', REVIEWS, 'workload:default/reviews-v1').rps, 1);
  });

  it('reads TCP metrics as connections/s and bytes/s', async () => {
    const h = harness();
    const m = h.proxy('client:1');
    const values = HTTP_LABELS.map((l) =>
      /^(response_code|grpc_response_status)$/.test(l) ? undefined : l,
    ).filter((l) => l !== undefined);
    assert.deepEqual(values, [...TCP_LABELS]);
    const labels = renderLabels(
      TCP_LABELS,
      httpLabels({ protocol: 'http' })
        .split(',')
        .filter((p) => !p.startsWith('response_code=') && !p.startsWith('grpc_response_status='))
        .map((p) => p.slice(p.indexOf('=') + 2, -1).replace('http', 'tcp')),
    );
    const opened = m.series('tcp_connections_opened_total', labels) as CounterSeries;
    const sent = m.series('tcp_sent_bytes_total', labels) as CounterSeries;
    const received = m.series('tcp_received_bytes_total', labels) as CounterSeries;
    opened.value = 1;
    sent.value = 1;
    received.value = 1;
    await h.step();
    opened.value += 10;
    sent.value += 5000;
    received.value += 15000;
    await h.step();
    const call = edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS);
    assert.equal(call.protocol, 'tcp');
    assert.equal(call.rps, 2);
    assert.equal(call.tcpBytesPerSecond, 4000);
    assert.equal(call.errorPct, null);
  });

  it('keeps at most retention/interval points, forgets idle edges, and caps what it tracks', async () => {
    const h = harness({ retentionMs: 60_000, maxEntities: 5 });
    assert.equal(h.collector.capacity, 12);
    const client = h.proxy('client:1');
    record(client, {}, 1);
    await h.step();
    for (let i = 0; i < 30; i++) {
      record(client, {}, 5);
      await h.step();
    }
    const series = h.collector.workload('default', 'productpage-v1')!.outbound;
    assert.equal(series.timestamps.length, 12);
    assert.equal(series.rps.length, 12);
    assert.deepEqual(series.rps, new Array(12).fill(1));
    // call, split, service, in, out: 5 things; a second destination would need more.
    assert.equal(h.collector.entityCount, 5);
    record(client, { to: 'reviews-v2' }, 5);
    await h.step();
    assert.equal(h.collector.entityCount, 5);
    assert.ok(h.collector.dropped > 0);
    // No traffic for a whole retention: everything is forgotten.
    for (let i = 0; i < 12; i++) await h.step();
    assert.equal(h.collector.entityCount, 0);
    assert.equal(h.collector.graph().edges.length, 0);
  });

  it('records a failing scrape and starts again from a baseline', async () => {
    const h = harness();
    let fail = false;
    const good = h.proxy('client:1');
    const collector = new StatsCollector({
      targets: () => [{ address: 'client:1', proxyId: 'p' }],
      scrape: () =>
        fail ? Promise.reject(new Error('connection refused')) : Promise.resolve(good.renderPrometheus({})),
      now: () => 0,
    });
    await collector.collect();
    fail = true;
    await collector.collect();
    assert.equal(collector.scrapeError('client:1'), 'connection refused');
    fail = false;
    await collector.collect();
    assert.equal(collector.scrapeError('client:1'), undefined);
  });

  it('lists the callers answered 429, counted once when both sides reported', async () => {
    const h = harness();
    const client = h.proxy('client:1');
    const server = h.proxy('server:1');
    const other = h.proxy('other:1');
    record(client, {}, 1);
    await h.step();
    // The server limited 8 of the productpage's calls; the caller saw the same 8 429s, not knowing from
    // which workload (a local reply carries no peer metadata): a path of its own, still counted once.
    record(server, { reporter: 'destination', code: 429 }, 8);
    record(client, { code: 429, to: 'unknown' }, 8);
    record(server, { reporter: 'destination' }, 20);
    record(client, {}, 20);
    // Only the caller's proxy reported these (the server has none): they count too.
    record(other, { from: 'ratings-v1', code: 429 }, 3);
    await h.step();
    const host = 'reviews.default.svc.cluster.local';
    assert.deepEqual(h.collector.rateLimited(host), [
      { source: PRODUCTPAGE, rps: 8 / 5, total: 8 },
      { source: 'workload:default/ratings-v1', rps: 3 / 5, total: 3 },
    ]);
    // 429 is not an error (a 5xx) in the golden signals.
    assert.equal(edge(h.collector.graph().edges, 'call', PRODUCTPAGE, REVIEWS).errorPct, 0);
    // Past the window the rate falls to zero, the total stays for the retention, then it is forgotten.
    for (let i = 0; i < 6; i++) await h.step();
    assert.deepEqual(h.collector.rateLimited(host)[0], { source: PRODUCTPAGE, rps: 0, total: 8 });
    for (let i = 0; i < 180; i++) await h.step();
    assert.deepEqual(h.collector.rateLimited(host), []);
    assert.deepEqual(h.collector.rateLimited('nothing.default.svc.cluster.local'), []);
  });

  it('reads /clusters only from proxies that eject, and keeps when each ejection was first seen', async () => {
    const ejecting = new Set<string>();
    const clustersRead: string[] = [];
    let now = 1_000_000;
    const gauge = (n: number): string =>
      `envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name="outbound|9080||catalog.default.svc.cluster.local"} ${n}\n`;
    const flags = (ip: string, f: string): string =>
      `outbound|9080||catalog.default.svc.cluster.local::${ip}:9080::health_flags::${f}\n`;
    const collector = new StatsCollector({
      targets: () => [
        { address: 'a:1', proxyId: 'a', name: 'frontend-0.default' },
        { address: 'b:1', proxyId: 'b', name: 'frontend-1.default' },
        {
          address: 'c:1',
          proxyId: 'c',
          name: 'catalog-flaky.default',
          ips: ['127.0.0.11'],
          workload: { name: 'catalog-flaky', namespace: 'default' },
        },
      ],
      scrape: (address) => Promise.resolve(gauge(ejecting.has(address) ? 1 : 0)),
      fetchClusters: (address) => {
        clustersRead.push(address);
        return Promise.resolve(
          'outbound|9080||catalog.default.svc.cluster.local::observability_name::x\n' +
            flags('127.0.0.11', '/failed_outlier_check') +
            flags('127.0.0.12', 'healthy') +
            flags('127.0.0.13', '/failed_eds_health'),
        );
      },
      now: () => now,
    });
    await collector.collect();
    assert.deepEqual(collector.ejections(), []);
    assert.deepEqual(clustersRead, []);
    ejecting.add('a:1');
    now += 5000;
    await collector.collect();
    const first = now;
    ejecting.add('b:1');
    now += 5000;
    await collector.collect();
    assert.deepEqual(clustersRead.sort(), ['a:1', 'a:1', 'b:1']);
    assert.deepEqual(collector.ejections(), [
      {
        service: 'catalog.default.svc.cluster.local',
        endpoint: '127.0.0.11:9080',
        workload: 'workload:default/catalog-flaky',
        ejectedBy: ['frontend-0.default', 'frontend-1.default'],
        since: first,
      },
    ]);
    // Back in the pool for both: gone, and no /clusters read.
    ejecting.clear();
    clustersRead.length = 0;
    now += 5000;
    await collector.collect();
    assert.deepEqual(collector.ejections(), []);
    assert.deepEqual(clustersRead, []);
  });

  it('reads ejected hosts out of /clusters text, IPv6 ones too', () => {
    assert.deepEqual(
      parseEjectedHosts(
        'c1::[::1]:80::health_flags::/failed_outlier_check/failed_eds_health\n' +
          'c1::[::1]:80::weight::1\nc2::10.0.0.1:80::health_flags::healthy\n',
      ),
      [{ cluster: 'c1', endpoint: '[::1]:80' }],
    );
    assert.equal(clusterServiceHost('outbound|80|v1|a.b.svc.cluster.local'), 'a.b.svc.cluster.local');
    assert.equal(clusterServiceHost('static-backend'), 'static-backend');
  });
});
