/**
 * envoy.config.route.v3.HeaderMatcher, compiled with Envoy's semantics:
 * - the value is all of the header's values joined with ",";
 * - a missing header never matches, whatever `invert_match` says, unless `treat_missing_header_as_empty`
 *   (then the value is "") — except `present_match`, which is `(present == header present) != invert`;
 * - no match specifier means `present_match: true`; a deprecated `exact_match: ""` matches any value.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, optBool, optNumber, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileRegexMatcher } from './regex.ts';
import { RequestHeader } from './request-header.ts';
import { compileStringMatcher, StringMatcher } from './string-matcher.ts';
import { toWire } from './strings.ts';
import type { RouteRequest } from './types.ts';

const SPECIFIERS = [
  'exact_match',
  'safe_regex_match',
  'range_match',
  'present_match',
  'prefix_match',
  'suffix_match',
  'contains_match',
  'string_match',
] as const;

/** absl::SimpleAtoi for int64: optional surrounding ASCII whitespace, optional sign, decimal digits. */
function parseInt64(s: string): bigint | number | undefined {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  let i = start;
  const sign = s.charCodeAt(i);
  if (sign === 43 /* + */ || sign === 45 /* - */) i++;
  if (i === end) return undefined;
  for (let j = i; j < end; j++) {
    const c = s.charCodeAt(j);
    if (c < 48 || c > 57) return undefined;
  }
  // Up to 15 digits is exact as a double; longer values go through BigInt (and the int64 range check).
  if (end - i <= 15) return Number(s.slice(start, end));
  const big = BigInt(s.slice(start, end));
  if (big < -(2n ** 63n) || big > 2n ** 63n - 1n) return undefined;
  return big;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

export class HeaderMatcher {
  private readonly header: RequestHeader;
  private readonly invert: boolean;
  private readonly missingAsEmpty: boolean;
  /** Set for present_match (and for the no-specifier default). */
  private readonly present: boolean | undefined;
  private readonly matcher: StringMatcher | undefined;
  /** Set for the deprecated `exact_match: ""`, which matches any value. */
  private readonly anyValue: boolean;
  private readonly range: { readonly start: number; readonly end: number } | undefined;

  constructor(init: {
    name: string;
    invert: boolean;
    missingAsEmpty: boolean;
    present?: boolean;
    matcher?: StringMatcher;
    anyValue?: boolean;
    range?: { start: number; end: number };
  }) {
    this.header = new RequestHeader(init.name);
    this.invert = init.invert;
    this.missingAsEmpty = init.missingAsEmpty;
    this.present = init.present;
    this.matcher = init.matcher;
    this.anyValue = init.anyValue ?? false;
    this.range = init.range;
  }

  matches(req: RouteRequest): boolean {
    const value = this.header.get(req);
    if (this.present !== undefined) return ((value !== undefined) === this.present) !== this.invert;
    if (value === undefined && !this.missingAsEmpty) return false;
    return this.matchesValue(value ?? '') !== this.invert;
  }

  private matchesValue(value: string): boolean {
    if (this.anyValue) return true;
    if (this.matcher !== undefined) return this.matcher.matches(value);
    const r = this.range!;
    const n = parseInt64(value);
    if (n === undefined) return false;
    return typeof n === 'number' ? n >= r.start && n < r.end : n >= BigInt(r.start) && n < BigInt(r.end);
  }
}

function nonEmpty(obj: Record<string, Json>, key: string, path: string): string {
  const v = optString(obj, key, path) ?? '';
  if (v === '') throw new ConfigError(fieldPath(path, key), 'must not be empty (use present_match)');
  return toWire(v);
}

export function compileHeaderMatcher(json: Json | undefined, path: string): HeaderMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['name', ...SPECIFIERS, 'invert_match', 'treat_missing_header_as_empty'],
    refused: {},
  });
  const name = optString(obj, 'name', path);
  if (!name) throw new ConfigError(fieldPath(path, 'name'), 'required');
  const set = SPECIFIERS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length > 1)
    throw new ConfigError(
      fieldPath(path, set[1]),
      `conflicts with "${set[0]}": only one match specifier may be set`,
    );
  const base = {
    name,
    invert: optBool(obj, 'invert_match', path) ?? false,
    missingAsEmpty: optBool(obj, 'treat_missing_header_as_empty', path) ?? false,
  };
  switch (set[0]) {
    case undefined:
      return new HeaderMatcher({ ...base, present: true });
    case 'present_match':
      return new HeaderMatcher({ ...base, present: optBool(obj, 'present_match', path) });
    case 'exact_match': {
      const v = toWire(optString(obj, 'exact_match', path) ?? '');
      return new HeaderMatcher(
        v === '' ? { ...base, anyValue: true } : { ...base, matcher: new StringMatcher('exact', v, false) },
      );
    }
    case 'prefix_match':
      return new HeaderMatcher({
        ...base,
        matcher: new StringMatcher('prefix', nonEmpty(obj, 'prefix_match', path), false),
      });
    case 'suffix_match':
      return new HeaderMatcher({
        ...base,
        matcher: new StringMatcher('suffix', nonEmpty(obj, 'suffix_match', path), false),
      });
    case 'contains_match':
      return new HeaderMatcher({
        ...base,
        matcher: new StringMatcher('contains', nonEmpty(obj, 'contains_match', path), false),
      });
    case 'safe_regex_match': {
      const regex = compileRegexMatcher(obj.safe_regex_match, fieldPath(path, 'safe_regex_match'));
      return new HeaderMatcher({ ...base, matcher: new StringMatcher('regex', '', false, regex) });
    }
    case 'string_match':
      return new HeaderMatcher({
        ...base,
        matcher: compileStringMatcher(obj.string_match, fieldPath(path, 'string_match')),
      });
    case 'range_match': {
      const rangePath = fieldPath(path, 'range_match');
      const range = optObject(obj, 'range_match', path)!;
      checkFields(range, rangePath, { supported: ['start', 'end'], refused: {} });
      const start = optNumber(range, 'start', rangePath) ?? 0;
      const end = optNumber(range, 'end', rangePath) ?? 0;
      if (!Number.isInteger(start) || !Number.isInteger(end))
        throw new ConfigError(rangePath, 'start and end must be integers');
      return new HeaderMatcher({ ...base, range: { start, end } });
    }
  }
}
