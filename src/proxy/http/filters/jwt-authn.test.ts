import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { bootstrapDoc, httpListener, staticCluster } from '../../../../test/support/bootstrap.ts';
import { request } from '../../../../test/support/http.ts';
import type { Reply } from '../../../../test/support/http.ts';
import { startProxy } from '../../../../test/support/proxy.ts';
import type { RunningProxy } from '../../../../test/support/proxy.ts';
import { startHttpUpstream } from '../../../../test/support/servers.ts';
import type { SeenRequest } from '../../../../test/support/servers.ts';
import type { HttpStream } from '../stream.ts';
import { StatsStore } from '../../stats/store.ts';
import { JwtAuthnFilter } from './jwt-authn.ts';
import { compileJwtAuthn, JWT_AUTHN_FILTER_NAME, JWT_AUTHN_TYPE_NAME } from './jwt-authn-config.ts';
import { tampered, testSigner } from './jwt-authn-testing.ts';
import type { TestSigner } from './jwt-authn-testing.ts';

const ISS = 'https://issuer.example';
const CUSTOM_ISS = 'https://custom.example';
const AUD = 'orders';

function jwtConfig(signer: TestSigner): Record<string, unknown> {
  return {
    '@type': `type.googleapis.com/${JWT_AUTHN_TYPE_NAME}`,
    providers: {
      main: {
        issuer: ISS,
        audiences: [AUD, 'other'],
        local_jwks: { inline_string: signer.jwks },
        forward_payload_header: 'x-jwt-payload',
        claim_to_headers: [
          { header_name: 'x-jwt-sub', claim_name: 'sub' },
          { header_name: 'x-jwt-groups', claim_name: 'groups' },
        ],
        payload_in_metadata: ISS,
      },
      custom: {
        issuer: CUSTOM_ISS,
        local_jwks: { inline_string: signer.jwks },
        from_headers: [{ name: 'x-token', value_prefix: 'Token ' }],
        from_params: ['jwt'],
        forward: true,
      },
    },
    rules: [
      { match: { prefix: '/strict' }, requires: { provider_name: 'main' } },
      { match: { prefix: '/custom' }, requires: { provider_name: 'custom' } },
      { match: { path: '/open' } },
      {
        match: { prefix: '/' },
        requires: {
          requires_any: {
            requirements: [{ provider_name: 'main' }, { provider_name: 'custom' }, { allow_missing: {} }],
          },
        },
      },
    ],
    bypass_cors_preflight: true,
  };
}

function h2(
  port: number,
  headers: http2.OutgoingHttpHeaders,
): Promise<{ headers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.on('error', reject);
    const s = c.request(headers);
    let h: http2.IncomingHttpHeaders = {};
    s.on('response', (x) => (h = x));
    s.on('error', reject);
    s.resume();
    s.on('end', () => {
      c.close();
      resolve({ headers: h });
    });
    s.end();
  });
}

