import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testHosts } from '../upstream/testing.ts';
import { renderClustersJson, renderClustersText } from './clusters.ts';

describe('/clusters health flags', () => {
  it("prints Envoy's flags for ejected hosts, before the EDS flags", () => {
    const [ok, ejected, both] = testHosts([{}, {}, { health: 'UNHEALTHY' }]);
    ejected.outlierEjected = true;
    both.outlierEjected = true;
    const text = renderClustersText([{ name: 'svc', hosts: [ok, ejected, both] }]).split('\n');
    assert.ok(text.includes(`svc::${ok.key}::health_flags::healthy`));
    assert.ok(text.includes(`svc::${ejected.key}::health_flags::/failed_outlier_check`));
    assert.ok(text.includes(`svc::${both.key}::health_flags::/failed_outlier_check/failed_eds_health`));

    const json = renderClustersJson([{ name: 'svc', hosts: [ok, ejected] }]) as {
      cluster_statuses: { host_statuses: { health_status: Record<string, unknown> }[] }[];
    };
    const [a, b] = json.cluster_statuses[0].host_statuses;
    assert.deepEqual(a.health_status, { eds_health_status: 'HEALTHY' });
    assert.deepEqual(b.health_status, { eds_health_status: 'HEALTHY', failed_outlier_check: true });
  });
});
