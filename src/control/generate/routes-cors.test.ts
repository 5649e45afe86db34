import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCorsPolicy, originAllowed } from '../../proxy/http/filters/cors-config.ts';
import { corsConfig } from './routes.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const ALWAYS = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

describe('VirtualService corsPolicy → Envoy CorsPolicy (as Istio translates it)', () => {
  it('translates every field', () => {
    const out = corsConfig({
      allowOrigins: [
        { exact: 'https://a.example' },
        { prefix: 'https://b.' },
        { regex: 'https://c[0-9]\\.example' },
      ],
      allowMethods: ['GET', 'POST'],
      allowHeaders: ['x-a', 'x-b'],
      exposeHeaders: ['x-c'],
      maxAge: '1m30.5s',
      allowCredentials: false,
      unmatchedPreflights: 'IGNORE',
    });
    assert.deepEqual(out, {
      '@type': TYPE,
      allow_origin_string_match: [
        { exact: 'https://a.example' },
        { prefix: 'https://b.' },
        { safe_regex: { regex: 'https://c[0-9]\\.example' } },
      ],
      allow_methods: 'GET,POST',
      allow_headers: 'x-a,x-b',
      expose_headers: 'x-c',
      max_age: '90',
      allow_credentials: false,
      filter_enabled: ALWAYS,
      forward_not_matching_preflights: false,
    });
    // What the generator sends is what the proxy accepts, with the same meaning.
    const policy = compileCorsPolicy(out, 'p');
    assert.equal(originAllowed(policy, 'https://c7.example'), true);
    assert.equal(originAllowed(policy, 'https://c77.example'), false);
    assert.equal(policy.forwardNotMatchingPreflights, false);
  });

  it('uses the deprecated allowOrigin only without allowOrigins, and forwards unmatched preflights by default', () => {
    assert.deepEqual(corsConfig({ allowOrigin: ['https://old.example'] }), {
      '@type': TYPE,
      allow_origin_string_match: [{ exact: 'https://old.example' }],
      filter_enabled: ALWAYS,
      forward_not_matching_preflights: true,
    });
    assert.deepEqual(
      corsConfig({ allowOrigins: [{ exact: 'https://new.example' }], allowOrigin: ['https://old.example'] })
        ?.allow_origin_string_match,
      [{ exact: 'https://new.example' }],
    );
    assert.equal(corsConfig({ unmatchedPreflights: 'FORWARD' })?.forward_not_matching_preflights, true);
    assert.equal(corsConfig(undefined), undefined);
  });
});
