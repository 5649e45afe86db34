import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classify,
  costReport,
  DEFAULT_PRICES,
  GIB,
  MONTH_SECONDS,
  parsePrices,
  uniformSplit,
} from './model.ts';
import type { Flow, ServiceEndpoints } from './model.ts';

const A = { region: 'r1', zone: 'a' };
const B = { region: 'r1', zone: 'b' };
const C = { region: 'r1', zone: 'c' };
const FAR = { region: 'r2', zone: 'x' };
const SVC = 'shop.default.svc.cluster.local';

function flow(to: typeof A, bytes: number, requests = 0, over: Partial<Flow> = {}): Flow {
  return { source: 'default/client', proxy: 'p1', service: SVC, from: A, to, bytes, requests, ...over };
}

/** Two endpoints in each of the three zones, as the zones test runs them. */
const SIX: ServiceEndpoints = {
  proxy: 'p1',
  service: SVC,
  localities: [
    { ...A, endpoints: 2 },
    { ...B, endpoints: 2 },
    { ...C, endpoints: 2 },
  ],
};

describe('cost model', () => {
  it('classifies hops by region, then zone; unknown when it cannot tell', () => {
    assert.equal(classify(A, A), 'inZone');
    assert.equal(classify(A, B), 'crossZone');
    assert.equal(classify(A, FAR), 'crossRegion');
    assert.equal(classify(A, { region: 'r2', zone: 'unknown' }), 'crossRegion');
    assert.equal(classify(A, { region: 'r1', zone: 'unknown' }), 'unknown');
    assert.equal(classify({ region: 'unknown', zone: 'unknown' }, A), 'unknown');
  });

  it('costs nothing when every byte stays in its zone', () => {
    const r = costReport([flow(A, 5 * GIB, 1000)], [SIX], 3600);
    assert.equal(r.total.monthlyCost, 0);
    assert.deepEqual(r.total.bytesPct, { inZone: 100, crossZone: 0, crossRegion: 0, unknown: 0 });
    assert.deepEqual(r.total.requestsPct, { inZone: 100, crossZone: 0, crossRegion: 0, unknown: 0 });
    assert.equal(r.edges.length, 1);
    assert.equal(r.edges[0].monthlyCost, 0);
  });

  it('prices known cross-zone and cross-region bytes: both sides of a zone crossing, one of a region one', () => {
    // In one day: 10 GiB across zones ($0.01 × 2 sides) and 1 GiB across regions ($0.02), 10 GiB in zone.
    const r = costReport(
      [flow(B, 6 * GIB, 60), flow(C, 4 * GIB, 40), flow(FAR, GIB, 10), flow(A, 10 * GIB, 90)],
      [],
      86_400,
    );
    assert.deepEqual(r.total.bytes, { inZone: 10 * GIB, crossZone: 10 * GIB, crossRegion: GIB, unknown: 0 });
    assert.deepEqual(r.total.requests, { inZone: 90, crossZone: 100, crossRegion: 10, unknown: 0 });
    // (10 × 0.02 + 1 × 0.02) per day × 30 days = $6.60.
    assert.ok(Math.abs(r.total.monthlyCost - 6.6) < 1e-9, String(r.total.monthlyCost));
    assert.ok(Math.abs(r.total.bytesPerSecond.crossZone - (10 * GIB) / 86_400) < 1e-6);
    assert.equal(r.total.uniform, null, 'no endpoints known: no counterfactual');
    // Other prices: $0.02 per side across zones, $0.05 across regions.
    const p = costReport(
      [flow(B, GIB), flow(FAR, GIB)],
      [],
      MONTH_SECONDS,
      parsePrices('zone=0.02,region=0.05'),
    );
    assert.ok(Math.abs(p.total.monthlyCost - (0.04 + 0.05)) < 1e-12);
    assert.deepEqual(p.prices, { interZonePerGb: 0.02, interRegionPerGb: 0.05 });
  });

  it('spreads the same bytes uniformly: 2 of 6 endpoints in the caller zone leaves 2/3 crossing', () => {
    const r = costReport([flow(A, 3 * GIB, 300)], [SIX], MONTH_SECONDS);
    assert.equal(r.total.monthlyCost, 0);
    const u = r.total.uniform!;
    assert.ok(Math.abs(u.bytes.inZone - GIB) < 1, String(u.bytes.inZone));
    assert.ok(Math.abs(u.bytes.crossZone - 2 * GIB) < 1, String(u.bytes.crossZone));
    assert.ok(Math.abs(u.bytesPct!.crossZone - 200 / 3) < 1e-9);
    // 2 GiB × $0.01 × 2 sides over one month.
    assert.ok(Math.abs(u.monthlyCost - 0.04) < 1e-12, String(u.monthlyCost));
    assert.equal(u.partial, false);
    assert.deepEqual(uniformSplit(A, []), null);
    assert.deepEqual(
      uniformSplit(A, [
        { ...FAR, endpoints: 1 },
        { ...A, endpoints: 3 },
      ]),
      {
        inZone: 0.75,
        crossZone: 0,
        crossRegion: 0.25,
        unknown: 0,
      },
    );
  });

  it('groups flows into edges by source workload and service, the most expensive first', () => {
    const other = 'other.default.svc.cluster.local';
    const r = costReport(
      [
        flow(A, 100, 1),
        flow(B, 50, 1),
        flow(B, 1000, 2, { service: other, proxy: 'p2' }),
        flow(A, 70, 1, { proxy: 'p3', from: B, to: B }),
      ],
      [SIX],
      10,
    );
    assert.deepEqual(
      r.edges.map((e) => [e.source, e.service, e.bytes.inZone, e.bytes.crossZone]),
      [
        ['default/client', other, 0, 1000],
        ['default/client', SVC, 170, 50],
      ],
    );
    // p3's flow has no endpoints known: the counterfactual covers the rest and says it is partial.
    const svc = r.edges[1].uniform!;
    assert.equal(svc.partial, true);
    assert.ok(Math.abs(svc.bytes.inZone - 150 / 3) < 1e-9);
    assert.equal(r.edges[0].uniform, null);
  });

  it('parses prices and refuses what it cannot read', () => {
    assert.deepEqual(parsePrices(''), DEFAULT_PRICES);
    assert.deepEqual(parsePrices('region=0.09'), { interZonePerGb: 0.01, interRegionPerGb: 0.09 });
    assert.deepEqual(parsePrices(' zone = .02 , region=1'), { interZonePerGb: 0.02, interRegionPerGb: 1 });
    assert.throws(() => parsePrices('zone=-1'), /bad price/);
    assert.throws(() => parsePrices('az=0.01'), /bad price/);
  });
});
