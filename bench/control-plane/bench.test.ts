// The control-plane benchmark's own parts (mesh files, wire parsing, statistics), and a tiny run of the whole
// benchmark against a real control plane: every proxy must converge and every endpoint change must reach every
// proxy. No timing is asserted.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { decodeMessage, encodeAny, encodeMessage } from '../../src/api/envoy/wire.ts';
import {
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryResponse,
} from '../../src/control/xds/response-codec.ts';
import { runHarness } from './harness.ts';
import { endpointCounts, generateMesh } from './mesh-config.ts';
import { changeLatency, distribution, percentile, starvation } from './stats.ts';
import {
  GrpcDeframer,
  clusterInfo,
  encodeNames,
  grpcFrame,
  parseDeltaResponse,
  parseSotwResponse,
  resourceName,
  sotwRequestParts,
} from './xds-wire.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

describe('control-plane bench: mesh', () => {
  it('spreads exactly the endpoints asked for', () => {
    for (const [services, endpoints] of [
      [5000, 20000],
      [7, 31],
      [5, 5],
      [3, 100],
    ]) {
      const counts = endpointCounts(services, endpoints);
      assert.equal(counts.length, services);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        endpoints,
      );
      assert.ok(counts.every((c) => c >= 1));
    }
  });

  it('writes one file per service and per WorkloadEntry', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-test-'));
    try {
      const mesh = generateMesh(dir, {
        services: 10,
        endpoints: 40,
        namespaces: 2,
        proxies: 4,
        deltaShare: 0.5,
      });
      assert.equal(mesh.files, 50);
      assert.equal(mesh.workloads.length, 40);
      assert.equal(mesh.proxies.filter((p) => p.delta).length, 2);
      // Services 0 and 5 have DestinationRules (3 clusters per port), service 3 a second (gRPC) port.
      assert.equal(mesh.clustersPerProxy, 10 + 2 * 2 + 1);
      assert.deepEqual(readdirSync(path.join(dir, 'ns-1')).sort(), ['services', 'workloads']);
      assert.match(readFileSync(mesh.workloads[0].file, 'utf8'), /kind: WorkloadEntry/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('control-plane bench: wire', () => {
  it('reads names, versions and EDS names from responses the control plane writes', () => {
    const eds = encodeAny({
      '@type': CLUSTER,
      name: 'outbound|80||a',
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} }, service_name: 'outbound|80||a' },
    });
    const dns = encodeAny({ '@type': CLUSTER, name: 'dns', type: 'STRICT_DNS' });
    const sotw = parseSotwResponse(
      Buffer.from(
        encodeDiscoveryResponse({
          version_info: 'v9',
          resources: [eds, dns],
          type_url: CLUSTER,
          nonce: 'n1',
        }),
      ),
    );
    assert.equal(sotw.versionInfo, 'v9');
    assert.equal(sotw.nonce, 'n1');
    assert.deepEqual(
      sotw.resources.map((r) => clusterInfo(r)),
      [
        { name: 'outbound|80||a', edsName: 'outbound|80||a' },
        { name: 'dns', edsName: null },
      ],
    );
    const delta = parseDeltaResponse(
      Buffer.from(
        encodeDeltaDiscoveryResponse({
          system_version_info: 's',
          resources: [{ name: 'dns', version: '7', resource: dns }],
          type_url: CLUSTER,
          removed_resources: ['gone'],
          nonce: 'n2',
        }),
      ),
    );
    assert.deepEqual(
      delta.resources.map((r) => [r.name, r.version, resourceName(r.value)]),
      [['dns', '7', 'dns']],
    );
    assert.deepEqual(delta.removed, ['gone']);
  });

  it('writes requests the generic codec reads, and reassembles messages split anywhere', () => {
    const parts = sotwRequestParts({
      versionInfo: 'v1',
      node: null,
      names: encodeNames(3, ['a', 'b']),
      typeUrl: CLUSTER,
      nonce: '3',
    });
    const framed = Buffer.concat(parts);
    const got: Buffer[] = [];
    const deframer = new GrpcDeframer((m) => got.push(m));
    const two = Buffer.concat([
      framed,
      grpcFrame(Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { type_url: 'x' }))),
    ]);
    for (let i = 0; i < two.length; i += 3) deframer.push(two.subarray(i, i + 3));
    assert.equal(got.length, 2);
    assert.deepEqual(got[0], framed.subarray(5));
    assert.deepEqual(decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', got[0]), {
      version_info: 'v1',
      resource_names: ['a', 'b'],
      type_url: CLUSTER,
      response_nonce: '3',
    });
  });
});

describe('control-plane bench: statistics', () => {
  it('takes nearest-rank percentiles and ignores what never arrived', () => {
    assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
    assert.equal(percentile([], 50), null);
    assert.deepEqual(distribution([1, NaN, 3]), { count: 2, p50: 1, p90: 3, p99: 3, max: 3 });
    const lat = changeLatency(1, 1000, [1100, 0, 1300]);
    assert.equal(lat.missing, 1);
    assert.equal(lat.toAllMs, null);
    assert.equal(changeLatency(2, 1000, [1100, 1300]).toAllMs, 300);
  });

  it('finds a proxy starved by a long gap or a change that never came, counting the window edges', () => {
    const changes = [
      { writtenAt: 0, arrivals: [100, 100, 100] },
      { writtenAt: 3000, arrivals: [3100, 3200, 0] },
    ];
    const updates = [
      [100, 1500, 3100],
      [100, 3200],
      [100, 1600],
    ];
    const { perProxy, summary } = starvation(['a', 'b', 'c'], updates, changes, 2000);
    assert.deepEqual(
      perProxy.map((p) => [p.updates, p.maxGapMs, p.missing]),
      [
        [2, 1500, 0], // 3100 is after the window's end (3000)
        [1, 2900, 0],
        [2, 1500, 1],
      ],
    );
    assert.equal(perProxy[0].maxStalenessMs, 100);
    assert.equal(perProxy[2].maxStalenessMs, Infinity);
    assert.equal(summary.starved, 2);
  });
});

describe('control-plane bench: a tiny run', { timeout: 180_000 }, () => {
  it('brings every proxy in sync and every endpoint change to every proxy', async () => {
    const results = await runHarness({
      services: 30,
      endpoints: 90,
      namespaces: 3,
      proxies: 20,
      deltaShare: 0.25,
      loadProcs: 1,
      changes: 3,
      starvationS: 2,
      starvationIntervalMs: 200,
      gapLimitMs: 60_000,
      quick: true,
      profile: false,
      // The sources, run by Node directly: no build needed, and the test sees the code as it is.
      cli: path.join(repoRoot, 'src', 'cli', 'main.ts'),
      syncTimeoutMs: 60_000,
      changeTimeoutMs: 20_000,
      log: () => {},
    });
    assert.equal(results.initialPush.synced, 20);
    assert.equal(results.mesh.deltaProxies, 5);
    assert.equal(results.endpointChange.toAllMs.count, 3, 'each change reached every proxy');
    assert.equal(results.endpointChange.missing, 0);
    assert.equal(results.starvation.changes, 10);
    assert.equal(results.starvation.starved, 0, results.starvation.starvedExamples.join('; '));
    assert.ok(results.controlPlane.peakRssMb > 0);
  });
});
