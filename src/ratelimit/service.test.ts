import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { loadConfig } from '../config/load.ts';
import { rlsServiceDefinition } from './rls-definition.ts';
import type { WireObject } from './rls-definition.ts';
import { RateLimitServer } from './service.ts';
import { TestRedis } from './testing/redis-server.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const POLICIES = `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: shared, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  global:
    service: ratelimit:8081
    default: {requestsPerUnit: 5, unit: HOUR}
---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-user, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  global:
    service: ratelimit:8081
    algorithm: SlidingWindow
    default: {requestsPerUnit: 100, unit: HOUR}
    perClient:
      key: {header: x-user}
      requestsPerUnit: 2
      unit: HOUR
      overrides: [{value: vip, requestsPerUnit: 4, unit: HOUR}]
`;

type RlsClient = Client & {
  ShouldRateLimit(
    request: object,
    options: { deadline: number },
    callback: (err: ServiceError | null, response?: WireObject) => void,
  ): void;
};
const RlsClientConstructor = makeGenericClientConstructor(rlsServiceDefinition, 'RateLimitService');

function ask(client: RlsClient, request: object): Promise<WireObject> {
  return new Promise((resolve, reject) =>
    client.ShouldRateLimit(request, { deadline: Date.now() + 3000 }, (err, response) =>
      err || !response ? reject(err ?? new Error('no response')) : resolve(response),
    ),
  );
}

const entries = (...pairs: [string, string][]) => ({
  entries: pairs.map(([key, value]) => ({ key, value })),
});

describe('RateLimitServer', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rls-'));
  let redis: TestRedis;
  const servers: RateLimitServer[] = [];
  const clients: RlsClient[] = [];
  let turn = 0;
  /** Each call goes to the other server: counts must be shared through Redis. */
  const call = (request: object): Promise<WireObject> => ask(clients[turn++ % clients.length], request);

  before(async () => {
    // Hour windows; never start so close to the hour's end that a test could straddle two windows.
    const msLeft = 3_600_000 - (Date.now() % 3_600_000);
    if (msLeft < 15_000) await sleep(msLeft + 100);
    redis = await TestRedis.start();
    fs.writeFileSync(path.join(dir, 'policies.yaml'), POLICIES);
    const { resources } = loadConfig([dir]);
    for (let i = 0; i < 2; i++) {
      const server = new RateLimitServer({ redisUrl: redis.url, resources, logger: quiet });
      servers.push(server);
      const port = await server.start({ port: 0, address: '127.0.0.1' });
      clients.push(
        new RlsClientConstructor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as RlsClient,
      );
    }
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds a shared limit across both servers', async () => {
    const request = { domain: 'weft', descriptors: [entries(['weft.policy', 'shop/shared'])] };
    const responses: WireObject[] = [];
    for (let i = 0; i < 8; i++) responses.push(await call(request));
    assert.deepEqual(
      responses.map((r) => r.overall_code),
      ['OK', 'OK', 'OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT', 'OVER_LIMIT'],
    );
    const first = (responses[0].statuses as WireObject[])[0];
    assert.equal(first.code, 'OK');
    assert.deepEqual(first.current_limit, { requests_per_unit: 5, unit: 'HOUR' });
    assert.equal(first.limit_remaining, 4);
    const reset = first.duration_until_reset;
    assert.ok(typeof reset === 'string', 'duration_until_reset is a Duration');
    const resetS = Number(reset.replace(/s$/, ''));
    assert.ok(resetS > 0 && resetS <= 3600, `duration_until_reset ${reset}`);
    const last = (responses[7].statuses as WireObject[])[0];
    assert.equal(last.code, 'OVER_LIMIT');
    assert.equal(last.limit_remaining ?? 0, 0);
    assert.equal(servers[0].counters.requests + servers[1].counters.requests, 8);
    assert.equal(servers[0].counters.overLimit + servers[1].counters.overLimit, 3);
  });

  it('applies per-client limits and overrides; any descriptor over makes the answer OVER_LIMIT', async () => {
    const request = (user: string) => ({
      domain: 'weft',
      descriptors: [
        entries(['weft.policy', 'shop/per-user']),
        entries(['weft.policy', 'shop/per-user'], ['client', user]),
      ],
    });
    const codes = async (user: string, n: number): Promise<string[][]> => {
      const out: string[][] = [];
      for (let i = 0; i < n; i++) {
        const r = await call(request(user));
        out.push([r.overall_code as string, ...(r.statuses as WireObject[]).map((s) => s.code as string)]);
      }
      return out;
    };
    assert.deepEqual(await codes('alice', 3), [
      ['OK', 'OK', 'OK'],
      ['OK', 'OK', 'OK'],
      ['OVER_LIMIT', 'OK', 'OVER_LIMIT'],
    ]);
    assert.deepEqual(await codes('vip', 5), [
      ['OK', 'OK', 'OK'],
      ['OK', 'OK', 'OK'],
      ['OK', 'OK', 'OK'],
      ['OK', 'OK', 'OK'],
      ['OVER_LIMIT', 'OK', 'OVER_LIMIT'],
    ]);
    const vip = await call(request('vip'));
    assert.deepEqual((vip.statuses as WireObject[])[1].current_limit, { requests_per_unit: 4, unit: 'HOUR' });
  });

  it('counts hits_addend hits, and 0 as 1', async () => {
    const descriptors = [entries(['weft.policy', 'shop/per-user'], ['client', 'bulk'])];
    const a = await call({ domain: 'weft', descriptors, hits_addend: 0 });
    assert.equal((a.statuses as WireObject[])[0].limit_remaining, 1);
    const b = await call({ domain: 'weft', descriptors, hits_addend: 2 });
    assert.equal(b.overall_code, 'OVER_LIMIT');
  });

  it('answers OK without a limit for descriptors no policy defines', async () => {
    const r = await call({
      domain: 'weft',
      descriptors: [
        entries(['weft.policy', 'shop/unknown']),
        entries(['generic_key', 'x']),
        entries(['weft.policy', 'shop/shared'], ['remote_address', '10.0.0.1']),
      ],
    });
    assert.equal(r.overall_code, 'OK');
    assert.deepEqual(r.statuses, [{ code: 'OK' }, { code: 'OK' }, { code: 'OK' }]);
    const other = await call({ domain: 'elsewhere', descriptors: [entries(['weft.policy', 'shop/shared'])] });
    assert.deepEqual(other, { overall_code: 'OK', statuses: [{ code: 'OK' }] });
  });

  it('refuses descriptors carrying their own limit', async () => {
    const err = await call({
      domain: 'weft',
      descriptors: [
        { ...entries(['weft.policy', 'shop/shared']), limit: { requests_per_unit: 1, unit: 'SECOND' } },
      ],
    }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    assert.equal(err?.code, status.INVALID_ARGUMENT);
    assert.match(err?.details ?? '', /descriptors\[0\]\.limit is not supported by Weft/);
  });

  it('takes new policies on updatePolicies', async () => {
    const request = { domain: 'weft', descriptors: [entries(['weft.policy', 'shop/late'])] };
    assert.deepEqual((await call(request)).statuses, [{ code: 'OK' }]);
    const late = `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: late, namespace: shop}
