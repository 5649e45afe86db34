/**
 * PrometheusSignals when its Prometheus cannot answer: the collector's numbers, with the reason in
 * `source`, and never a rejection. (Answers from a real Prometheus: test/e2e/dashboard-prometheus.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { IstioMetrics, renderLabels } from '../proxy/telemetry/istio-metrics.ts';
import type { CounterSeries } from '../proxy/telemetry/istio-metrics.ts';
import { HTTP_LABELS } from '../proxy/telemetry/labels.ts';
import { PrometheusSignals } from './prometheus-source.ts';
import { StatsCollector } from './stats-collector.ts';

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A server that answers every request with `status` and `body`, standing in for a broken Prometheus. */
async function answering(status: number, body: string): Promise<{ url: string; close(): void }> {
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`, close: () => s.close() };
}

async function collectorWithTraffic(): Promise<StatsCollector> {
  const m = new IstioMetrics();
  const v: Record<string, string> = {
    reporter: 'source',
    source_workload: 'client',
    source_workload_namespace: 'default',
    destination_service: 'echo.default.svc.cluster.local',
    destination_service_name: 'echo',
    destination_service_namespace: 'default',
    destination_workload: 'echo',
    destination_workload_namespace: 'default',
    request_protocol: 'http',
    response_code: '200',
  };
  const labels = renderLabels(
    HTTP_LABELS,
    HTTP_LABELS.map((l) => v[l] ?? ''),
  );
  let now = 1_000_000;
  const c = new StatsCollector({
    targets: () => [{ address: 'client:1', proxyId: 'client' }],
    scrape: () => Promise.resolve(m.renderPrometheus({})),
    now: () => now,
  });
  await c.collect();
  (m.series('requests_total', labels) as CounterSeries).value += 50;
  now += 5000;
  await c.collect();
  return c;
}

describe('PrometheusSignals falls back to the collector', () => {
  it('when nothing listens at the URL', async () => {
    const collector = await collectorWithTraffic();
    const url = `http://127.0.0.1:${await closedPort()}`;
    const p = new PrometheusSignals({ url, collector, timeoutMs: 2000 });
    const g = await p.graph();
    assert.equal(g.source?.kind, 'prometheus');
    assert.equal(g.source?.url, url);
    assert.match(g.source?.error ?? '', /ECONNREFUSED/);
    assert.deepEqual(
      g.edges.map((e) => [e.id, e.rps]),
      collector.graph().edges.map((e) => [e.id, e.rps]),
    );
    assert.ok(g.edges.some((e) => e.rps === 10));
    const s = await p.service('default', 'echo');
    assert.equal(s?.host, 'echo.default.svc.cluster.local');
    assert.match(s?.source?.error ?? '', /ECONNREFUSED/);
    assert.equal(await p.service('default', 'nothing'), undefined);
    const w = await p.workload('default', 'client');
    assert.ok(w?.outbound.rps.includes(10));
  });

  it('when the server answers an error or something other than the API', async () => {
    const collector = await collectorWithTraffic();
    const bad = await answering(
      400,
      JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error' }),
    );
    const html = await answering(502, '<html>bad gateway</html>');
    try {
      const g = await new PrometheusSignals({ url: bad.url, collector }).graph();
      assert.equal(g.source?.error, 'Prometheus: parse error');
      assert.ok(g.edges.length > 0);
      const h = await new PrometheusSignals({ url: html.url, collector }).graph();
      assert.equal(h.source?.error, "Prometheus answered HTTP 502, not its API's JSON");
    } finally {
      bad.close();
      html.close();
    }
  });
});
