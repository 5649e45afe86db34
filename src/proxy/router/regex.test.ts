import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { compileRe2, compileRegexRewrite, compileSubstitution, replaceAll } from './regex.ts';

function full(pattern: string, input: string): boolean {
  return compileRe2(pattern, 'p').full.test(input);
}

function refused(pattern: string, detail: RegExp): void {
  assert.throws(
    () => compileRe2(pattern, 'route.match.safe_regex.regex'),
    (err: unknown) =>
      err instanceof ConfigError && err.path === 'route.match.safe_regex.regex' && detail.test(err.detail),
    pattern,
  );
}

describe('compileRe2: RE2 semantics in JavaScript', () => {
  it('matches the whole input (FullMatch)', () => {
    assert.equal(full('/api/v[0-9]+', '/api/v12'), true);
    assert.equal(full('/api/v[0-9]+', '/api/v12/x'), false);
    assert.equal(full('a|ab', 'ab'), true, 'alternation is inside the anchors');
  });

  it('supports (?i) for the rest of the group, across alternatives, and (?i:...) groups', () => {
    assert.equal(full('(?i)/xxx/', '/XxX/'), true);
    assert.equal(full('a(?i)b|c', 'aB'), true);
    assert.equal(full('a(?i)b|c', 'C'), true);
    assert.equal(full('a(?i)b|c', 'AB'), false, 'the a before (?i) stays case-sensitive');
    assert.equal(full('(?i:a)b', 'Ab'), true);
    assert.equal(full('(?i:a)b', 'AB'), false);
    assert.equal(full('(?i)[a-c]+', 'AbC'), true);
  });

  it('keeps RE2 meanings for ., \\s, ^/$ under (?m) and (?s), \\A and \\z', () => {
    assert.equal(full('.', '\n'), false);
    assert.equal(full('.', '\r'), true, 'RE2 . excludes only \\n');
    assert.equal(full('(?s).', '\n'), true);
    assert.equal(full('\\s', '\v'), false, 'RE2 \\s has no \\v');
    assert.equal(full('\\S', '\v'), true);
    assert.equal(full('\\s+', ' \t\r\n\f'), true);
    assert.equal(full('(?m)a$\\n^b', 'a\nb'), true);
    assert.equal(full('a$\\nb', 'a\nb'), false, 'without m, $ is the end of text only');
    assert.equal(full('\\Aab\\z', 'ab'), true);
  });

  it('translates RE2-only syntax: named groups, POSIX classes, \\Q..\\E, \\x{..}, octal', () => {
    assert.equal(full('(?P<ver>v\\d+)/(?<rest>.*)', 'v1/x'), true);
    assert.equal(full('[[:alpha:]]+[[:digit:]]', 'abc1'), true);
    assert.equal(full('[[:^alpha:]]', '1'), true);
    assert.equal(full('\\Qa.b*\\E', 'a.b*'), true);
    assert.equal(full('\\Qa.b*\\E', 'axbb'), false);
    assert.equal(full('\\x{41}\\x42\\103', 'ABC'), true);
    assert.equal(full('[^\\D]', '7'), true);
    assert.equal(full('a{2,3}', 'aaa'), true);
    assert.equal(full('a{2,3}', 'aaaa'), false);
    assert.equal(full('a{,2}', 'a{,2}'), true, 'a brace that is not a repetition is a literal');
  });

  it('matches a non-ASCII literal against its UTF-8 bytes as Node decodes headers (latin1)', () => {
    const latin1 = Buffer.from('/café', 'utf8').toString('latin1');
    assert.equal(full('/café', latin1), true);
    assert.equal(full('/café', '/café'), false);
  });

  it('counts capture groups (named ones included, non-capturing ones not)', () => {
    assert.equal(compileRe2('(a)(?:b)(?P<c>c)((?i)d)', 'p').groups, 3);
  });

  it('refuses what RE2 refuses', () => {
    refused('a(?=b)', /look-around/);
    refused('(?<!a)b', /look-around/);
    refused('(a)\\1', /back-references/);
    refused('a**', /bad repetition/);
    refused('*a', /missing argument/);
    refused('a{1001}', /above 1000/);
    refused('a{3,2}', /bad repetition/);
    refused('(a', /missing "\)"/);
    refused('a)', /unexpected "\)"/);
    refused('[a', /missing "\]"/);
    refused('\\y', /invalid escape/);
    refused('a*+', /possessive/);
    refused('(?P<n>a)(?P<n>b)', /duplicate/);
  });

  it('refuses what JavaScript cannot express the same way', () => {
    refused('\\pL', /Unicode character classes/);
    refused('[é]', /non-ASCII/);
    refused('\\C', /any byte/);
  });

  it('refuses shapes that backtrack exponentially in V8', () => {
    refused('(a+)+', /nested repetition/);
    refused('(a*)*b', /nested repetition/);
    refused('(\\w+\\s?)+$', /nested repetition/);
    refused('(a|aa)*', /same character/);
    refused('(a|)*', /empty string/);
  });

  it('accepts nested repetition whose iterations are delimited, and it stays fast on hostile input', () => {
    const segments = compileRe2('(?:/[^/]+)*', 'p');
    const ip = compileRe2('(\\d+\\.){3}\\d+', 'p');
    assert.equal(ip.full.test('10.0.0.1'), true);
    const hostile = '/' + 'a'.repeat(50_000) + '/'.repeat(2);
    const started = performance.now();
    assert.equal(segments.full.test(hostile), false);
    assert.equal(ip.full.test('1.'.repeat(20_000) + 'x'), false);
    assert.ok(performance.now() - started < 1000, 'linear-time shapes finish quickly');
  });
});

