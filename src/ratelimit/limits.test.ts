import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../config/load.ts';
import { buildLimitTable, resolveLimit, unitMs } from './limits.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rl-limits-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const YAML = `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  global:
    service: ratelimit:8081
    algorithm: SlidingWindow
    default: {requestsPerUnit: 6000, unit: MINUTE}
    perClient:
      key: {header: x-api-key}
      requestsPerUnit: 100
      unit: MINUTE
      overrides:
      - {value: partner-key, requestsPerUnit: 10, unit: SECOND}
---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: by-address}
spec:
  targetRef: {name: web}
  global:
    service: ratelimit:8081
    domain: edge
    perClient:
      key: {remoteAddress: {}}
      requestsPerUnit: 5
      unit: HOUR
---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: local-only}
spec:
  targetRef: {name: web}
  local:
    default: {requestsPerUnit: 5, unit: SECOND}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratelimit}
spec:
  hosts: [ratelimit.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8081, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.0.1}]
`;

function loadTable() {
  const file = path.join(dir, 'policies.yaml');
  fs.writeFileSync(file, YAML);
  const { resources, diagnostics } = loadConfig([file]);
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  assert.equal(resources.length, 4);
  return buildLimitTable(resources);
}

const policy = (value: string) => ({ key: 'weft.policy', value });

describe('buildLimitTable', () => {
  it('indexes global limits by domain and namespace/name, skipping local-only policies', () => {
    const table = loadTable();
    assert.deepEqual([...table.keys()].sort(), ['edge', 'weft']);
    assert.deepEqual([...(table.get('weft')?.keys() ?? [])], ['shop/api']);
    assert.deepEqual([...(table.get('edge')?.keys() ?? [])], ['default/by-address']);
    const api = table.get('weft')?.get('shop/api');
    assert.equal(api?.algorithm, 'SlidingWindow');
    assert.deepEqual(api?.default, { requestsPerUnit: 6000, unit: 'MINUTE' });
    assert.equal(api?.perClient?.descriptorKey, 'client');
    assert.deepEqual(api?.perClient?.limit, { requestsPerUnit: 100, unit: 'MINUTE' });
    const edge = table.get('edge')?.get('default/by-address');
    assert.equal(edge?.algorithm, 'FixedWindow');
    assert.equal(edge?.default, undefined);
    assert.equal(edge?.perClient?.descriptorKey, 'remote_address');
  });

  it('is empty without policies', () => {
    assert.equal(buildLimitTable([]).size, 0);
  });
});

describe('resolveLimit', () => {
  const table = loadTable();

  it('gives the default limit to a one-entry descriptor', () => {
    assert.deepEqual(resolveLimit(table, 'weft', [policy('shop/api')]), {
      limit: { requestsPerUnit: 6000, unit: 'MINUTE' },
      algorithm: 'SlidingWindow',
      counter: ['weft', 'shop/api'],
    });
  });

  it('gives the per-client limit, or the override for an exactly matching value', () => {
    const plain = resolveLimit(table, 'weft', [policy('shop/api'), { key: 'client', value: 'k1' }]);
    assert.deepEqual(plain?.limit, { requestsPerUnit: 100, unit: 'MINUTE' });
    assert.deepEqual(plain?.counter, ['weft', 'shop/api', 'client', 'k1']);
    const partner = resolveLimit(table, 'weft', [
      policy('shop/api'),
      { key: 'client', value: 'partner-key' },
    ]);
    assert.deepEqual(partner?.limit, { requestsPerUnit: 10, unit: 'SECOND' });
    const near = resolveLimit(table, 'weft', [policy('shop/api'), { key: 'client', value: 'Partner-key' }]);
    assert.deepEqual(near?.limit, { requestsPerUnit: 100, unit: 'MINUTE' });
  });

  it('expects remote_address for a policy keyed by the remote address', () => {
    const byAddress = [policy('default/by-address'), { key: 'remote_address', value: '10.0.0.1' }];
    assert.deepEqual(resolveLimit(table, 'edge', byAddress)?.limit, { requestsPerUnit: 5, unit: 'HOUR' });
    assert.equal(
      resolveLimit(table, 'edge', [policy('default/by-address'), { key: 'client', value: '10.0.0.1' }]),
      undefined,
    );
    assert.equal(
      resolveLimit(table, 'weft', [policy('shop/api'), { key: 'remote_address', value: '10.0.0.1' }]),
      undefined,
    );
  });

  it('has no limit for what the policies do not define', () => {
    const none: [string, { key: string; value: string }[]][] = [
      ['other', [policy('shop/api')]],
      ['weft', [policy('shop/nope')]],
      ['weft', [policy('default/by-address')]],
      ['edge', [policy('default/by-address')]],
      ['weft', [{ key: 'generic_key', value: 'shop/api' }]],
      ['weft', []],
      ['weft', [policy('shop/api'), { key: 'client', value: 'a' }, { key: 'path', value: '/' }]],
    ];
    for (const [domain, entries] of none)
      assert.equal(resolveLimit(table, domain, entries), undefined, JSON.stringify([domain, entries]));
  });
});

describe('unitMs', () => {
  it('is the window length of each unit', () => {
    assert.deepEqual(
      (['SECOND', 'MINUTE', 'HOUR', 'DAY'] as const).map(unitMs),
      [1000, 60_000, 3_600_000, 86_400_000],
    );
  });
});
