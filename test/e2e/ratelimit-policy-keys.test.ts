/**
 * RateLimitPolicy per-client keys (path, method, principal) as the control plane generates them, run by a
 * real proxy: the generated local_ratelimit filter and route rate_limits go into a static bootstrap, so
 * the buckets that real requests hit are the ones the translation produced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IstioResource } from '../../src/api/istio/resource.ts';
import type { RateLimitPolicy } from '../../src/api/weft/rate-limit.ts';
import { combineFiles, loadText } from '../../src/config/load.ts';
import { inboundRateLimit } from '../../src/control/generate/rate-limit.ts';
import { ConfigDiscoverySource } from '../../src/control/model/config-source.ts';
import { aggregate } from '../../src/control/model/discovery.ts';
import { buildSnapshot } from '../../src/control/model/snapshot.ts';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { request } from '../support/http.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';

const HOST = '127.0.91.1';
const VIP = 'spiffe://cluster.local/ns/shop/sa/batch';

/** Hour-long windows: no refill lands during the test, so every count below is exact. */
function policy(name: string, key: string, override: string): string {
  return `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${name}, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  local:
    perClient:
      key: ${key}
      requestsPerUnit: 2
      unit: HOUR
      overrides: [{ value: "${override}", requestsPerUnit: 4, unit: HOUR }]
`;
}

function generated(text: string): { filters: unknown[]; rateLimits: unknown[] } {
  const { resources, diagnostics } = combineFiles([loadText('policy.yaml', text)]);
  assert.deepEqual(diagnostics, []);
  const snap = buildSnapshot({
    version: 1,
    rateLimitPolicies: resources as IstioResource<never>[],
    discovery: aggregate([new ConfigDiscoverySource()]),
  });
  return inboundRateLimit(resources[0] as IstioResource<RateLimitPolicy>, snap);
}

function listener(name: string, text: string, hcm: Record<string, unknown> = {}): Record<string, unknown> {
  const { filters, rateLimits } = generated(text);
  const l = httpListener({
    name,
    routes: [{ match: { prefix: '/' }, route: { cluster: 'backend', rate_limits: rateLimits } }],
    hcm: {
      http_filters: [
        ...filters,
        {
          name: 'envoy.filters.http.router',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
        },
      ],
      ...hcm,
    },
  });
  l.address = { socket_address: { address: HOST, port_value: 0 } };
  return l;
}

describe('RateLimitPolicy per-client keys through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let up: Upstream;

  before(async () => {
    up = await startHttpUpstream();
    proxy = await startProxy(
      bootstrapDoc(
        [
          listener('path', policy('by-path', '{ path: {} }', '/vip')),
          listener('method', policy('by-method', '{ method: {} }', 'POST')),
          // On plaintext every other mode drops the header (Envoy's rule): this listener plays one behind a
          // trusted hop that set it, which is how a plaintext test client can carry a principal.
          listener('principal', policy('by-principal', '{ principal: {} }', VIP), {
            forward_client_cert_details: 'ALWAYS_FORWARD_ONLY',
          }),
        ],
        [staticCluster('backend', [{ port: up.port }])],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    await up?.close();
  });

  async function statuses(
    listenerName: string,
    n: number,
    opts: { path?: string; method?: string; headers?: Record<string, string> },
  ): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++)
      out.push((await request(proxy.port(listenerName), { host: HOST, ...opts })).status);
    return out;
  }

  it('gives each path its own bucket, and the override path a bigger one', async () => {
    assert.deepEqual(await statuses('path', 3, { path: '/a' }), [200, 200, 429]);
    assert.deepEqual(await statuses('path', 3, { path: '/b' }), [200, 200, 429]);
    assert.deepEqual(await statuses('path', 5, { path: '/vip' }), [200, 200, 200, 200, 429]);
    const denied = await request(proxy.port('path'), { host: HOST, path: '/a' });
    assert.equal(denied.status, 429);
    assert.equal(denied.headers['x-ratelimit-limit'], '2');
    assert.equal(denied.headers['x-envoy-ratelimited'], 'true');
  });

  it('gives each method its own bucket, and the override method a bigger one', async () => {
    assert.deepEqual(await statuses('method', 3, { method: 'GET' }), [200, 200, 429]);
    assert.deepEqual(await statuses('method', 5, { method: 'POST' }), [200, 200, 200, 200, 429]);
    assert.deepEqual(await statuses('method', 3, { method: 'DELETE' }), [200, 200, 429]);
  });

  it('keys by the principal in x-forwarded-client-cert, not by the whole header', async () => {
    const xfcc = (by: string, sa: string): Record<string, string> => ({
      'x-forwarded-client-cert': `By=${by};Hash=abc;URI=spiffe://cluster.local/ns/shop/sa/${sa}`,
    });
    assert.deepEqual(await statuses('principal', 2, { headers: xfcc('hop-1', 'alice') }), [200, 200]);
    // Same principal through another hop: the header differs, the bucket is the same (and empty).
    assert.deepEqual(await statuses('principal', 1, { headers: xfcc('hop-2', 'alice') }), [429]);
    assert.deepEqual(await statuses('principal', 3, { headers: xfcc('hop-1', 'bob') }), [200, 200, 429]);
    assert.deepEqual(
      await statuses('principal', 5, { headers: { 'x-forwarded-client-cert': `URI=${VIP}` } }),
      [200, 200, 200, 200, 429],
    );
  });
});
