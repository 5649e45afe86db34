import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../../core/json.ts';
import { compileRateLimits, xfccUri } from '../../router/rate-limit-actions.ts';
import type { Descriptor } from '../../router/rate-limit-actions.ts';
import type { RouteRequest } from '../../router/types.ts';
import { Limiter } from './local-ratelimit.ts';
import { compileLocalRateLimit } from './local-ratelimit-config.ts';

function request(headers: Record<string, string>, sourceIp = '10.0.0.1'): RouteRequest {
  return { authority: 'svc', path: '/p', method: 'GET', headers, scheme: 'http', sourceIp };
}

function descriptors(rateLimits: JsonObject[], req: RouteRequest): Descriptor[] {
  const compiled = compileRateLimits({ rate_limits: rateLimits }, 'r') ?? [];
  return compiled.map((rl) => rl.descriptor(req)).filter((d): d is Descriptor => d !== undefined);
}

const USER = [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }];

function limiter(extra: JsonObject): Limiter {
  const cfg = compileLocalRateLimit(
    {
      stat_prefix: 'rl',
      filter_enabled: { default_value: { numerator: 100 } },
      filter_enforced: { default_value: { numerator: 100 } },
      ...extra,
    },
    'f',
  );
  return new Limiter(cfg, 0, 3);
}

function allowedCount(l: Limiter, d: Descriptor[], n: number, now = 0): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.check(d, now).allowed) ok++;
  return ok;
}

describe('rate_limits actions', () => {
  it('produce descriptors from headers, remote address, generic keys and header matches', () => {
    const req = request({ 'x-user': 'alice', 'x-tier': 'gold' });
    assert.deepEqual(
      descriptors(
        [
          {
            actions: [
              { request_headers: { header_name: 'x-user', descriptor_key: 'user' } },
              { remote_address: {} },
            ],
          },
          { actions: [{ generic_key: { descriptor_value: 'all' } }] },
          {
            actions: [
              {
                header_value_match: {
                  descriptor_value: 'gold',
                  headers: [{ name: 'x-tier', string_match: { exact: 'gold' } }],
                },
              },
            ],
          },
          { actions: [{ request_headers: { header_name: ':method', descriptor_key: 'method' } }] },
        ],
        req,
      ),
      [
        [
          { key: 'user', value: 'alice' },
          { key: 'remote_address', value: '10.0.0.1' },
        ],
        [{ key: 'generic_key', value: 'all' }],
        [{ key: 'header_match', value: 'gold' }],
        [{ key: 'method', value: 'GET' }],
      ],
    );
  });

  it('drop the descriptor when a header is absent, unless skip_if_absent', () => {
    const req = request({});
    assert.deepEqual(descriptors(USER, req), []);
    assert.deepEqual(
      descriptors(
        [
          {
            actions: [
              { request_headers: { header_name: 'x-user', descriptor_key: 'user', skip_if_absent: true } },
              { generic_key: { descriptor_value: 'v', descriptor_key: 'k' } },
            ],
          },
        ],
        req,
      ),
      [[{ key: 'k', value: 'v' }]],
    );
  });

  it('read the client principal from the x-forwarded-client-cert URI', () => {
    const xfcc = 'By=spiffe://td/ns/a/sa/server;Hash=abc;URI=spiffe://td/ns/b/sa/client';
    assert.equal(xfccUri(xfcc), 'spiffe://td/ns/b/sa/client');
    const d = descriptors(
      [
        {
          actions: [
            { request_headers: { header_name: 'x-forwarded-client-cert', descriptor_key: 'principal' } },
          ],
        },
      ],
      request({ 'x-forwarded-client-cert': xfcc }),
    );
    assert.deepEqual(d, [[{ key: 'principal', value: 'spiffe://td/ns/b/sa/client' }]]);
  });

  it('prefer the principal the mTLS handshake verified over anything the header says', () => {
    const action = [
      {
        actions: [
          { request_headers: { header_name: 'x-forwarded-client-cert', descriptor_key: 'principal' } },
        ],
      },
    ];
    const forged = request({ 'x-forwarded-client-cert': 'URI=spiffe://td/ns/b/sa/admin' });
    const verified = { ...forged, downstreamSecurity: { peerPrincipal: 'spiffe://td/ns/b/sa/client' } };
    assert.deepEqual(descriptors(action, verified), [
      [{ key: 'principal', value: 'spiffe://td/ns/b/sa/client' }],
    ]);
    const noHeader = { ...request({}), downstreamSecurity: { peerPrincipal: 'spiffe://td/ns/b/sa/client' } };
    assert.deepEqual(descriptors(action, noHeader), [
      [{ key: 'principal', value: 'spiffe://td/ns/b/sa/client' }],
    ]);
  });
});

describe('Limiter', () => {
  const perUser = {
    token_bucket: { max_tokens: 100, fill_interval: '60s' },
    descriptors: [
      { entries: [{ key: 'user', value: '' }], token_bucket: { max_tokens: 2, fill_interval: '10s' } },
      { entries: [{ key: 'user', value: 'vip' }], token_bucket: { max_tokens: 5, fill_interval: '10s' } },
    ],
  };

  it('gives each wildcard value its own bucket and an exact override its own limit', () => {
    const l = limiter(perUser);
    const alice = descriptors(USER, request({ 'x-user': 'alice' }));
    const bob = descriptors(USER, request({ 'x-user': 'bob' }));
    const vip = descriptors(USER, request({ 'x-user': 'vip' }));
    assert.equal(allowedCount(l, alice, 4), 2);
    assert.equal(allowedCount(l, bob, 4), 2);
    assert.equal(allowedCount(l, vip, 8), 5);
    // After one fill interval, one more token (tokens_per_fill defaults to 1).
    assert.equal(allowedCount(l, alice, 3, 10_000), 1);
  });

  it('caps the per-client buckets (LRU): an evicted client starts again full', () => {
    const l = limiter(perUser); // cap 3
    const d = (u: string): Descriptor[] => descriptors(USER, request({ 'x-user': u }));
    assert.equal(allowedCount(l, d('a'), 3), 2);
    for (const u of ['b', 'c', 'e']) allowedCount(l, d(u), 1);
    assert.equal(l.descriptors[1].dynamicSize, 3);
    assert.equal(allowedCount(l, d('a'), 3), 2);
  });

  it('draws the default bucket too unless always_consume_default_token_bucket is false', () => {
    const small = { max_tokens: 3, fill_interval: '60s' };
    const alice = descriptors(USER, request({ 'x-user': 'alice' }));
    const l = limiter({ ...perUser, token_bucket: small });
    assert.equal(allowedCount(l, alice, 2), 2);
    // alice's bucket is empty now; the default bucket has one token left for requests with no descriptor.
    assert.equal(allowedCount(l, [], 5), 1);
    const l2 = limiter({ ...perUser, token_bucket: small, always_consume_default_token_bucket: false });
    assert.equal(allowedCount(l2, alice, 2), 2);
    assert.equal(allowedCount(l2, [], 5), 3);
  });

  it('reports the deciding bucket for the x-ratelimit headers', () => {
    const l = limiter({ token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: '5s' } });
    const first = l.check([], 1000);
    assert.equal(first.allowed, true);
    assert.equal(first.bucket?.remaining(1000), 1);
    assert.equal(first.bucket?.msUntilFill(1000), 4000);
    l.check([], 1000);
    const denied = l.check([], 1000);
    assert.equal(denied.allowed, false);
    assert.equal(denied.bucket?.spec.maxTokens, 2);
    assert.equal(l.check([], 5000).allowed, true);
  });
});
