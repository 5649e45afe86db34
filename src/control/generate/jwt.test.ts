import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrapDoc, httpListener, staticCluster } from '../../../test/support/bootstrap.ts';
import { request } from '../../../test/support/http.ts';
import { startProxy } from '../../../test/support/proxy.ts';
import type { RunningProxy } from '../../../test/support/proxy.ts';
import { startHttpUpstream } from '../../../test/support/servers.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { RequestAuthentication } from '../../api/istio/security.ts';
import type { JsonObject } from '../../core/json.ts';
import { loadConfig } from '../../config/load.ts';
import { testSigner } from '../../proxy/http/filters/jwt-authn-testing.ts';
import type { TestSigner } from '../../proxy/http/filters/jwt-authn-testing.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import { FAIL_CLOSED_JWKS } from '../security/jwks-resolver.ts';
import { jwtFilter, jwtPolicyKey, JWT_AUTHN_TYPE } from './jwt.ts';
import { sidecarNode } from './testing.ts';

const JWKS_URI = 'https://example.com/.well-known/jwks.json';

/** A snapshot of the RequestAuthentications in `yaml`, which must load (schema-checked) without diagnostics. */
function snapshotOf(yaml: string): MeshSnapshot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-jwt-'));
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, yaml);
  const { resources, diagnostics } = loadConfig([file]);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(diagnostics, []);
  return buildSnapshot({
    version: 1,
    requestAuthentications: resources.filter(
      (r) => r.kind === 'RequestAuthentication',
    ) as IstioResource<RequestAuthentication>[],
    discovery: aggregate([]),
  });
}

const config = (f: JsonObject | undefined) => (f?.typed_config ?? {}) as Record<string, never>;

// Istio's documented examples (security.istio.io RequestAuthentication reference), plus a mesh-wide one.
const EXAMPLES = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "issuer-foo"
    jwksUri: ${JWKS_URI}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: headers
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "issuer-bar"
    audiences: ["bookstore_android.apps.example.com", "bookstore_web.apps.example.com"]
    jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}'
    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Bearer "
    fromParams:
    - my_token
    fromCookies:
    - session
    outputPayloadToHeader: x-jwt-payload
    forwardOriginalToken: true
    outputClaimToHeaders:
    - header: "x-jwt-claim-foo"
      claim: "foo"
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: mesh
  namespace: istio-system
spec:
  jwtRules:
  - issuer: "issuer-mesh"
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: other-app
  namespace: foo
spec:
  selector:
    matchLabels:
      app: other
  jwtRules:
  - issuer: "issuer-other"
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: by-ref
  namespace: foo
spec:
  targetRef:
    kind: Gateway
    group: gateway.networking.k8s.io
    name: gw
  jwtRules:
  - issuer: "issuer-gateway"
