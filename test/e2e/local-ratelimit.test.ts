import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const NAME = 'envoy.filters.http.local_ratelimit';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

describe(
  'local rate limiting (envoy.filters.http.local_ratelimit) through a real proxy',
  { timeout: 60_000 },
  () => {
    let proxy: RunningProxy;
    let up: Awaited<ReturnType<typeof startHttpUpstream>>;

    before(async () => {
      up = await startHttpUpstream();
      proxy = await startProxy(
        bootstrapDoc(
          [
            httpListener({
              routes: [
                {
                  match: { prefix: '/clients' },
                  route: {
                    cluster: 'backend',
                    rate_limits: [
                      {
                        actions: [{ request_headers: { header_name: 'x-client', descriptor_key: 'client' } }],
                      },
                    ],
                  },
                  typed_per_filter_config: {
                    [NAME]: {
                      '@type': TYPE,
                      stat_prefix: 'per_client',
                      filter_enabled: ALL,
                      filter_enforced: ALL,
                      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
                      always_consume_default_token_bucket: false,
                      token_bucket: { max_tokens: 1000, fill_interval: '60s' },
                      descriptors: [
                        {
                          entries: [{ key: 'client', value: '' }],
                          token_bucket: { max_tokens: 2, fill_interval: '60s' },
                        },
                        {
                          entries: [{ key: 'client', value: 'vip' }],
                          token_bucket: { max_tokens: 4, fill_interval: '60s' },
                        },
                      ],
                    },
                  },
                },
                { match: { prefix: '/' }, route: { cluster: 'backend' } },
              ],
              hcm: {
                http_filters: [
                  {
                    name: NAME,
                    typed_config: {
                      '@type': TYPE,
                      stat_prefix: 'listener_rl',
                      filter_enabled: ALL,
                      filter_enforced: ALL,
                      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
                      token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: '1s' },
                      response_headers_to_add: [{ header: { key: 'x-limited-by', value: 'weft' } }],
                    },
                  },
                  {
                    name: 'envoy.filters.http.router',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                    },
                  },
                ],
              },
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

    it('answers the N+1th request of a window with 429 local_rate_limited and x-ratelimit headers, then passes after a fill', async () => {
      // Wait for a fresh window so that all four requests fall in one (the bucket refills every second).
      const statuses: number[] = [];
      const replies = [];
      for (let i = 0; i < 4; i++) {
        const r = await request(proxy.port(), { path: '/listener' });
        replies.push(r);
        statuses.push(r.status);
      }
      // A fill may land between requests; at least one of four must be refused when at most 3+3 fit in the run.
      const limited = replies.find((r) => r.status === 429);
      if (limited === undefined) {
        // The run straddled a fill: drain the bucket and check the next one.
        let r = await request(proxy.port(), { path: '/listener' });
        for (let i = 0; i < 10 && r.status !== 429; i++)
          r = await request(proxy.port(), { path: '/listener' });
        assert.equal(r.status, 429);
      }
      const ok = replies[0];
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['x-ratelimit-limit'], '3');
      assert.match(String(ok.headers['x-ratelimit-remaining']), /^[0-2]$/);
      assert.match(String(ok.headers['x-ratelimit-reset']), /^[01]$/);
      const denied = limited ?? (await request(proxy.port(), { path: '/listener' }));
      if (denied.status === 429) {
        assert.equal(denied.body, 'local_rate_limited');
        assert.equal(denied.headers['x-envoy-ratelimited'], 'true');
        assert.equal(denied.headers['x-limited-by'], 'weft');
        assert.equal(denied.headers['x-ratelimit-limit'], '3');
        assert.equal(denied.headers['x-ratelimit-remaining'], '0');
      }
      const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
      assert.match(stats, /listener_rl\.http_local_rate_limit\.rate_limited: [1-9]/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.enforced: [1-9]/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.ok: [1-9]/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.enabled: [1-9]/);
      // After the fill interval requests pass again.
      await waitFor(
        async () => (await request(proxy.port(), { path: '/listener' })).status === 200,
        5000,
        'a refill',
      );
    });

    it('keeps an independent bucket per client header, and an override raises one client’s limit', async () => {
      const run = async (client: string, n: number): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++)
          out.push(
            (await request(proxy.port(), { path: '/clients', headers: { 'x-client': client } })).status,
          );
        return out;
      };
      assert.deepEqual(await run('alice', 3), [200, 200, 429]);
      assert.deepEqual(await run('bob', 3), [200, 200, 429]);
      assert.deepEqual(await run('vip', 5), [200, 200, 200, 200, 429]);
      const r = await request(proxy.port(), { path: '/clients', headers: { 'x-client': 'carol' } });
      assert.equal(r.headers['x-ratelimit-limit'], '2');
      assert.equal(r.headers['x-ratelimit-remaining'], '1');
      // Requests without the header match no descriptor: the route's default bucket (1000) applies.
      assert.equal((await request(proxy.port(), { path: '/clients' })).status, 200);
      const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
      assert.match(stats, /per_client\.http_local_rate_limit\.rate_limited: 3\b/);
    });
  },
);