spec:
  targetRef: {name: api}
  global: {service: ratelimit:8081, default: {requestsPerUnit: 1, unit: HOUR}}
`;
    fs.writeFileSync(path.join(dir, 'late.yaml'), late);
    const { resources } = loadConfig([dir]);
    for (const s of servers) s.updatePolicies(resources);
    assert.deepEqual(
      [(await call(request)).overall_code, (await call(request)).overall_code],
      ['OK', 'OVER_LIMIT'],
    );
  });

  it('answers UNAVAILABLE promptly once Redis is gone', async () => {
    await redis.kill();
    const request = { domain: 'weft', descriptors: [entries(['weft.policy', 'shop/shared'])] };
    const started = performance.now();
    const errors = await Promise.all(
      [0, 1, 2, 3].map(() =>
        call(request).then(
          () => undefined,
          (e: ServiceError) => e,
        ),
      ),
    );
    const elapsed = performance.now() - started;
    for (const err of errors) {
      assert.equal(err?.code, status.UNAVAILABLE);
      assert.match(err?.details ?? '', /rate limit counters unavailable/);
    }
    // Well under the client's 3 s deadline: the service must not wait for Redis to come back.
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    assert.ok(servers[0].counters.errors >= 2 && servers[1].counters.errors >= 2);
    // Requests without a limit do not need Redis.
    const free = await call({ domain: 'weft', descriptors: [entries(['weft.policy', 'shop/unknown'])] });
    assert.equal(free.overall_code, 'OK');
  });
});