`;

describe('RequestAuthentication → jwt_authn', () => {
  const snap = snapshotOf(EXAMPLES);
  const lookups: string[] = [];
  const jwks = (uri: string): string => {
    lookups.push(uri);
    return '{"keys":[{"kty":"EC","crv":"P-256","x":"BB","y":"BB"}]}';
  };

  it('translates the documented examples, workload namespace first, then the root namespace', () => {
    const discovered = (iss: string): string => JSON.stringify({ keys: [{ kty: 'oct', kid: iss }] });
    const f = jwtFilter(sidecarNode('httpbin', 'foo'), snap, jwks, discovered);
    assert.equal(f?.name, 'envoy.filters.http.jwt_authn');
    const c = config(f) as unknown as {
      '@type': string;
      providers: Record<string, JsonObject>;
      rules: JsonObject[];
      bypass_cors_preflight: boolean;
    };
    assert.equal(c['@type'], JWT_AUTHN_TYPE);
    assert.deepEqual(Object.keys(c.providers), ['origins-0', 'origins-1', 'origins-2']);
    // Sorted by namespace/name: foo/headers, foo/httpbin, then istio-system/mesh.
    assert.deepEqual(c.providers['origins-0'], {
      issuer: 'issuer-bar',
      local_jwks: { inline_string: '{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}' },
      payload_in_metadata: 'issuer-bar',
      audiences: ['bookstore_android.apps.example.com', 'bookstore_web.apps.example.com'],
      from_headers: [{ name: 'x-jwt-assertion', value_prefix: 'Bearer ' }],
      from_params: ['my_token'],
      from_cookies: ['session'],
      forward: true,
      forward_payload_header: 'x-jwt-payload',
      claim_to_headers: [{ header_name: 'x-jwt-claim-foo', claim_name: 'foo' }],
    });
    assert.deepEqual(c.providers['origins-1'], {
      issuer: 'issuer-foo',
      local_jwks: { inline_string: '{"keys":[{"kty":"EC","crv":"P-256","x":"BB","y":"BB"}]}' },
      payload_in_metadata: 'issuer-foo',
    });
    assert.deepEqual(lookups, [JWKS_URI]);
    // No jwks and no jwksUri: the issuer's keys, found by OpenID discovery.
    assert.equal(
      (c.providers['origins-2'].local_jwks as JsonObject).inline_string,
      discovered('issuer-mesh'),
    );
    assert.deepEqual(c.rules, [
      {
        match: { prefix: '/' },
        requires: {
          requires_any: {
            requirements: [
              { provider_name: 'origins-0' },
              { provider_name: 'origins-1' },
              { provider_name: 'origins-2' },
              { allow_missing: {} },
            ],
          },
        },
      },
    ]);
    assert.equal(c.bypass_cors_preflight, true);
  });

  it('applies mesh-wide policies alone to other workloads, skips targetRef policies, and none to proxyless gRPC', () => {
    const c = config(jwtFilter(sidecarNode('ratings', 'bar'), snap, jwks)) as unknown as {
      providers: Record<string, JsonObject>;
    };
    assert.deepEqual(Object.keys(c.providers), ['origins-0']);
    assert.equal(c.providers['origins-0'].issuer, 'issuer-mesh');
    assert.equal((c.providers['origins-0'].local_jwks as JsonObject).inline_string, FAIL_CLOSED_JWKS);
    const all = JSON.stringify(jwtFilter(sidecarNode('httpbin', 'foo'), snap, jwks));
    assert.ok(!all.includes('issuer-gateway'));
    assert.ok(!all.includes('issuer-other'));
    assert.equal(jwtFilter({ ...sidecarNode('g', 'foo'), type: 'grpc' }, snap, jwks), undefined);
  });

  it('gives no filter when nothing applies', () => {
    const empty = snapshotOf(EXAMPLES.split('---').slice(0, 1).join(''));
    assert.equal(jwtFilter(sidecarNode('ratings', 'bar'), empty, jwks), undefined);
    assert.equal(jwtPolicyKey(sidecarNode('ratings', 'bar'), empty), '');
  });

  it('keys plans by the applicable policies and their content', () => {
    const a = jwtPolicyKey(sidecarNode('httpbin', 'foo'), snap);
    assert.equal(a, jwtPolicyKey(sidecarNode('httpbin', 'foo', { version: 'v2' }), snap));
    assert.notEqual(a, jwtPolicyKey(sidecarNode('ratings', 'foo'), snap));
    const changed = snapshotOf(EXAMPLES.replace('issuer-foo', 'issuer-foo2'));
    assert.notEqual(a, jwtPolicyKey(sidecarNode('httpbin', 'foo'), changed));
  });
});

describe('the generated filter in a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let signer: TestSigner;
  let unknownKeys: TestSigner;
  const get = (p: string, headers: Record<string, string> = {}) =>
    request(proxy.port(), { path: p, headers });

  before(async () => {
    signer = await testSigner();
    unknownKeys = await testSigner();
    const snap = snapshotOf(`
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "https://issuer.example"
    audiences: ["httpbin"]
    jwksUri: https://issuer.example/keys
    outputClaimToHeaders:
    - header: x-user
      claim: sub
  - issuer: "https://unreachable.example"
    jwksUri: https://unreachable.example/keys
`);
    const filter = jwtFilter(sidecarNode('httpbin', 'foo'), snap, (uri) =>
      uri === 'https://issuer.example/keys' ? signer.jwks : FAIL_CLOSED_JWKS,
    );
    up = await startHttpUpstream();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            hcm: {
              http_filters: [
                filter,
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

  it('passes a valid token and sets the claim header', async () => {
    const token = await signer.sign({ iss: 'https://issuer.example', sub: 'alice', aud: 'httpbin' });
    const r = await get('/valid', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    const seen = up.seen.find((s) => s.url === '/valid')!;
    assert.equal(seen.headers['x-user'], 'alice');
    assert.equal(seen.headers.authorization, undefined);
  });

  it('refuses an invalid token, and a token of an issuer whose keys are not known yet (fail closed)', async () => {
    const wrongAud = await signer.sign({ iss: 'https://issuer.example', sub: 'a', aud: 'other' });
    assert.equal((await get('/x', { authorization: `Bearer ${wrongAud}` })).status, 401);
    const unreachable = await unknownKeys.sign({ iss: 'https://unreachable.example', sub: 'a' });
    assert.equal((await get('/y', { authorization: `Bearer ${unreachable}` })).status, 401);
  });

  it('passes a request without a token', async () => {
    assert.equal((await get('/none')).status, 200);
  });
});
