import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JsonObject } from '../../../core/json.ts';
import { startRbacProxy } from '../../../../test/support/rbac-proxy.ts';
import type { RbacProxy } from '../../../../test/support/rbac-proxy.ts';

const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';

function rbac(config: JsonObject): JsonObject {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': RBAC_TYPE, ...config } };
}

const ANY = [{ any: true }];

describe('RBAC filter through a real proxy', { timeout: 60_000 }, () => {
  let p: RbacProxy;

  before(async () => {
    p = await startRbacProxy([
      // DENY: requests from 127.0.0.9 and requests to /admin without x-admin.
      rbac({
        rules: {
          action: 'DENY',
          policies: {
            'deny-peer': {
              permissions: ANY,
              principals: [{ direct_remote_ip: { address_prefix: '127.0.0.9', prefix_len: 32 } }],
            },
            'admin-needs-header': {
              permissions: [{ url_path: { path: { prefix: '/admin' } } }],
              principals: [{ not_id: { header: { name: 'x-admin', present_match: true } } }],
            },
          },
        },
        rules_stat_prefix: 'deny_',
      }),
      // ALLOW: GET on any path, or POST from the xff client 10.1.0.0/16; shadow rules count a narrower policy.
      rbac({
        rules: {
          action: 'ALLOW',
          policies: {
            gets: {
              permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }],
              principals: ANY,
            },
            'posts-from-net': {
              permissions: [
                {
                  and_rules: {
                    rules: [
                      { header: { name: ':method', string_match: { exact: 'POST' } } },
                      { url_path: { path: { exact: '/submit' } } },
                    ],
                  },
                },
              ],
              principals: [{ remote_ip: { address_prefix: '10.1.0.0', prefix_len: 16 } }],
            },
          },
        },
        shadow_rules: {
          action: 'ALLOW',
          policies: {
            'only-api': { permissions: [{ url_path: { path: { prefix: '/api' } } }], principals: ANY },
          },
        },
        shadow_rules_stat_prefix: 'dry_',
      }),
      // LOG: annotates, never denies.
      rbac({ rules: { action: 'LOG', policies: { all: { permissions: ANY, principals: ANY } } } }),
    ]);
  });

  after(async () => {
    await p?.stop();
  });

  it('allows what an ALLOW policy matches and refuses the rest with 403 "RBAC: access denied"', async () => {
    assert.equal((await p.send({ path: '/anything?x=1' })).status, 200);
    const post = await p.send({ method: 'POST', path: '/submit' });
    assert.equal(post.status, 403);
    assert.equal(post.body, 'RBAC: access denied');
    assert.equal(
      (await p.send({ method: 'POST', path: '/submit', headers: { 'x-forwarded-for': '10.1.2.3' } })).status,
      200,
    );
    assert.equal(
      (await p.send({ method: 'POST', path: '/submit?q', headers: { 'x-forwarded-for': '10.2.2.3' } }))
        .status,
      403,
    );
    // url_path ignores the query string; POST to another path is not covered by the ALLOW policy.
    assert.equal(
      (await p.send({ method: 'POST', path: '/submit?a=b', headers: { 'x-forwarded-for': '10.1.0.1' } }))
        .status,
      200,
    );
    assert.equal(
      (await p.send({ method: 'POST', path: '/other', headers: { 'x-forwarded-for': '10.1.0.1' } })).status,
      403,
    );
  });

  it('refuses what a DENY policy matches, before the ALLOW filter', async () => {
    assert.equal((await p.send({ from: '127.0.0.9' })).status, 403);
    assert.equal((await p.send({ from: '127.0.0.8' })).status, 200);
    assert.equal((await p.send({ path: '/admin/x' })).status, 403);
    assert.equal((await p.send({ path: '/admin/x', headers: { 'x-admin': '1' } })).status, 200);
  });

  it('counts decisions under the configured stat prefixes', async () => {
    await p.send({ path: '/api/v1' });
    await p.send({ path: '/web' });
    const stats = await p.stats();
    assert.match(stats, /http\.ingress_http\.rbac\.deny_allowed: [1-9]/);
    assert.match(stats, /http\.ingress_http\.rbac\.deny_denied: [1-9]/);
    assert.match(stats, /http\.ingress_http\.rbac\.allowed: [1-9]/);
    assert.match(stats, /http\.ingress_http\.rbac\.denied: [1-9]/);
    assert.match(stats, /http\.ingress_http\.rbac\.dry_shadow_allowed: [1-9]/);
    assert.match(stats, /http\.ingress_http\.rbac\.dry_shadow_denied: [1-9]/);
  });
});

describe('RBAC filter without rules', { timeout: 30_000 }, () => {
  it('enforces nothing when only shadow rules are set, and ALLOW with no policy denies everything', async () => {
    const shadowOnly = await startRbacProxy([
      rbac({ shadow_rules: { action: 'DENY', policies: { all: { permissions: ANY, principals: ANY } } } }),
    ]);
    try {
      assert.equal((await shadowOnly.send({})).status, 200);
      assert.match(await shadowOnly.stats(), /http\.ingress_http\.rbac\.shadow_denied: 1\b/);
    } finally {
      await shadowOnly.stop();
    }
    const allowNothing = await startRbacProxy([rbac({ rules: { action: 'ALLOW', policies: {} } })]);
    try {
      assert.equal((await allowNothing.send({})).status, 403);
      const grpc = await allowNothing.send({
        method: 'POST',
        headers: { 'content-type': 'application/grpc' },
      });
      assert.equal(grpc.status, 200);
      assert.equal(grpc.headers['grpc-status'], '7');
      assert.equal(decodeURIComponent(String(grpc.headers['grpc-message'])), 'RBAC: access denied');
    } finally {
      await allowNothing.stop();
    }
  });
});
