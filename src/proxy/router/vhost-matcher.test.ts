import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { portStart, VirtualHostIndex } from './vhost-matcher.ts';

function index(domains: Record<string, string[]>, ignorePort = false): VirtualHostIndex<string> {
  const idx = new VirtualHostIndex<string>(ignorePort);
  for (const [vhost, list] of Object.entries(domains))
    list.forEach((d, i) => idx.add(d, vhost, vhost, `vh.${vhost}.domains[${i}]`));
  return idx;
}

describe('VirtualHostIndex: Envoy domain precedence', () => {
  const idx = index({
    exact: ['www.foo.com'],
    suffixShort: ['*.foo.com'],
    suffixLong: ['*-bar.foo.com'],
    prefixShort: ['www.*'],
    prefixLong: ['www.foo.*'],
    any: ['*'],
  });

  it('prefers exact, then the longest suffix wildcard, then the longest prefix wildcard, then *', () => {
    assert.equal(idx.find('www.foo.com'), 'exact');
    assert.equal(idx.find('baz-bar.foo.com'), 'suffixLong');
    assert.equal(idx.find('baz.foo.com'), 'suffixShort');
    assert.equal(idx.find('www.foo.org'), 'prefixLong');
    assert.equal(idx.find('www.bar.org'), 'prefixShort');
    assert.equal(idx.find('other.org'), 'any');
  });

  it('ranks any suffix wildcard above a longer prefix wildcard', () => {
    const both = index({ suffix: ['*.com'], prefix: ['www.foo.*'] });
    assert.equal(both.find('www.foo.com'), 'suffix');
  });

  it('never lets a wildcard match the empty string', () => {
    assert.equal(idx.find('.foo.com'), 'any');
    assert.equal(idx.find('-bar.foo.com'), 'suffixShort', '*-bar.foo.com needs a character before -bar');
    assert.equal(idx.find('www.'), 'any');
  });

  it('compares case-insensitively', () => {
    assert.equal(idx.find('WWW.Foo.COM'), 'exact');
    assert.equal(index({ a: ['API.Example.com'] }).find('api.example.COM'), 'a');
    assert.equal(idx.find('X-BAR.FOO.COM'), 'suffixLong');
  });

  it('returns undefined without a catch-all, and the catch-all alone for any authority', () => {
    assert.equal(index({ a: ['a.com'] }).find('b.com'), undefined);
    const onlyAny = index({ any: ['*'] });
    assert.equal(onlyAny.find(''), 'any');
    assert.equal(onlyAny.find('whatever:1234'), 'any');
  });
});

describe('VirtualHostIndex: ports', () => {
  it('matches host:port as received by default (Envoy does not strip the port)', () => {
    const idx = index({ plain: ['foo.com'], withPort: ['foo.com:8080'], prefix: ['bar.*'] });
    assert.equal(idx.find('foo.com'), 'plain');
    assert.equal(idx.find('foo.com:8080'), 'withPort');
    assert.equal(idx.find('foo.com:9090'), undefined, 'no fallback to the port-less domain');
    assert.equal(idx.find('bar.com:9090'), 'prefix', 'a prefix wildcard covers the port');
  });

  it('strips the port before matching with ignore_port_in_host_matching', () => {
    const idx = index({ plain: ['foo.com'], v6: ['[::1]'], suffix: ['*.bar.com'] }, true);
    assert.equal(idx.find('foo.com:9090'), 'plain');
    assert.equal(idx.find('[::1]:8080'), 'v6');
    assert.equal(idx.find('[::1]'), 'v6');
    assert.equal(idx.find('x.bar.com:1'), 'suffix');
  });

  it('finds the port start like Envoy (IPv6 brackets respected)', () => {
    assert.equal(portStart('a.com:80'), 5);
    assert.equal(portStart('a.com'), -1);
    assert.equal(portStart('[::1]'), -1);
    assert.equal(portStart('[::1]:443'), 5);
  });
});

describe('VirtualHostIndex: duplicates', () => {
  const duplicate = (domains: Record<string, string[]>, path: string): void => {
    assert.throws(
      () => index(domains),
      (err: unknown) =>
        err instanceof ConfigError && err.path === path && /duplicate domain/.test(err.detail),
    );
  };

  it('rejects a domain used twice, across virtual hosts or within one, ignoring case', () => {
    duplicate({ a: ['foo.com'], b: ['bar.com', 'FOO.com'] }, 'vh.b.domains[1]');
    duplicate({ a: ['foo.com', 'foo.com'] }, 'vh.a.domains[1]');
    duplicate({ a: ['*.foo.com'], b: ['*.FOO.com'] }, 'vh.b.domains[0]');
    duplicate({ a: ['foo.*'], b: ['foo.*'] }, 'vh.b.domains[0]');
    duplicate({ a: ['*'], b: ['*'] }, 'vh.b.domains[0]');
  });

  it('allows the same text as an exact domain and as part of a wildcard', () => {
    const idx = index({ a: ['foo.com'], b: ['*foo.com'], c: ['foo.com*'] });
    assert.equal(idx.find('foo.com'), 'a');
    assert.equal(idx.find('xfoo.com'), 'b');
    assert.equal(idx.find('foo.comx'), 'c');
  });
});
