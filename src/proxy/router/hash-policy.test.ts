import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashString } from '../../core/hash.ts';
import type { Json } from '../../core/json.ts';
import { compileHashPolicy, cookieValue, generatedCookieValue } from './hash-policy.ts';
import type { HashPolicy } from './hash-policy.ts';
import { request } from './test-helpers.ts';

function policy(...items: Json[]): HashPolicy {
  const p = compileHashPolicy(items.map((item, i) => ({ item, path: `route.hash_policy[${i}]` })));
  assert.ok(p);
  return p;
}

const rotl1 = (h: number): number => ((h << 1) | (h >>> 31)) >>> 0;

describe('hash policies', () => {
  it('header: same value → same hash (stickiness); different value → different hash; absent → none', () => {
    const p = policy({ header: { header_name: 'x-user' } });
    const a1 = p.compute(request({ headers: { 'x-user': 'alice' }, sourceIp: '1.1.1.1' }));
    const a2 = p.compute(request({ headers: { 'x-user': 'alice' }, sourceIp: '2.2.2.2', path: '/other' }));
    const b = p.compute(request({ headers: { 'x-user': 'bob' } }));
    assert.deepEqual(a1, { hash: hashString('alice') });
    assert.deepEqual(a2, a1);
    assert.notEqual(b?.hash, a1?.hash);
    assert.equal(p.compute(request()), undefined);
  });

  it('header: repeated values hash the same in any order; pseudo-headers work; regex_rewrite applies first', () => {
    const p = policy({ header: { header_name: 'x-v' } });
    assert.deepEqual(
      p.compute(request({ headers: { 'x-v': ['a', 'b'] } })),
      p.compute(request({ headers: { 'x-v': ['b', 'a'] } })),
    );
    assert.deepEqual(policy({ header: { header_name: ':path' } }).compute(request({ path: '/x' })), {
      hash: hashString('/x'),
    });
    const rw = policy({
      header: {
        header_name: 'x-id',
        regex_rewrite: { pattern: { regex: '^(\\w+)-\\d+$' }, substitution: '\\1' },
      },
    });
    assert.deepEqual(
      rw.compute(request({ headers: { 'x-id': 'shard7-123' } })),
      rw.compute(request({ headers: { 'x-id': 'shard7-999' } })),
    );
  });

  it('connection_properties.source_ip hashes the client IP; source_ip: false adds no policy', () => {
    const p = policy({ connection_properties: { source_ip: true } });
    assert.deepEqual(p.compute(request({ sourceIp: '10.1.2.3' })), { hash: hashString('10.1.2.3') });
    assert.equal(
      compileHashPolicy([{ item: { connection_properties: { source_ip: false } }, path: 'p' }]),
      undefined,
    );
  });

  it('query_parameter hashes the first raw value', () => {
    const p = policy({ query_parameter: { name: 'session' } });
    assert.deepEqual(p.compute(request({ path: '/a?x=1&session=s1&session=s2' })), {
      hash: hashString('s1'),
    });
    assert.equal(p.compute(request({ path: '/a?sessions=1' })), undefined);
  });

  it('combines policies as rotl(previous, 1) ^ next, skipping those without a value', () => {
    const p = policy(
      { header: { header_name: 'a' } },
      { header: { header_name: 'b' } },
      { header: { header_name: 'c' } },
    );
    const req = request({ headers: { a: 'A', c: 'C' } });
    assert.deepEqual(p.compute(req), { hash: (rotl1(hashString('A')) ^ hashString('C')) >>> 0 });
    const dup = policy({ header: { header_name: 'a' } }, { header: { header_name: 'a' } });
    assert.notEqual(dup.compute(req)?.hash, 0, 'duplicate policies do not cancel out');
  });

  it('terminal: stops once a hash exists, falls through while none does', () => {
    const p = policy({ header: { header_name: 'a' }, terminal: true }, { header: { header_name: 'b' } });
    assert.deepEqual(p.compute(request({ headers: { a: 'A', b: 'B' } })), { hash: hashString('A') });
    assert.deepEqual(
      p.compute(request({ headers: { b: 'B' } })),
      { hash: hashString('B') },
      'terminal policy without a value falls through',
    );
    const late = policy(
      { header: { header_name: 'a' } },
      { header: { header_name: 'b' }, terminal: true },
      { header: { header_name: 'c' } },
    );
    // Envoy stops at a terminal policy whenever a hash exists, even one computed by an earlier policy.
    assert.deepEqual(late.compute(request({ headers: { a: 'A', c: 'C' } })), { hash: hashString('A') });
    assert.deepEqual(late.compute(request({ headers: { c: 'C' } })), { hash: hashString('C') });
    assert.deepEqual(late.compute(request({ headers: { a: 'A', b: 'B', c: 'C' } })), {
      hash: (rotl1(hashString('A')) ^ hashString('B')) >>> 0,
    });
  });
});

