import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outlierDetectionFields } from './clusters.ts';

describe("DestinationRule outlierDetection → cluster outlier_detection (Istio's translation)", () => {
  it('adds nothing without outlierDetection', () => {
    assert.deepEqual(outlierDetectionFields(undefined), {});
    assert.deepEqual(outlierDetectionFields({ loadBalancer: { simple: 'RANDOM' } }), {});
  });

  it('maps every field, and turns panic off unless minHealthPercent says otherwise', () => {
    assert.deepEqual(
      outlierDetectionFields({
        outlierDetection: {
          consecutive5xxErrors: 7,
          consecutiveGatewayErrors: 3,
          splitExternalLocalOriginErrors: true,
          consecutiveLocalOriginFailures: 2,
          interval: '300ms',
          baseEjectionTime: '1m',
          maxEjectionPercent: 40,
        },
      }),
      {
        outlier_detection: {
          enforcing_success_rate: 0,
          consecutive_5xx: 7,
          enforcing_consecutive_5xx: 100,
          consecutive_gateway_failure: 3,
          enforcing_consecutive_gateway_failure: 100,
          interval: '0.3s',
          base_ejection_time: '60s',
          max_ejection_percent: 40,
          split_external_local_origin_errors: true,
          consecutive_local_origin_failure: 2,
          enforcing_consecutive_local_origin_failure: 100,
          enforcing_local_origin_success_rate: 0,
        },
        common_lb_config: { healthy_panic_threshold: { value: 0 } },
      },
    );
    const withMin = outlierDetectionFields({ outlierDetection: { minHealthPercent: 30 } });
    assert.deepEqual(withMin.common_lb_config, { healthy_panic_threshold: { value: 30 } });
    // Istio leaves Envoy's defaults in place for what is not given.
    assert.deepEqual(withMin.outlier_detection, { enforcing_success_rate: 0 });
  });

  it('disables a detector set to 0', () => {
    const out = outlierDetectionFields({
      outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 0 },
    });
    assert.deepEqual(out.outlier_detection, {
      enforcing_success_rate: 0,
      consecutive_5xx: 0,
      enforcing_consecutive_5xx: 0,
      consecutive_gateway_failure: 0,
      enforcing_consecutive_gateway_failure: 0,
    });
  });

  it('translates the deprecated consecutiveErrors as gateway errors, unless a newer field is set', () => {
    assert.deepEqual(
      outlierDetectionFields({ outlierDetection: { consecutiveErrors: 4 } }).outlier_detection,
      {
        enforcing_success_rate: 0,
        consecutive_gateway_failure: 4,
        enforcing_consecutive_gateway_failure: 100,
        enforcing_consecutive_5xx: 0,
      },
    );
    assert.deepEqual(
      outlierDetectionFields({ outlierDetection: { consecutiveErrors: 4, consecutive5xxErrors: 6 } })
        .outlier_detection,
      { enforcing_success_rate: 0, consecutive_5xx: 6, enforcing_consecutive_5xx: 100 },
    );
  });

  it('ignores consecutiveLocalOriginFailures without splitExternalLocalOriginErrors, as Istio does', () => {
    assert.deepEqual(
      outlierDetectionFields({ outlierDetection: { consecutiveLocalOriginFailures: 3 } }).outlier_detection,
      { enforcing_success_rate: 0 },
    );
  });
});
