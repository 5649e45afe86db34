import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const NAME = 'envoy.filters.http.local_ratelimit';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

interface LogLine {
  path: string;
  code: number;
  // JSON access logs write an empty operator value ('-') as null.
  flags: string | null;
}

function logLines(file: string): LogLine[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  } catch {
    return [];
  }
}

describe(
  'local rate limiting (envoy.filters.http.local_ratelimit) through a real proxy',
  { timeout: 60_000 },
  () => {
    let proxy: RunningProxy;
    let up: Awaited<ReturnType<typeof startHttpUpstream>>;
    // The response flags (RL) are observable only through an access log.
    const accessLog = path.join(mkdtempSync(path.join(tmpdir(), 'weft-local-rl-')), 'access.json');

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
                {
                  match: { prefix: '/refill' },
                  route: { cluster: 'backend' },
                  typed_per_filter_config: {
                    [NAME]: {
                      '@type': TYPE,
                      stat_prefix: 'refill',
                      filter_enabled: ALL,
                      filter_enforced: ALL,
                      token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '0.3s' },
                    },
                  },
                },
                { match: { prefix: '/' }, route: { cluster: 'backend' } },
              ],
              hcm: {
                access_log: [
                  {
                    name: 'envoy.access_loggers.file',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                      path: accessLog,
                      log_format: {
                        json_format: {
                          path: '%REQ(:PATH)%',
                          code: '%RESPONSE_CODE%',
                          flags: '%RESPONSE_FLAGS%',
                        },
                      },
                    },
                  },
                ],
                http_filters: [
                  {
                    name: NAME,
                    typed_config: {
                      '@type': TYPE,
                      stat_prefix: 'listener_rl',
                      filter_enabled: ALL,
                      filter_enforced: ALL,
                      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
                      // No fill can land during the test, so the fourth request is certainly denied.
                      token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: '3600s' },
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

    it('answers the N+1th request of a window with 429 local_rate_limited, x-ratelimit headers and RL', async () => {
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push(await request(proxy.port(), { path: `/listener/${i}` }));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200, 429],
      );
      replies.slice(0, 3).forEach((ok, i) => {
        assert.equal(ok.headers['x-ratelimit-limit'], '3');
        assert.equal(ok.headers['x-ratelimit-remaining'], String(2 - i));
        assert.equal(ok.headers['x-envoy-ratelimited'], undefined);
        const reset = Number(ok.headers['x-ratelimit-reset']);
        assert.ok(
          reset >= 1 && reset <= 3600,
          `x-ratelimit-reset ${String(ok.headers['x-ratelimit-reset'])}`,
        );
      });

      const denied = replies[3];
      assert.equal(denied.body, 'local_rate_limited');
      assert.equal(denied.headers['x-envoy-ratelimited'], 'true');
      assert.equal(denied.headers['x-limited-by'], 'weft');
      assert.equal(denied.headers['x-ratelimit-limit'], '3');
      assert.equal(denied.headers['x-ratelimit-remaining'], '0');
      const reset = Number(denied.headers['x-ratelimit-reset']);
      assert.ok(
        reset >= 1 && reset <= 3600,
        `x-ratelimit-reset ${String(denied.headers['x-ratelimit-reset'])}`,
      );
      // Denied locally: the upstream never saw the fourth request.
      assert.deepEqual(
        up.seen.filter((s) => s.url.startsWith('/listener/')).map((s) => s.url),
        ['/listener/0', '/listener/1', '/listener/2'],
      );

      const logged = (await waitFor(
        () => {
          const l = logLines(accessLog).filter((e) => e.path.startsWith('/listener/'));
          return l.length >= 4 ? l : null;
        },
        5000,
        'four access log lines',
      ))!;
      const byPath = new Map(logged.map((e) => [e.path, e]));
      assert.deepEqual(byPath.get('/listener/3'), { path: '/listener/3', code: 429, flags: 'RL' });
      for (const p of ['/listener/0', '/listener/1', '/listener/2'])
        assert.deepEqual(byPath.get(p), { path: p, code: 200, flags: null });

      const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
      assert.match(stats, /listener_rl\.http_local_rate_limit\.rate_limited: 1\b/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.enforced: 1\b/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.ok: 3\b/);
      assert.match(stats, /listener_rl\.http_local_rate_limit\.enabled: 4\b/);
    });

    it('lets requests pass again once the bucket refills', async () => {
      let r = await request(proxy.port(), { path: '/refill' });
      // A fill may land between two requests; the one-token bucket is empty again after a few.
      for (let i = 0; i < 20 && r.status !== 429; i++) r = await request(proxy.port(), { path: '/refill' });
      assert.equal(r.status, 429);
      await waitFor(
        async () => (await request(proxy.port(), { path: '/refill' })).status === 200,
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
