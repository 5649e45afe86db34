/**
 * envoy.type.matcher.v3.StringMatcher, compiled. Matching works on a range of a string so callers can
 * test a path without its query, or a query value in place, without slicing.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, optBool, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileRegexMatcher } from './regex.ts';
import type { Re2Regex } from './regex.ts';
import { asciiLower, containsIgnoreCase, regionEqualsIgnoreCase, toWire } from './strings.ts';

export type StringMatchKind = 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex';

export class StringMatcher {
  readonly kind: StringMatchKind;
  /** The configured text in wire form; lower-cased when `ignoreCase`. Empty for regex. */
  readonly text: string;
  readonly ignoreCase: boolean;
  readonly regex: Re2Regex | undefined;

  constructor(kind: StringMatchKind, text: string, ignoreCase: boolean, regex?: Re2Regex) {
    this.kind = kind;
    this.ignoreCase = ignoreCase && kind !== 'regex';
    this.text = this.ignoreCase ? asciiLower(text) : text;
    this.regex = regex;
  }

  matches(s: string): boolean {
    return this.matchesRange(s, 0, s.length);
  }

  /** Whether `s[start, end)` matches. */
  matchesRange(s: string, start: number, end: number): boolean {
    const t = this.text;
    const len = end - start;
    switch (this.kind) {
      case 'exact':
        if (len !== t.length) return false;
        return this.ignoreCase ? regionEqualsIgnoreCase(s, start, t) : s.startsWith(t, start);
      case 'prefix':
        if (len < t.length) return false;
        return this.ignoreCase ? regionEqualsIgnoreCase(s, start, t) : s.startsWith(t, start);
      case 'suffix':
        if (len < t.length) return false;
        return this.ignoreCase
          ? regionEqualsIgnoreCase(s, end - t.length, t)
          : s.startsWith(t, end - t.length);
      case 'contains': {
        if (this.ignoreCase) return containsIgnoreCase(s, start, end, t);
        const at = s.indexOf(t, start);
        return at >= 0 && at + t.length <= end;
      }
      case 'regex':
        return this.regex!.full.test(start === 0 && end === s.length ? s : s.slice(start, end));
    }
  }
}

const KINDS = ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'] as const;

/** Compiles a StringMatcher message. `custom` (extension matchers) is refused. */
export function compileStringMatcher(json: Json | undefined, path: string): StringMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: [...KINDS, 'ignore_case'], refused: { custom: null } });
  const set = KINDS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0)
    throw new ConfigError(path, 'one of exact, prefix, suffix, contains or safe_regex is required');
  if (set.length > 1)
    throw new ConfigError(
      fieldPath(path, set[1]),
      `conflicts with "${set[0]}": only one match pattern may be set`,
    );
  const kind = set[0];
  const ignoreCase = optBool(obj, 'ignore_case', path) ?? false;
  if (kind === 'safe_regex')
    return new StringMatcher(
      'regex',
      '',
      false,
      compileRegexMatcher(obj.safe_regex, fieldPath(path, 'safe_regex')),
    );
  const text = optString(obj, kind, path) ?? '';
  if (kind !== 'exact' && text === '') throw new ConfigError(fieldPath(path, kind), 'must not be empty');
  return new StringMatcher(kind, toWire(text), ignoreCase);
}
