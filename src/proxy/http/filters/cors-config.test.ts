import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { Json } from '../../../core/json.ts';
import { compileCors, compileCorsPolicy, originAllowed } from './cors-config.ts';

const POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

function rejects(json: Json, message: string): void {
  assert.throws(
    () => compileCorsPolicy(json, 'p'),
    (e: unknown) => e instanceof ConfigError && e.message.includes(message),
    message,
  );
}

describe('CorsPolicy config', () => {
  it('compiles every implemented field', () => {
    const p = compileCorsPolicy(
      {
        '@type': POLICY,
        allow_origin_string_match: [{ exact: 'https://a.example' }],
        allow_methods: 'GET,POST',
        allow_headers: 'x-a,x-b',
        expose_headers: 'x-c',
        max_age: '600',
        allow_credentials: true,
        forward_not_matching_preflights: false,
        filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
        shadow_enabled: { default_value: { numerator: 1_000_000, denominator: 'MILLION' } },
        allow_private_network_access: false,
      },
      'p',
    );
    assert.equal(p.allowOrigins.length, 1);
    assert.equal(p.anyOrigin, false);
    assert.equal(p.allowMethods, 'GET,POST');
    assert.equal(p.allowHeaders, 'x-a,x-b');
    assert.equal(p.exposeHeaders, 'x-c');
    assert.equal(p.maxAge, '600');
    assert.equal(p.allowCredentials, true);
    assert.equal(p.forwardNotMatchingPreflights, false);
  });

  it('has Envoy defaults: no origins, no headers, no credentials, non-matching preflights forwarded', () => {
    const p = compileCorsPolicy({ '@type': POLICY }, 'p');
    assert.deepEqual(
      [p.allowOrigins.length, p.allowMethods, p.allowHeaders, p.exposeHeaders, p.maxAge],
      [0, '', '', '', ''],
    );
    assert.equal(p.allowCredentials, false);
    assert.equal(p.forwardNotMatchingPreflights, true);
    assert.equal(originAllowed(p, 'https://a.example'), false);
  });

  it('matches origins with every StringMatcher kind', () => {
    const p = compileCorsPolicy(
      {
        allow_origin_string_match: [
          { exact: 'https://exact.example' },
          { prefix: 'https://pre.' },
          { suffix: '.suffix.example' },
          { contains: 'middle' },
          { safe_regex: { regex: 'https://r[0-9]+\\.example' } },
          { exact: 'HTTPS://CASE.example', ignore_case: true },
        ],
      },
      'p',
    );
    for (const o of [
      'https://exact.example',
      'https://pre.anything',
      'http://x.suffix.example',
      'http://a-middle-b',
      'https://r42.example',
      'https://case.EXAMPLE',
    ])
      assert.equal(originAllowed(p, o), true, o);
    for (const o of [
      'https://exact.example.evil',
      'http://pre.x',
      'https://rx.example',
      'https://r1.example.com',
      'null',
    ])
      assert.equal(originAllowed(p, o), false, o);
  });

  it('reads a matcher that accepts "*" as allowing every origin, as Envoy does', () => {
    const p = compileCorsPolicy({ allow_origin_string_match: [{ exact: '*' }] }, 'p');
    assert.equal(p.anyOrigin, true);
    assert.equal(originAllowed(p, 'https://whatever.example'), true);
  });

  it('rejects what Weft does not implement, naming the field', () => {
    rejects({ allow_private_network_access: true }, 'p.allow_private_network_access: not supported by Weft');
    rejects(
      { filter_enabled: { default_value: { numerator: 50, denominator: 'HUNDRED' } } },
      'p.filter_enabled.default_value: only 100% is supported by Weft',
    );
    rejects(
      { shadow_enabled: { default_value: { numerator: 0 } } },
      'p.shadow_enabled.default_value: only 100% is supported by Weft',
    );
    rejects({ filter_enabled: {} }, 'p.filter_enabled.default_value: required');
    rejects(
      { filter_enabled: { default_value: { numerator: 100 }, runtime_key: 'cors.on' } },
      'p.filter_enabled.runtime_key: not supported by Weft',
    );
    rejects(
      { filter_enabled: { default_value: { numerator: 100, denominator: 'PERCENT' } } },
      'p.filter_enabled.default_value.denominator: unknown value "PERCENT"',
    );
  });

  it('rejects malformed fields with their path', () => {
    rejects({ allow_origin_string_match: [{ exact: 'a' }, {}] }, 'p.allow_origin_string_match[1]: one of');
    rejects(
      { allow_origin_string_match: [{ exact: 'a', prefix: 'b' }] },
      'p.allow_origin_string_match[0].prefix',
    );
    rejects({ allow_methods: 'GET\r\nx-evil: 1' }, 'p.allow_methods: must not contain control characters');
    rejects({ max_age: '10m' }, 'p.max_age: must be a number of seconds');
    rejects({ allow_credentials: 'yes' }, 'p.allow_credentials: expected true or false');
    rejects({ allow_origin: ['*'] }, 'p.allow_origin: unknown field');
  });

  it('accepts only an empty filter-level Cors message', () => {
    compileCors({ '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' }, 'f');
    compileCors(undefined, 'f');
    assert.throws(() => compileCors({ allow_methods: 'GET' }, 'f'), /f\.allow_methods: unknown field/);
  });
});