describe('jwt_authn through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let signer: TestSigner;
  let stranger: TestSigner;

  const get = (path: string, headers: Record<string, string> = {}): Promise<Reply> =>
    request(proxy.port(), { path, headers });
  const seenAt = (path: string): SeenRequest | undefined => up.seen.findLast((s) => s.url === path);
  const stat = async (name: string): Promise<number> => {
    const body = (await request(proxy.adminPort, { path: '/stats' })).body;
    const m = new RegExp(`^http\\.ingress_http\\.jwt_authn\\.${name}: (\\d+)$`, 'm').exec(body);
    return m === null ? 0 : Number(m[1]);
  };

  before(async () => {
    signer = await testSigner('k1');
    stranger = await testSigner('k1');
    up = await startHttpUpstream();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            hcm: {
              http_filters: [
                { name: JWT_AUTHN_FILTER_NAME, typed_config: jwtConfig(signer) },
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

  it('passes a valid token, with its payload and claims as headers and the token header removed', async () => {
    const token = await signer.sign({ iss: ISS, sub: 'alice', aud: AUD, groups: ['a', 'b'] });
    const r = await get('/strict/ok', { authorization: `Bearer ${token}`, 'x-jwt-sub': 'forged' });
    assert.equal(r.status, 200);
    const seen = seenAt('/strict/ok')!;
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-jwt-sub'], 'alice');
    assert.equal(seen.headers['x-jwt-groups'], 'a,b');
    const payload = JSON.parse(Buffer.from(String(seen.headers['x-jwt-payload']), 'base64url').toString());
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.iss, ISS);
  });

  it('refuses a tampered, expired, wrong-audience, wrong-issuer or foreign-key token with 401', async () => {
    const good = await signer.sign({ iss: ISS, sub: 'alice', aud: AUD });
    const cases: [string, string, string][] = [
      ['tampered', tampered(good, { sub: 'mallory' }), 'Jwt verification fails'],
      [
        'expired',
        await signer.sign({ iss: ISS, sub: 'a', aud: AUD }, { expiresInSec: -3600 }),
        'Jwt is expired',
      ],
      [
        'audience',
        await signer.sign({ iss: ISS, sub: 'a', aud: 'payments' }),
        'Audiences in Jwt are not allowed',
      ],
      [
        'issuer',
        await signer.sign({ iss: 'https://evil.example', sub: 'a', aud: AUD }),
        'Jwt issuer is not configured',
      ],
      ['foreign key', await stranger.sign({ iss: ISS, sub: 'a', aud: AUD }), 'Jwt verification fails'],
      [
        'garbage',
        'not-a-jwt',
        'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
      ],
    ];
    for (const [what, token, body] of cases) {
      const path = `/any/${what.replace(' ', '-')}`;
      const r = await get(path, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 401, what);
      assert.equal(r.body, body, what);
      assert.equal(
        r.headers['www-authenticate'],
        `Bearer realm="http://127.0.0.1:${proxy.port()}${path}", error="invalid_token"`,
        what,
      );
      assert.equal(seenAt(path), undefined, what);
    }
  });

  it('tolerates an exp within the clock skew (60 s by default)', async () => {
    const token = await signer.sign({ iss: ISS, sub: 'a', aud: AUD }, { expiresInSec: -30 });
    assert.equal((await get('/strict/skew', { authorization: `Bearer ${token}` })).status, 200);
  });

  it('lets a request without a token through under allow_missing, and refuses it where a provider is required', async () => {
    assert.equal((await get('/any/none')).status, 200);
    assert.equal(seenAt('/any/none')?.headers['x-jwt-sub'], undefined);
    const r = await get('/strict/none');
    assert.equal(r.status, 401);
    assert.equal(r.body, 'Jwt is missing');
    assert.equal(
      r.headers['www-authenticate'],
      `Bearer realm="http://127.0.0.1:${proxy.port()}/strict/none"`,
    );
  });

  it('does not verify on a path whose rule has no requirement', async () => {
    assert.equal((await get('/open', { authorization: 'Bearer junk' })).status, 200);
    assert.equal(seenAt('/open')?.headers.authorization, 'Bearer junk');
  });

  it('takes the token from the access_token query parameter by default', async () => {
    const token = await signer.sign({ iss: ISS, sub: 'qp', aud: AUD });
    assert.equal((await get(`/strict/q?access_token=${token}`)).status, 200);
    assert.equal(seenAt(`/strict/q?access_token=${token}`)?.headers['x-jwt-sub'], 'qp');
    assert.equal((await get(`/strict/q?access_token=${tampered(token, { sub: 'x' })}`)).status, 401);
  });

  it('takes the token from a custom header after its prefix, and from a custom parameter; forward keeps it', async () => {
    const token = await signer.sign({ iss: CUSTOM_ISS, sub: 'bob' });
    assert.equal((await get('/custom/h', { 'x-token': `Token ${token}` })).status, 200);
    assert.equal(seenAt('/custom/h')?.headers['x-token'], `Token ${token}`);
    assert.equal((await get(`/custom/p?jwt=${token}`)).status, 200);
    // The main provider's location does not count for this rule.
    assert.equal((await get('/custom/wrong-place', { authorization: `Bearer ${token}` })).status, 401);
    assert.equal(
      (await get('/custom/bad', { 'x-token': `Token ${tampered(token, { sub: 'x' })}` })).status,
      401,
    );
  });

  it('answers a gRPC request with a bad token with grpc-status 16 (UNAUTHENTICATED)', async () => {
    const r = await h2(proxy.port(), {
      ':path': '/pkg.Svc/Method',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: 'Bearer x.y.z',
    });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['grpc-status'], '16');
  });

  it('lets CORS preflights through without a token when bypass_cors_preflight is set', async () => {
    const before = await stat('cors_preflight_bypassed');
    const r = await request(proxy.port(), {
      method: 'OPTIONS',
      path: '/strict/pre',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(r.status, 200);
    assert.equal(await stat('cors_preflight_bypassed'), before + 1);
  });

  it('verifies a repeated token once: the second request is a cache hit', async () => {
    const token = await signer.sign({ iss: ISS, sub: 'cached', aud: AUD });
    const [hits, misses, allowed] = [
      await stat('jwt_cache_hit'),
      await stat('jwt_cache_miss'),
      await stat('allowed'),
    ];
    assert.equal((await get('/strict/c1', { authorization: `Bearer ${token}` })).status, 200);
    assert.equal((await get('/strict/c2', { authorization: `Bearer ${token}` })).status, 200);
    assert.equal(seenAt('/strict/c2')?.headers['x-jwt-sub'], 'cached');
    assert.equal(await stat('jwt_cache_miss'), misses + 1);
    assert.equal(await stat('jwt_cache_hit'), hits + 1);
    assert.equal(await stat('allowed'), allowed + 2);
    assert.ok((await stat('denied')) > 0);
  });
});

/** A stand-in for the few HttpStream members the filter reads, to look at what it leaves behind. */
function fakeStream(path: string, headers: Record<string, string>) {
  const replies: { status: number; body: string | undefined }[] = [];
  let continued = 0;
  const stream = {
    path,
    headers,
    method: 'GET',
    scheme: 'http',
    authority: 'svc',
    sourceIp: '10.0.0.1',
    done: false,
    dynamicMetadata: new Map<string, Record<string, unknown>>(),
    sendLocalReply(status: number, _flag: string | null, body?: string) {
      replies.push({ status, body });
    },
    continueDecoding() {
      continued++;
    },
  };
  return { stream, asStream: stream as unknown as HttpStream, replies, continued: () => continued };
}

describe('jwt_authn filter state', () => {
  it('writes the payload and the istio_authn attributes into dynamic metadata', async () => {
    const signer = await testSigner();
    const cfg = jwtConfig(signer);
    const store = new StatsStore();
    const filter = new JwtAuthnFilter('jwt', compileJwtAuthn(cfg as never, 'jwt'), store, 'test');
    const token = await signer.sign({ iss: ISS, sub: 'alice', aud: [AUD, 'x'], azp: 'web', scope: 'a b' });
    const f = fakeStream('/strict', { authorization: `Bearer ${token}` });
    assert.equal(filter.onRequest(f.asStream), 'stop');
    for (let i = 0; i < 50 && f.continued() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(f.continued(), 1);
    assert.deepEqual(f.replies, []);
    const md = f.stream.dynamicMetadata.get(JWT_AUTHN_FILTER_NAME)!;
    assert.equal((md[ISS] as { sub: string }).sub, 'alice');
    const authn = f.stream.dynamicMetadata.get('istio_authn')!;
    assert.equal(authn['request.auth.principal'], `${ISS}/alice`);
    assert.equal(authn['request.auth.audiences'], AUD);
    assert.equal(authn['request.auth.presenter'], 'web');
    assert.equal((authn['request.auth.claims'] as { scope: string }).scope, 'a b');

    // The same token again is answered from the cache, synchronously.
    const again = fakeStream('/strict', { authorization: `Bearer ${token}` });
    assert.equal(filter.onRequest(again.asStream), 'continue');
    assert.equal(again.stream.headers['x-jwt-sub'], 'alice');
  });

  it('forgets a cached token once it expires (plus skew)', async () => {
    const signer = await testSigner();
    let now = Date.now();
    const filter = new JwtAuthnFilter(
      'jwt',
      compileJwtAuthn(jwtConfig(signer) as never, 'jwt'),
      new StatsStore(),
      'test',
      { clock: () => now },
    );
    const token = await signer.sign({ iss: ISS, sub: 'a', aud: AUD }, { expiresInSec: 10 });
    const first = fakeStream('/strict', { authorization: `Bearer ${token}` });
    filter.onRequest(first.asStream);
    for (let i = 0; i < 50 && first.continued() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(first.continued(), 1);
    now += 71_000;
    const later = fakeStream('/strict', { authorization: `Bearer ${token}` });
    assert.equal(filter.onRequest(later.asStream), 'stop');
    for (let i = 0; i < 50 && later.replies.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(later.replies, [{ status: 401, body: 'Jwt is expired' }]);
  });
});