describe('substitutions and GlobalReplace', () => {
  const rewrite = (pattern: string, sub: string, input: string): string => {
    const re = compileRe2(pattern, 'p');
    return replaceAll(re, input, compileSubstitution(sub, re.groups, 's'));
  };

  it('reproduces the examples of Envoy regex_rewrite documentation', () => {
    assert.equal(
      rewrite('^/service/([^/]+)(/.*)$', '\\2/instance/\\1', '/service/foo/v1/api'),
      '/v1/api/instance/foo',
    );
    assert.equal(rewrite('one', 'two', '/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/two/zzz');
    assert.equal(rewrite('^(.*?)one(.*)$', '\\1two\\2', '/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/one/zzz');
    assert.equal(rewrite('(?i)/xxx/', '/yyy/', '/aaa/XxX/bbb'), '/aaa/yyy/bbb');
  });

  it('inserts \\0 (whole match), \\\\ (backslash), and leaves $ literal', () => {
    assert.equal(rewrite('b+', '[\\0]', 'abbc'), 'a[bb]c');
    assert.equal(rewrite('b', '\\\\', 'abc'), 'a\\c');
    assert.equal(rewrite('b', '$1$&', 'abc'), 'a$1$&c');
  });

  it('skips an empty match right after the previous match, as RE2 does', () => {
    assert.equal(rewrite('x*', '-', 'xaxbx'), '-a-b-');
    assert.equal(rewrite('x*', '-', 'abc'), '-a-b-c-');
  });

  it('rejects references to missing groups and bad escapes', () => {
    assert.throws(() => compileSubstitution('\\2', 1, 'r.substitution'), /r\.substitution: .*group \\2/);
    assert.throws(
      () => compileSubstitution('\\n', 1, 'r.substitution'),
      /r\.substitution: invalid substitution/,
    );
  });

  it('compiles a RegexMatchAndSubstitute message with exact error paths', () => {
    const { regex, substitution } = compileRegexRewrite(
      { pattern: { regex: '^/a/(.*)$' }, substitution: '/b/\\1' },
      'x.regex_rewrite',
    );
    assert.equal(replaceAll(regex, '/a/c', substitution), '/b/c');
    assert.throws(
      () => compileRegexRewrite({ substitution: 'x' }, 'x.regex_rewrite'),
      /^ConfigError: x\.regex_rewrite\.pattern: required$/,
    );
    assert.throws(
      () => compileRegexRewrite({ pattern: { regex: '(' } }, 'x.regex_rewrite'),
      /x\.regex_rewrite\.pattern\.regex: invalid RE2 pattern/,
    );
  });
});
