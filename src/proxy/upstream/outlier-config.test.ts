import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { compileCluster } from './compile.ts';

const PATH = 'static_resources.clusters[0]';
const OD = `${PATH}.outlier_detection`;

function cluster(outlier: JsonObject | undefined): JsonObject {
  return {
    name: 'backend',
    load_assignment: {
      cluster_name: 'backend',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } },
          ],
        },
      ],
    },
    ...(outlier === undefined ? {} : { outlier_detection: outlier }),
  };
}

function assertRejects(outlier: JsonObject, path: string, detail: RegExp): void {
  assert.throws(
    () => compileCluster(cluster(outlier), PATH),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      assert.equal(err.path, path);
      assert.match(err.detail, detail);
      return true;
    },
  );
}

describe('outlier_detection config', () => {
  it('is absent when the cluster has none', () => {
    assert.equal(compileCluster(cluster(undefined), PATH).outlierDetection, undefined);
  });

  it("applies Envoy's defaults to an empty message", () => {
    assert.deepEqual(compileCluster(cluster({}), PATH).outlierDetection, {
      consecutive5xx: 5,
      enforcingConsecutive5xx: 100,
      consecutiveGatewayFailure: 5,
      enforcingConsecutiveGatewayFailure: 0,
      splitExternalLocalOriginErrors: false,
      consecutiveLocalOriginFailure: 5,
      enforcingConsecutiveLocalOriginFailure: 100,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionTimeJitterMs: 0,
      maxEjectionPercent: 10,
      alwaysEjectOneHost: false,
    });
  });

  it('reads every supported field', () => {
    const od = compileCluster(
      cluster({
        consecutive_5xx: 3,
        enforcing_consecutive_5xx: 50,
        consecutive_gateway_failure: 2,
        enforcing_consecutive_gateway_failure: 100,
        split_external_local_origin_errors: true,
        consecutive_local_origin_failure: 4,
        enforcing_consecutive_local_origin_failure: 0,
        interval: '0.3s',
        base_ejection_time: '0.5s',
        max_ejection_time: '2s',
        max_ejection_time_jitter: '0.1s',
        max_ejection_percent: 34,
        always_eject_one_host: true,
        enforcing_success_rate: 0,
        success_rate_minimum_hosts: 3,
        failure_percentage_threshold: 85,
      }),
      PATH,
    ).outlierDetection;
    assert.deepEqual(od, {
      consecutive5xx: 3,
      enforcingConsecutive5xx: 50,
      consecutiveGatewayFailure: 2,
      enforcingConsecutiveGatewayFailure: 100,
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailure: 4,
      enforcingConsecutiveLocalOriginFailure: 0,
      intervalMs: 300,
      baseEjectionTimeMs: 500,
      maxEjectionTimeMs: 2000,
      maxEjectionTimeJitterMs: 100,
      maxEjectionPercent: 34,
      alwaysEjectOneHost: true,
    });
  });

  it('raises the default max_ejection_time to a longer base_ejection_time', () => {
    const od = compileCluster(cluster({ base_ejection_time: '400s' }), PATH).outlierDetection;
    assert.equal(od?.maxEjectionTimeMs, 400_000);
  });

  it('rejects success-rate and failure-percentage analysis with the field path', () => {
    assertRejects(
      { enforcing_success_rate: 100 },
      `${OD}.enforcing_success_rate`,
      /success-rate .*not supported by Weft/,
    );
    assertRejects(
      { enforcing_local_origin_success_rate: 20 },
      `${OD}.enforcing_local_origin_success_rate`,
      /not supported by Weft/,
    );
    // Envoy's enforcing_success_rate defaults to 100: tuning success rate without disabling it is rejected.
    assertRejects(
      { success_rate_stdev_factor: 1900 },
      `${OD}.success_rate_stdev_factor`,
      /not supported by Weft/,
    );
    assertRejects(
      { enforcing_failure_percentage: 1 },
      `${OD}.enforcing_failure_percentage`,
      /failure-percentage .*not supported by Weft/,
    );
    assertRejects(
      { enforcing_failure_percentage_local_origin: 5 },
      `${OD}.enforcing_failure_percentage_local_origin`,
      /not supported by Weft/,
    );
  });

  it('rejects unknown fields and out-of-range values with the field path', () => {
    assertRejects({ monitors: [{ name: 'x' }] }, `${OD}.monitors`, /not supported by Weft/);
    assertRejects({ consecutive_5xx: -1 }, `${OD}.consecutive_5xx`, /at least 0/);
    assertRejects({ max_ejection_percent: 101 }, `${OD}.max_ejection_percent`, /at most 100/);
    assertRejects({ enforcing_consecutive_5xx: 200 }, `${OD}.enforcing_consecutive_5xx`, /at most 100/);
    assertRejects({ interval: '0s' }, `${OD}.interval`, /greater than 0/);
    assertRejects({ base_ejection_time: 'soon' }, `${OD}.base_ejection_time`, /./);
    assertRejects(
      { base_ejection_time: '10s', max_ejection_time: '5s' },
      `${OD}.max_ejection_time`,
      /base_ejection_time/,
    );
    assertRejects(
      { split_external_local_origin_errors: 'yes' },
      `${OD}.split_external_local_origin_errors`,
      /true or false/,
    );
  });
});
