import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { curl, request } from '../support/http.ts';

const CORS = 'envoy.filters.http.cors';
const POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const APP = 'https://app.example';

/** typed_per_filter_config for the CORS filter, as Istio writes it. */
function cors(policy: Record<string, unknown>): Record<string, unknown> {
  return { typed_per_filter_config: { [CORS]: { '@type': POLICY_TYPE, ...policy } } };
}

describe('CORS (envoy.filters.http.cors) through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  const seen = (url: string): number => up.seen.filter((s) => s.url === url).length;

  before(async () => {
    up = await startHttpUpstream();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            virtualHosts: [
              {
                name: 'all',
                domains: ['*'],
                // The virtual host's policy, replaced whole by a route's own.
                ...cors({
                  allow_origin_string_match: [
                    { exact: APP },
                    { safe_regex: { regex: 'https://[a-z]+\\.app\\.example' } },
                  ],
                  allow_methods: 'GET,PUT',
                  allow_headers: 'x-token',
                  expose_headers: 'x-trace',
                  max_age: '600',
                  allow_credentials: true,
                  filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
                }),
                routes: [
                  {
                    match: { prefix: '/strict' },
                    route: { cluster: 'backend' },
                    ...cors({
                      allow_origin_string_match: [{ suffix: '.strict.example' }],
                      forward_not_matching_preflights: false,
                    }),
                  },
                  { match: { prefix: '/' }, route: { cluster: 'backend' } },
                ],
              },
            ],
            hcm: {
              http_filters: [
                {
                  name: CORS,
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' },
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

  it('answers a preflight from an allowed origin itself, without reaching the upstream', async () => {
    const r = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/pre',
      headers: { origin: 'https://eu.app.example', 'access-control-request-method': 'PUT' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://eu.app.example');
    assert.equal(r.headers['access-control-allow-methods'], 'GET,PUT');
    assert.equal(r.headers['access-control-allow-headers'], 'x-token');
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['x-upstream'], undefined);
    assert.equal(r.body, '');
    assert.equal(seen('/pre'), 0);
  });

  it('answers preflights for curl too', async () => {
    const { stdout, code } = await curl([
      '-sS',
      '-i',
      '-X',
      'OPTIONS',
      '-H',
      `Origin: ${APP}`,
      '-H',
      'Access-Control-Request-Method: GET',
      `http://127.0.0.1:${proxy.port()}/curl-pre`,
    ]);
    assert.equal(code, 0);
    assert.match(stdout, /^HTTP\/1\.1 200/);
    assert.match(stdout, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i);
    assert.equal(seen('/curl-pre'), 0);
  });

  it('forwards a preflight from another origin upstream, adding nothing', async () => {
    const r = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/other',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'upstream');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(seen('/other'), 1);
  });

  it('answers a non-matching preflight bare when forward_not_matching_preflights is false (route policy wins)', async () => {
    const r = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/strict/x',
      headers: { origin: APP, 'access-control-request-method': 'GET' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers['x-upstream'], undefined);
    assert.equal(seen('/strict/x'), 0);
    const ok = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/strict/y',
      headers: { origin: 'https://a.strict.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://a.strict.example');
    // The route's policy sets none of the virtual host's headers.
    assert.equal(ok.headers['access-control-allow-methods'], undefined);
    assert.equal(ok.headers['access-control-allow-credentials'], undefined);
  });

  it('adds the CORS response headers to an actual request from an allowed origin', async () => {
    const r = await request(proxy.port(), { path: '/data', headers: { origin: APP } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'upstream');
    assert.equal(r.headers['access-control-allow-origin'], APP);
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-expose-headers'], 'x-trace');
    assert.equal(r.headers['access-control-allow-methods'], undefined);
    // The request goes upstream as sent.
    const req = up.seen.find((s) => s.url === '/data');
    assert.equal(req?.headers.origin, APP);
  });

  it('leaves requests from another origin, and requests without Origin, untouched', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, {}]) {
      const r = await request(proxy.port(), { path: '/plain', headers });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-upstream'], 'upstream');
      for (const name of Object.keys(r.headers)) assert.ok(!name.startsWith('access-control-'), name);
    }
    // OPTIONS without Origin is an ordinary request.
    const r = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/no-origin',
      headers: { 'access-control-request-method': 'PUT' },
    });
    assert.equal(r.headers['x-upstream'], 'upstream');
    assert.equal(seen('/no-origin'), 1);
  });
});
