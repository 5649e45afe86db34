import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { normalize } from '../../config-proto/normalize.ts';
import { compileCluster } from '../compile.ts';
import { DEFAULT_PEAK_EWMA } from './peak-ewma.ts';

const PATH = 'static_resources.clusters[0]';
const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';

function peakEwmaPolicy(value?: JsonObject, typeUrl = 'weft.dev/lb/peak_ewma'): JsonObject {
  return {
    typed_extension_config: {
      name: 'weft.lb.peak_ewma',
      typed_config: { '@type': TYPED_STRUCT, type_url: typeUrl, ...(value ? { value } : {}) },
    },
  };
}

function cluster(extra: JsonObject): JsonObject {
  return {
    name: 'backend',
    type: 'STATIC',
    load_assignment: {
      cluster_name: 'backend',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 80 } } } },
          ],
        },
      ],
    },
    ...extra,
  };
}

/** Through the bootstrap validator (proto3 JSON normalization), then the cluster compiler. */
function compile(json: Json) {
  return compileCluster(normalize('envoy.config.cluster.v3.Cluster', json, PATH), PATH);
}

function rejects(json: Json, path: string, detail: RegExp): void {
  assert.throws(
    () => compile(json),
    (err: unknown) =>
      err instanceof ConfigError && err.message.startsWith(`${path}:`) && detail.test(err.message),
  );
}

describe('PEAK_EWMA in a Cluster (load_balancing_policy)', () => {
  it('is selected by a TypedStruct with type_url weft.dev/lb/peak_ewma, with its settings', () => {
    const c = compile(
      cluster({
        load_balancing_policy: { policies: [peakEwmaPolicy({ decay: '5s', default_rtt: '0.050s' })] },
      }),
    );
    assert.equal(c.lbPolicy, 'PEAK_EWMA');
    assert.deepEqual(c.peakEwma, { decayMs: 5000, defaultRttMs: 50 });
  });

  it('defaults decay to 10 s and the default RTT to 30 ms', () => {
    const c = compile(cluster({ load_balancing_policy: { policies: [peakEwmaPolicy()] } }));
    assert.deepEqual(c.peakEwma, DEFAULT_PEAK_EWMA);
    assert.deepEqual(DEFAULT_PEAK_EWMA, { decayMs: 10_000, defaultRttMs: 30 });
  });

  it('accepts the older udpa.type.v1.TypedStruct and lb_policy LOAD_BALANCING_POLICY_CONFIG', () => {
    const policy = peakEwmaPolicy();
    (policy.typed_extension_config as JsonObject).typed_config = {
      '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
      type_url: 'weft.dev/lb/peak_ewma',
    };
    const c = compile(
      cluster({ lb_policy: 'LOAD_BALANCING_POLICY_CONFIG', load_balancing_policy: { policies: [policy] } }),
    );
    assert.equal(c.lbPolicy, 'PEAK_EWMA');
  });

  it('uses the first supported entry of the list, skipping unknown TypedStructs', () => {
    const c = compile(
      cluster({
        load_balancing_policy: {
          policies: [peakEwmaPolicy({}, 'example.com/other_lb'), peakEwmaPolicy({ decay: '2s' })],
        },
      }),
    );
    assert.equal(c.peakEwma?.decayMs, 2000);
  });

  it('leaves other clusters without PEAK_EWMA settings', () => {
    const c = compile(cluster({ lb_policy: 'LEAST_REQUEST' }));
    assert.equal(c.lbPolicy, 'LEAST_REQUEST');
    assert.equal(c.peakEwma, undefined);
  });

  it('rejects a list with no supported policy, naming what is supported', () => {
    rejects(
      cluster({ load_balancing_policy: { policies: [peakEwmaPolicy({}, 'example.com/other_lb')] } }),
      `${PATH}.load_balancing_policy`,
      /not supported by Weft: no policy in the list is .*weft\.dev\/lb\/peak_ewma/,
    );
  });

  it('rejects unknown settings, bad durations and a conflicting lb_policy', () => {
    const value = `${PATH}.load_balancing_policy.policies[0].typed_extension_config.typed_config.value`;
    rejects(
      cluster({ load_balancing_policy: { policies: [peakEwmaPolicy({ decay_time: '1s' })] } }),
      `${value}.decay_time`,
      /not supported by Weft/,
    );
    rejects(
      cluster({ load_balancing_policy: { policies: [peakEwmaPolicy({ decay: '10' })] } }),
      `${value}.decay`,
      /invalid duration/,
    );
    rejects(
      cluster({ load_balancing_policy: { policies: [peakEwmaPolicy({ default_rtt: '0s' })] } }),
      `${value}.default_rtt`,
      /greater than 0/,
    );
    rejects(
      cluster({ lb_policy: 'RANDOM', load_balancing_policy: { policies: [peakEwmaPolicy()] } }),
      `${PATH}.lb_policy`,
      /conflicts with load_balancing_policy/,
    );
    rejects(
      cluster({
        load_balancing_policy: { policies: [peakEwmaPolicy()] },
        least_request_lb_config: { choice_count: 3 },
      }),
      `${PATH}.least_request_lb_config`,
      /only applies to lb_policy LEAST_REQUEST, not PEAK_EWMA/,
    );
  });
});