describe('cookie hash policy', () => {
  it('hashes an existing cookie (quotes stripped, first occurrence)', () => {
    const p = policy({ cookie: { name: 'sticky', ttl: '3600s' } });
    const r = p.compute(request({ headers: { cookie: 'a=1; sticky="v1"; sticky=v2' } }));
    assert.deepEqual(r, { hash: hashString('v1') });
  });

  it('generates a cookie when absent and a ttl is set; the same client gets the same cookie', () => {
    const p = policy({
      cookie: {
        name: 'sticky',
        ttl: '3600s',
        path: '/app',
        attributes: [{ name: 'SameSite', value: 'Lax' }, { name: 'Secure' }],
      },
    });
    const first = p.compute(request({ sourceIp: '10.0.0.9' }));
    const value = generatedCookieValue('10.0.0.9');
    assert.match(value, /^[0-9a-f]{16}$/);
    assert.deepEqual(first, {
      hash: hashString(value),
      setCookie: `sticky="${value}"; Max-Age=3600; Path=/app; SameSite=Lax; Secure; HttpOnly`,
    });
    const next = p.compute(request({ headers: { cookie: `sticky="${value}"` } }));
    assert.deepEqual(
      next,
      { hash: first.hash },
      'the client presenting the cookie lands on the same hash, without a new Set-Cookie',
    );
  });

  it('makes a session cookie for ttl 0, and no cookie or hash without a ttl', () => {
    assert.equal(
      policy({ cookie: { name: 's', ttl: '0s' } })
        .compute(request())
        ?.setCookie?.includes('Max-Age'),
      false,
    );
    assert.equal(policy({ cookie: { name: 's' } }).compute(request()), undefined);
  });

  it('parses cookies like Envoy', () => {
    assert.equal(cookieValue('a=1;b=2', 'b'), '2');
    assert.equal(cookieValue('  a=1', 'a'), '1');
    assert.equal(cookieValue('ab=1; a', 'a'), undefined);
    assert.equal(cookieValue(['x=1', 'a="q"'], 'a'), 'q');
    assert.equal(cookieValue(undefined, 'a'), undefined);
  });
});

describe('hash policy config errors', () => {
  it('names exact paths', () => {
    assert.throws(
      () => policy({}),
      /^ConfigError: route\.hash_policy\[0\]: one of header, cookie, connection_properties or query_parameter is required$/,
    );
    assert.throws(
      () => policy({ header: {} }),
      /^ConfigError: route\.hash_policy\[0\]\.header\.header_name: required$/,
    );
    assert.throws(
      () => policy({ header: { header_name: 'a' } }, { filter_state: { key: 'k' } }),
      /^ConfigError: route\.hash_policy\[1\]\.filter_state: not supported by Weft$/,
    );
    assert.throws(
      () => policy({ cookie: { name: 'a', path: 'x;y' } }),
      /route\.hash_policy\[0\]\.cookie\.path: must not contain/,
    );
  });
});
