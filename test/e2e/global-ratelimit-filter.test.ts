/**
 * The global rate limit filter (envoy.filters.http.ratelimit) in a real proxy, against a scripted rate
 * limit service on a real gRPC socket: what the proxy asks (domain, descriptors from route actions), and
 * what the client sees for OK, OVER_LIMIT, an unreachable or hanging service, fail open and fail closed.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { request } from '../support/http.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startScriptedRls } from '../support/rls-server.ts';
import type { JsonObj, ScriptedRls } from '../support/rls-server.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';

function rateLimitFilter(cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'envoy.filters.http.ratelimit',
    typed_config: {
      '@type': TYPE,
      domain: 'shop',
      stage: 1,
      timeout: '0.3s',
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      rate_limit_service: {
        grpc_service: { envoy_grpc: { cluster_name: cluster } },
        transport_api_version: 'V3',
      },
      ...extra,
    },
  };
}

const ROUTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};

function listener(name: string, filter: Record<string, unknown>): Record<string, unknown> {
  return httpListener({
    name,
    routes: [
      {
        match: { prefix: '/' },
        route: {
          cluster: 'backend',
          rate_limits: [
            {
              stage: 1,
              actions: [{ generic_key: { descriptor_key: 'weft.policy', descriptor_value: 'default/api' } }],
            },
            {
              stage: 1,
              actions: [
                { generic_key: { descriptor_key: 'weft.policy', descriptor_value: 'default/api' } },
                { request_headers: { header_name: 'x-user', descriptor_key: 'client' } },
              ],
            },
            // Another stage: never sent to this filter.
            { stage: 0, actions: [{ generic_key: { descriptor_value: 'stage0' } }] },
          ],
        },
      },
    ],
    hcm: { http_filters: [filter, ROUTER] },
  });
}

describe(
  'global rate limiting (envoy.filters.http.ratelimit) through a real proxy',
  { timeout: 60_000 },
  () => {
    let proxy: RunningProxy;
    let up: Awaited<ReturnType<typeof startHttpUpstream>>;
    let rls: ScriptedRls;
    /** What the scripted service answers next, by x-user (no user: OK). */
    let mode: 'ok' | 'over' | 'hang' | 'error' = 'ok';

    before(async () => {
      up = await startHttpUpstream();
      rls = await startScriptedRls((): JsonObj | 'hang' | Error => {
        if (mode === 'hang') return 'hang';
        if (mode === 'error') return new Error('redis down');
        const over = mode === 'over';
        return {
          overall_code: over ? 'OVER_LIMIT' : 'OK',
          statuses: [
            {
              code: 'OK',
              current_limit: { requests_per_unit: 100, unit: 'MINUTE' },
              limit_remaining: 40,
              duration_until_reset: '30s',
            },
            {
              code: over ? 'OVER_LIMIT' : 'OK',
              current_limit: { requests_per_unit: 5, unit: 'MINUTE', name: 'per-user' },
              limit_remaining: over ? 0 : 3,
              duration_until_reset: '12.5s',
            },
          ],
          request_headers_to_add: [{ key: 'x-quota-checked', value: 'yes' }],
        };
      });
      const dead = await closedPort();
      proxy = await startProxy(
        bootstrapDoc(
          [
            listener('http', rateLimitFilter('rls')),
            listener('dead-open', rateLimitFilter('rls-dead')),
            listener('dead-closed', rateLimitFilter('rls-dead', { failure_mode_deny: true })),
            listener('hang-open', rateLimitFilter('rls', { timeout: '0.2s' })),
            listener('grpc-exhausted', rateLimitFilter('rls', { rate_limited_as_resource_exhausted: true })),
          ],
          [
            staticCluster('backend', [{ port: up.port }]),
            staticCluster('rls', [{ port: rls.port }], { typed_extension_protocol_options: h2 }),
            staticCluster('rls-dead', [{ port: dead }], { typed_extension_protocol_options: h2 }),
          ],
        ),
      );
    });

    after(async () => {
      await proxy?.stop();
      await up?.close();
      await rls?.close();
    });

    const call = (listenerName: string, user?: string) =>
      request(proxy.port(listenerName), { path: '/x', headers: user ? { 'x-user': user } : {} });
    const stat = async (name: string): Promise<number> => {
      const r = await request(proxy.adminPort, { path: '/stats' });
      const line = r.body.split('\n').find((l) => l.startsWith(`${name}: `));
      return line ? Number(line.split(': ')[1]) : 0;
    };

    it('asks the service with the domain and the descriptors of its stage, and passes an OK request on', async () => {
      mode = 'ok';
      const before = rls.requests.length;
      const seenBefore = up.seen.length;
      const r = await call('http', 'alice');
      assert.equal(r.status, 200);
      assert.deepEqual(rls.requests.slice(before), [
        {
          domain: 'shop',
          descriptors: [
            { entries: [{ key: 'weft.policy', value: 'default/api' }] },
            {
              entries: [
                { key: 'weft.policy', value: 'default/api' },
                { key: 'client', value: 'alice' },
              ],
            },
          ],
        },
      ]);
      // The service's request header reaches the upstream; its quota reaches the client.
      assert.equal(up.seen[seenBefore].headers['x-quota-checked'], 'yes');
      assert.equal(r.headers['x-ratelimit-limit'], '5, 5;w=60;name="per-user"');
      assert.equal(r.headers['x-ratelimit-remaining'], '3');
      assert.equal(r.headers['x-ratelimit-reset'], '13');
      assert.equal(await stat('cluster.backend.ratelimit.ok'), 1);
    });

    it('sends only the descriptors a request produces (no x-user: no per-client descriptor)', async () => {
      mode = 'ok';
      const before = rls.requests.length;
      assert.equal((await call('http')).status, 200);
      assert.deepEqual(
        rls.requests.slice(before).map((q) => (q.descriptors as unknown[]).length),
        [1],
      );
    });

    it('answers 429 with x-envoy-ratelimited when the service says OVER_LIMIT, without reaching the upstream', async () => {
      mode = 'over';
      const seen = up.seen.length;
      const r = await call('http', 'bob');
      assert.equal(r.status, 429);
      assert.equal(r.headers['x-envoy-ratelimited'], 'true');
      assert.equal(r.headers['x-ratelimit-remaining'], '0');
      assert.equal(up.seen.length, seen);
      assert.equal(await stat('cluster.backend.ratelimit.over_limit'), 1);
    });

    it('fails open when the service is unreachable or errs (the default), counting failure_mode_allowed', async () => {
      mode = 'error';
      assert.equal((await call('http', 'carol')).status, 200);
      assert.equal((await call('dead-open', 'carol')).status, 200);
      assert.equal(await stat('cluster.backend.ratelimit.failure_mode_allowed'), 2);
      assert.equal(await stat('cluster.backend.ratelimit.error'), 2);
    });

    it('fails closed with failure_mode_deny: 500', async () => {
      const r = await call('dead-closed', 'dave');
      assert.equal(r.status, 500);
    });

    it('refuses a gRPC call with UNAVAILABLE, or RESOURCE_EXHAUSTED when configured so', async () => {
      mode = 'over';
      const callGrpc = (listenerName: string): Promise<grpc.ServiceError | null> => {
        const client = new grpc.Client(
          `127.0.0.1:${proxy.port(listenerName)}`,
          grpc.credentials.createInsecure(),
        );
        const md = new grpc.Metadata();
        md.set('x-user', 'grpc-user');
        return new Promise((resolve) =>
          client.makeUnaryRequest(
            '/weft.test.Echo/Unary',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            md,
            (err) => {
              client.close();
              resolve(err);
            },
          ),
        );
      };
      assert.equal((await callGrpc('http'))?.code, grpc.status.UNAVAILABLE);
      assert.equal((await callGrpc('grpc-exhausted'))?.code, grpc.status.RESOURCE_EXHAUSTED);
    });

    it('never waits past the timeout for a service that does not answer', async () => {
      mode = 'hang';
      const r = await call('hang-open', 'erin');
      assert.equal(r.status, 200);
    });
  },
);

const h2 = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};
