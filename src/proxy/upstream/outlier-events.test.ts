/**
 * Ejections and returns are operator-facing events (issue #4): they must reach the logger with the
 * cluster, the host and, for an ejection, why. A capturing logger stands in for stderr so the entries
 * can be asserted field by field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '../../core/logger.ts';
import { StatsStore } from '../stats/store.ts';
import { createCluster } from './cluster.ts';
import { OutlierDetector } from './outlier.ts';
import type { OutlierDetectionConfig } from './outlier-config.ts';
import { testClusterConfig } from './testing.ts';

interface Entry {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

function capturingLogger(entries: Entry[]): Logger {
  const at =
    (level: string) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      entries.push({ level, msg, fields: fields ?? {} });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

const CONFIG: OutlierDetectionConfig = {
  consecutive5xx: 3,
  enforcingConsecutive5xx: 100,
  consecutiveGatewayFailure: 2,
  enforcingConsecutiveGatewayFailure: 100,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailure: 2,
  enforcingConsecutiveLocalOriginFailure: 100,
  intervalMs: 1000,
  baseEjectionTimeMs: 10_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionTimeJitterMs: 0,
  maxEjectionPercent: 100,
  alwaysEjectOneHost: false,
};

function setup(overrides: Partial<OutlierDetectionConfig> = {}) {
  const cluster = createCluster(
    testClusterConfig({
      name: 'reviews',
      localityEndpoints: [
        {
          locality: { region: '', zone: '', subZone: '' },
          priority: 0,
          weight: undefined,
          endpoints: [0, 1, 2].map((i) => ({
            address: '127.0.91.9',
            port: 7000 + i,
            weight: 1,
            health: 'HEALTHY' as const,
          })),
        },
      ],
    }),
  );
  const entries: Entry[] = [];
  const clock = { time: 0 };
  const detector = new OutlierDetector(cluster, { ...CONFIG, ...overrides }, new StatsStore(), {
    now: () => clock.time,
    random: () => 0.5,
    timer: false,
    logger: capturingLogger(entries),
  });
  return { hosts: cluster.hosts(), detector, entries, clock };
}

const ejections = (entries: readonly Entry[]) => entries.filter((e) => e.msg === 'host ejected');
const returns = (entries: readonly Entry[]) => entries.filter((e) => e.msg === 'host returned to service');

describe('outlier detection events', () => {
  it('logs an ejection with cluster, host, reason and ejection time, then the return', () => {
    const { hosts, detector, entries, clock } = setup();
    const host = hosts[1];
    for (let i = 0; i < 3; i++) detector.response(host, 500);
    assert.equal(host.outlierEjected, true);

    const ejected = ejections(entries);
    assert.equal(ejected.length, 1);
    assert.equal(ejected[0].level, 'info');
    assert.deepEqual(ejected[0].fields, {
      cluster: 'reviews',
      host: '127.0.91.9:7001',
      reason: 'consecutive_5xx',
      ejections: 1,
      ejectionTimeMs: 10_000,
    });
    assert.equal(returns(entries).length, 0);

    // Not yet due: the sweep must neither return the host nor log a return.
    clock.time = 9_999;
    detector.sweep();
    assert.equal(host.outlierEjected, true);
    assert.equal(returns(entries).length, 0);

    clock.time = 10_000;
    detector.sweep();
    assert.equal(host.outlierEjected, false);
    const returned = returns(entries);
    assert.equal(returned.length, 1);
    assert.equal(returned[0].level, 'info');
    assert.deepEqual(returned[0].fields, { cluster: 'reviews', host: '127.0.91.9:7001', ejections: 1 });

    // A sweep with nothing ejected adds no entries.
    const before = entries.length;
    clock.time = 20_000;
    detector.sweep();
    assert.equal(entries.length, before);
  });

  it('names the gateway-failure reason and the grown ejection time on a second ejection', () => {
    const { hosts, detector, entries, clock } = setup({ consecutive5xx: 100 });
    const host = hosts[0];
    detector.response(host, 503);
    detector.response(host, 502);
    clock.time = 10_000;
    detector.sweep();
    detector.response(host, 504);
    detector.response(host, 504);

    const ejected = ejections(entries);
    assert.equal(ejected.length, 2);
    for (const e of ejected) {
      assert.equal(e.fields.cluster, 'reviews');
      assert.equal(e.fields.host, '127.0.91.9:7000');
      assert.equal(e.fields.reason, 'consecutive_gateway_failure');
    }
    assert.equal(ejected[1].fields.ejections, 2);
    assert.equal(ejected[1].fields.ejectionTimeMs, 20_000);
    assert.equal(returns(entries).length, 1);
  });

  it('names the local-origin reason when local failures are split out', () => {
    const { hosts, detector, entries } = setup({ splitExternalLocalOriginErrors: true });
    const host = hosts[2];
    detector.upstreamFailure(host, 'connect');
    detector.upstreamFailure(host, 'reset');
    const ejected = ejections(entries);
    assert.equal(ejected.length, 1);
    assert.equal(ejected[0].fields.reason, 'consecutive_local_origin_failure');
    assert.equal(ejected[0].fields.host, '127.0.91.9:7002');
  });

  it('logs nothing for a detection that is not enforced', () => {
    const { hosts, detector, entries } = setup({ enforcingConsecutive5xx: 0 });
    for (let i = 0; i < 3; i++) detector.response(hosts[0], 500);
    assert.equal(hosts[0].outlierEjected, false);
    assert.equal(ejections(entries).length, 0);
  });
});
