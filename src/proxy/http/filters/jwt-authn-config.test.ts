import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { JsonObject } from '../../../core/json.ts';
import { compileJwtAuthn } from './jwt-authn-config.ts';

const JWKS = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'k' }] });

function provider(extra: JsonObject = {}): JsonObject {
  return { issuer: 'https://i.example', local_jwks: { inline_string: JWKS }, ...extra };
}

function refuses(json: JsonObject, field: string, detail: RegExp): void {
  assert.throws(
    () => compileJwtAuthn(json, 'jwt'),
    (e: unknown) => e instanceof ConfigError && e.message.includes(field) && detail.test(e.message),
  );
}

describe('compileJwtAuthn', () => {
  it('defaults: Authorization Bearer and access_token, clock skew 60 s, token removed', () => {
    const cfg = compileJwtAuthn({ providers: { p: provider() } }, 'jwt');
    const p = cfg.providers.get('p')!;
    assert.deepEqual(p.locations, [
      { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
      { kind: 'param', name: 'access_token' },
    ]);
    assert.equal(p.clockSkewSeconds, 60);
    assert.equal(p.forward, false);
    assert.equal(p.jwks.keys.length, 1);
  });

  it('reads explicit locations, lower-casing header names', () => {
    const cfg = compileJwtAuthn(
      {
        providers: {
          p: provider({
            from_headers: [{ name: 'X-Token', value_prefix: 'Token ' }],
            from_params: ['jwt'],
            from_cookies: ['session'],
          }),
        },
      },
      'jwt',
    );
    assert.deepEqual(cfg.providers.get('p')!.locations, [
      { kind: 'header', name: 'x-token', prefix: 'Token ' },
      { kind: 'param', name: 'jwt' },
      { kind: 'cookie', name: 'session' },
    ]);
  });

  it('reads local_jwks from a file', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'weft-jwks-')), 'jwks.json');
    writeFileSync(file, JWKS);
    const cfg = compileJwtAuthn({ providers: { p: provider({ local_jwks: { filename: file } }) } }, 'jwt');
    assert.equal(cfg.providers.get('p')!.jwks.keys[0].kid, 'k');
  });

  it('refuses remote_jwks, saying the control plane inlines keys', () => {
    refuses(
      { providers: { p: { issuer: 'i', remote_jwks: { http_uri: { uri: 'https://x' } } } } },
      'jwt.providers.p.remote_jwks',
      /control plane inlines the JWKS/,
    );
  });

  it('refuses a JWKS that is not one, and a provider without keys', () => {
    refuses(
      { providers: { p: provider({ local_jwks: { inline_string: '{' } }) } },
      'local_jwks',
      /JSON Web Key Set/,
    );
    refuses(
      { providers: { p: provider({ local_jwks: { inline_string: '{"k":1}' } }) } },
      'local_jwks',
      /keys/,
    );
    refuses({ providers: { p: { issuer: 'i' } } }, 'jwt.providers.p.local_jwks', /required/);
  });

  it('refuses requirements naming unknown providers, short lists and two kinds at once', () => {
    const providers = { p: provider() };
    refuses(
      { providers, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'q' } }] },
      'jwt.rules[0].requires.provider_name',
      /no provider/,
    );
    refuses(
      {
        providers,
        rules: [
          { match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'p' }] } } },
        ],
      },
      'requires_any.requirements',
      /at least 2/,
    );
    refuses(
      { providers, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p', allow_missing: {} } }] },
      'requires.allow_missing',
      /only one/,
    );
    refuses({ providers, rules: [{ requires: { provider_name: 'p' } }] }, 'jwt.rules[0].match', /required/);
  });

  it('resolves requirement_name through requirement_map', () => {
    const cfg = compileJwtAuthn(
      {
        providers: { p: provider() },
        requirement_map: { r: { provider_name: 'p' } },
        rules: [{ match: { path: '/x' }, requirement_name: 'r' }],
      },
      'jwt',
    );
    assert.equal(cfg.rules[0].requires?.kind, 'provider');
    refuses(
      { providers: { p: provider() }, rules: [{ match: { path: '/x' }, requirement_name: 'nope' }] },
      'requirement_name',
      /requirement_map/,
    );
  });

  it('refuses fields Weft does not implement, and unknown ones', () => {
    refuses(
      { providers: { p: provider({ subjects: { exact: 'a' } }) } },
      'jwt.providers.p.subjects',
      /not supported by Weft/,
    );
    refuses({ filter_state_rules: { name: 'x' } }, 'jwt.filter_state_rules', /not supported by Weft/);
    refuses({ providers: { p: provider({ bogus: 1 }) } }, 'jwt.providers.p.bogus', /unknown field/);
  });

  it('refuses invalid header names', () => {
    refuses(
      { providers: { p: provider({ forward_payload_header: 'bad header' }) } },
      'forward_payload_header',
      /header name/,
    );
    refuses(
      { providers: { p: provider({ claim_to_headers: [{ header_name: 'x:y', claim_name: 'sub' }] }) } },
      'claim_to_headers[0].header_name',
      /header name/,
    );
  });
});
