import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { compileRouteConfiguration } from './compile.ts';
import { compileMirrorPolicies, mirrorHits, shadowAuthority } from './mirror-policy.ts';
import type { MirrorPolicy } from './mirror-policy.ts';
import { request } from './test-helpers.ts';

function policies(list: unknown[]): readonly MirrorPolicy[] | undefined {
  return compileMirrorPolicies({ request_mirror_policies: list as JsonObject[] }, 'r.route');
}

function fails(list: unknown[], message: string): void {
  assert.throws(
    () => policies(list),
    (err: unknown) => err instanceof ConfigError && err.message === message,
    message,
  );
}

describe('request_mirror_policies compilation', () => {
  it('compiles several policies, with 100% when runtime_fraction is absent', () => {
    const p = policies([
      { cluster: 'a' },
      {
        cluster: 'b',
        runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } },
        trace_sampled: true,
        disable_shadow_host_suffix_append: true,
      },
      { cluster: 'c', runtime_fraction: { default_value: { numerator: 7 } } },
    ]);
    assert.deepEqual(p, [
      { cluster: 'a', numerator: 1, denominator: 1, keepHost: false },
      { cluster: 'b', numerator: 250000, denominator: 1_000_000, keepHost: true },
      { cluster: 'c', numerator: 7, denominator: 100, keepHost: false },
    ]);
    assert.equal(policies([]), undefined);
    assert.equal(compileMirrorPolicies({}, 'x'), undefined);
  });

  it('caps a numerator above its denominator', () => {
    const p = policies([
      { cluster: 'a', runtime_fraction: { default_value: { numerator: 500, denominator: 'HUNDRED' } } },
    ]);
    assert.equal(p?.[0].numerator, 100);
  });

  it('rejects what Weft does not implement, naming the field', () => {
    fails(
      [{ cluster: 'a' }, { cluster_header: 'x-m' }],
      'r.route.request_mirror_policies[1].cluster_header: not supported by Weft',
    );
    fails(
      [{ cluster: 'a', runtime_fraction: { runtime_key: 'k', default_value: { numerator: 1 } } }],
      'r.route.request_mirror_policies[0].runtime_fraction.runtime_key: not supported by Weft',
    );
    fails([{ cluster: 'a', bogus: 1 }], 'r.route.request_mirror_policies[0].bogus: unknown field');
    fails([{}], 'r.route.request_mirror_policies[0].cluster: required');
    fails(
      [{ cluster: 'a', runtime_fraction: {} }],
      'r.route.request_mirror_policies[0].runtime_fraction.default_value: required',
    );
    fails(
      [{ cluster: 'a', runtime_fraction: { default_value: { numerator: 1, denominator: 'BILLION' } } }],
      'r.route.request_mirror_policies[0].runtime_fraction.default_value.denominator: unknown value "BILLION" (HUNDRED, TEN_THOUSAND or MILLION)',
    );
    fails(
      [{ cluster: 'a', runtime_fraction: { default_value: { numerator: -1 } } }],
      'r.route.request_mirror_policies[0].runtime_fraction.default_value.numerator: must be an integer from 0 to 4294967295',
    );
  });
});

describe('mirror fraction', () => {
  const of = (numerator: number, denominator: number): MirrorPolicy => ({
    cluster: 'm',
    numerator,
    denominator,
    keepHost: false,
  });

  it('hits exactly numerator out of denominator evenly spread draws', () => {
    for (const [n, d] of [
      [0, 100],
      [1, 100],
      [50, 100],
      [99, 100],
      [100, 100],
      [1234, 10_000],
      [500_000, 1_000_000],
    ]) {
      let hits = 0;
      for (let i = 0; i < d; i++) if (mirrorHits(of(n, d), i / d)) hits++;
      assert.equal(hits, n, `${n}/${d}`);
    }
  });

  it('always hits at 100% and never at 0%, at the edges of [0, 1)', () => {
    assert.equal(mirrorHits(of(1, 1), 0.9999999), true);
    assert.equal(mirrorHits(of(100, 100), 0.9999999), true);
    assert.equal(mirrorHits(of(0, 100), 0), false);
    assert.equal(mirrorHits(of(1, 1_000_000), 0), true);
    assert.equal(mirrorHits(of(1, 1_000_000), 0.000001), false);
  });
});

describe('shadow authority', () => {
  it('appends -shadow to the host part, before any port', () => {
    assert.equal(shadowAuthority('reviews'), 'reviews-shadow');
    assert.equal(
      shadowAuthority('reviews.ns.svc.cluster.local:9080'),
      'reviews.ns.svc.cluster.local-shadow:9080',
    );
    assert.equal(shadowAuthority('10.0.0.1:80'), '10.0.0.1-shadow:80');
    assert.equal(shadowAuthority('[::1]:8080'), '[::1]-shadow:8080');
    assert.equal(shadowAuthority('[2001:db8::1]'), '[2001:db8::1]-shadow');
    assert.equal(shadowAuthority('2001:db8::1'), '2001:db8::1-shadow');
    assert.equal(shadowAuthority(''), '-shadow');
  });
});

describe('mirror policies in a route configuration', () => {
  const mirrorsOf = (
    config: JsonObject,
    authority = 'example.com',
    path = '/',
  ): readonly string[] | undefined => {
    const m = compileRouteConfiguration(config, 'rc').match(request({ authority, path }));
    assert.ok(m && m.route.action.kind === 'route');
    return m.route.action.mirrorPolicies?.map((p) => p.cluster);
  };

  it('uses the most specific level that sets any: route, else virtual host, else route configuration', () => {
    const config: JsonObject = {
      name: 'rc',
      request_mirror_policies: [{ cluster: 'from-config' }],
      virtual_hosts: [
        {
          name: 'a',
          domains: ['a.example'],
          request_mirror_policies: [{ cluster: 'from-vhost' }],
          routes: [
            {
              match: { prefix: '/r' },
              route: { cluster: 'c', request_mirror_policies: [{ cluster: 'x' }, { cluster: 'y' }] },
            },
            { match: { prefix: '/' }, route: { cluster: 'c' } },
          ],
        },
        { name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] },
      ],
    };
    assert.deepEqual(mirrorsOf(config, 'a.example', '/r'), ['x', 'y']);
    assert.deepEqual(mirrorsOf(config, 'a.example'), ['from-vhost']);
    assert.deepEqual(mirrorsOf(config), ['from-config']);
    assert.equal(
      mirrorsOf({
        name: 'rc',
        virtual_hosts: [
          { name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] },
        ],
      }),
      undefined,
    );
  });

  it('names the virtual host field in errors', () => {
    assert.throws(
      () =>
        compileRouteConfiguration(
          {
            name: 'rc',
            virtual_hosts: [
              { name: 'a', domains: ['*'], routes: [], request_mirror_policies: [{ cluster_header: 'h' }] },
            ],
          },
          'rc',
        ),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message ===
          'rc.virtual_hosts[0].request_mirror_policies[0].cluster_header: not supported by Weft',
    );
  });
});
