/**
 * /api/cost over real exposition text: the fake proxy is the proxy's own LocalityBytesMetrics, rendered as
 * /stats/prometheus renders it, scraped by a real StatsCollector (its clock given by the test).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GeneratedConfig } from '../control/xds/ads-server.ts';
import { TYPE_URL } from '../control/xds/types.ts';
import type { CostReport } from '../cost/model.ts';
import { LocalityBytesMetrics, PROTOCOL_HTTP } from '../proxy/telemetry/locality-bytes.ts';
import { CostView, endpointsOfConfig } from './cost-view.ts';
import { MAX_FLOWS } from './locality-flows.ts';
import { StatsCollector } from './stats-collector.ts';

const SVC = 'zones.default.svc.cluster.local';
const here = { region: 'r1', zone: 'zone-a', subZone: '' };
const zone = (z: string): { region: string; zone: string; subZone: string } => ({
  region: 'r1',
  zone: z,
  subZone: '',
});

/** Six endpoints, two per zone, one of zone-c UNHEALTHY; and a subset cluster of the same service. */
function generated(): GeneratedConfig {
  const group = (z: string, ips: string[], unhealthy = ''): Record<string, unknown> => ({
    locality: { region: 'r1', zone: z },
    lb_endpoints: ips.map((ip) => ({
      endpoint: { address: { socket_address: { address: ip, port_value: 8080 } } },
      health_status: ip === unhealthy ? 'UNHEALTHY' : 'HEALTHY',
    })),
  });
  const cla = (name: string, endpoints: unknown[]): { name: string; version: string; resource: never } => ({
    name,
    version: '1',
    resource: { cluster_name: name, endpoints } as never,
  });
  return {
    node: {} as GeneratedConfig['node'],
    types: new Map([
      [
        TYPE_URL.endpoint,
        [
          cla(`outbound|8080||${SVC}`, [
            group('zone-a', ['10.0.0.1', '10.0.0.2']),
            group('zone-b', ['10.0.1.1', '10.0.1.2']),
            group('zone-c', ['10.0.2.1', '10.0.2.2'], '10.0.2.2'),
          ]),
          cla(`outbound|8080|v1|${SVC}`, [group('zone-c', ['10.0.2.1', '10.0.2.3'])]),
          cla('static-thing', [group('zone-z', ['10.9.9.9'])]),
        ],
      ],
    ]),
  };
}

describe('/api/cost', () => {
  it('counts endpoints per service and locality from the generated EDS', () => {
    const got = endpointsOfConfig('p', generated());
    assert.deepEqual(got, [
      {
        proxy: 'p',
        service: SVC,
        localities: [
          { region: 'r1', zone: 'zone-a', endpoints: 2 },
          { region: 'r1', zone: 'zone-b', endpoints: 2 },
          { region: 'r1', zone: 'zone-c', endpoints: 2 },
        ],
      },
    ]);
  });

  it('prices what the collector scraped between two scrapes, with the uniform counterfactual', () => {
    let now = 1_000_000;
    const metrics = new LocalityBytesMetrics();
    const collector = new StatsCollector({
      targets: () => [],
      intervalMs: 5000,
      now: () => now,
    });
    const target = '10.0.0.9:15000';
    const local = metrics.counters(here, zone('zone-a'), PROTOCOL_HTTP, SVC);
    const across = metrics.counters(here, zone('zone-b'), PROTOCOL_HTTP, SVC);
    local.request.value = 999; // before the first scrape: a baseline, not counted
    collector.ingest(target, metrics.renderPrometheus({}), now);
    collector.tick(now);
    now += 5000;
    local.request.value += 9000;
    local.response.value += 1000;
    local.requests.value += 19;
    across.request.value += 600;
    across.response.value += 400;
    across.requests.value += 1;
    collector.ingest(target, metrics.renderPrometheus({}), now);
    collector.tick(now);

    const view = new CostView({
      collector,
      generatedConfig: (id) => (id === target ? generated() : null),
    });
    const a = view.answer(new URLSearchParams());
    assert.equal(a.status, 200);
    const r = a.body as CostReport;
    // Two intervals: the collector knows no tick before the first, which it takes as one interval long.
    assert.equal(r.windowSeconds, 10);
    assert.deepEqual(r.total.bytes, { inZone: 10_000, crossZone: 1000, crossRegion: 0, unknown: 0 });
    assert.deepEqual(r.total.requests, { inZone: 19, crossZone: 1, crossRegion: 0, unknown: 0 });
    assert.equal(r.total.bytesPerSecond.crossZone, 100);
    // 1000 B / 10 s for 30 days, at $0.01/GiB on each side.
    const month = ((1000 / 10) * 30 * 86_400 * 2 * 0.01) / 2 ** 30;
    assert.ok(Math.abs(r.total.monthlyCost - month) < 1e-12);
    assert.equal(r.edges.length, 1);
    assert.equal(r.edges[0].service, SVC);
    // The proxy is not a known target: it is named by its address.
    assert.equal(r.edges[0].source, target);
    const u = r.total.uniform!;
    assert.ok(Math.abs(u.bytesPct!.crossZone - 200 / 3) < 1e-9, JSON.stringify(u));

    const priced = view.answer(new URLSearchParams('zone=0.02&region=0.1&window=60')).body as CostReport;
    assert.deepEqual(priced.prices, { interZonePerGb: 0.02, interRegionPerGb: 0.1 });
    assert.ok(Math.abs(priced.total.monthlyCost - 2 * month) < 1e-12);
    assert.equal(view.answer(new URLSearchParams('zone=cheap')).status, 400);
  });

  it('keeps at most MAX_FLOWS flows', () => {
    let now = 1000;
    const metrics = new LocalityBytesMetrics();
    const collector = new StatsCollector({
      targets: () => [],
      intervalMs: 1000,
      retentionMs: 3000,
      now: () => now,
    });
    collector.ingest('p:1', metrics.renderPrometheus({}), now);
    for (let i = 0; i < MAX_FLOWS + 10; i++)
      metrics.counters(here, zone(`z${i}`), PROTOCOL_HTTP, SVC).request.value = 1;
    now += 1000;
    collector.ingest('p:1', metrics.renderPrometheus({}), now);
    collector.tick(now);
    assert.equal(collector.costWindow().flows.length, MAX_FLOWS);
    assert.equal(collector.droppedFlows, 10);
    // Forgotten after a whole retention without traffic.
    for (let i = 0; i < 3; i++) {
      now += 1000;
      collector.ingest('p:1', metrics.renderPrometheus({}), now);
      collector.tick(now);
    }
    assert.equal(collector.costWindow().flows.length, 0);
  });
});
