/**
 * Telemetry accessLogging[].filter.expression is CEL; Weft translates the small subset that Envoy's native
 * access log filters can express, and refuses anything else (the Telemetry is then reported and ignored):
 *   response.code OP N            (OP: == != < <= > >=)      → status_code_filter (or an or_filter for !=)
 *   response.flags != '-'         (a response flag is set)   → response_flag_filter
 *   request.headers['x'] == 'y'   (or !=)                    → header_filter (exact match, inverted for !=)
 *   A && B, A || B, (A)                                      → and_filter / or_filter
 */
import type { JsonObject } from '../../core/json.ts';

export class CelSubsetError extends Error {}

type Token =
  | { kind: 'ident'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'number'; value: number }
  | { kind: 'op'; text: string };

const TOKEN =
  /\s*(?:(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(&&|\|\||==|!=|<=|>=|<|>|\(|\)|\[|\])|([A-Za-z_][\w.]*))/y;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new CelSubsetError(`unexpected "${text.slice(at).trim().slice(0, 20)}"`);
    if (m[1] !== undefined) out.push({ kind: 'number', value: Number(m[1]) });
    else if (m[2] !== undefined || m[3] !== undefined)
      out.push({ kind: 'string', text: (m[2] ?? m[3]).replace(/\\(.)/g, '$1') });
    else if (m[4] !== undefined) out.push({ kind: 'op', text: m[4] });
    else out.push({ kind: 'ident', text: m[5] });
  }
  return out;
}

const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);

function statusFilter(op: 'EQ' | 'GE' | 'LE', value: number): JsonObject {
  // runtime_key is required by Envoy's proto; nothing overrides it at runtime.
  return {
    status_code_filter: {
      comparison: { op, value: { default_value: value, runtime_key: 'access_log.status_code' } },
    },
  };
}

function statusComparison(op: string, n: number): JsonObject {
  switch (op) {
    case '==':
      return statusFilter('EQ', n);
    case '>=':
      return statusFilter('GE', n);
    case '<=':
      return statusFilter('LE', n);
    case '>':
      return statusFilter('GE', n + 1);
    case '<':
      return statusFilter('LE', n - 1);
    default:
      return { or_filter: { filters: [statusFilter('LE', n - 1), statusFilter('GE', n + 1)] } };
  }
}

class Parser {
  readonly #tokens: Token[];
  #at = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): JsonObject {
    const out = this.#or();
    if (this.#at < this.#tokens.length) throw new CelSubsetError(`unexpected ${this.#describe()}`);
    return out;
  }

  #peekOp(text: string): boolean {
    const t = this.#tokens[this.#at];
    return t?.kind === 'op' && t.text === text;
  }

  #describe(): string {
    const t = this.#tokens[this.#at];
    if (!t) return 'end of expression';
    return t.kind === 'number' ? String(t.value) : `"${t.text}"`;
  }

  #expectOp(text: string): void {
    if (!this.#peekOp(text)) throw new CelSubsetError(`expected "${text}", found ${this.#describe()}`);
    this.#at++;
  }

  #or(): JsonObject {
    const parts = [this.#and()];
    while (this.#peekOp('||')) {
      this.#at++;
      parts.push(this.#and());
    }
    return parts.length === 1 ? parts[0] : { or_filter: { filters: parts } };
  }

  #and(): JsonObject {
    const parts = [this.#term()];
    while (this.#peekOp('&&')) {
      this.#at++;
      parts.push(this.#term());
    }
    return parts.length === 1 ? parts[0] : { and_filter: { filters: parts } };
  }

  #term(): JsonObject {
    if (this.#peekOp('(')) {
      this.#at++;
      const inner = this.#or();
      this.#expectOp(')');
      return inner;
    }
    const t = this.#tokens[this.#at];
    if (t?.kind !== 'ident') throw new CelSubsetError(`unexpected ${this.#describe()}`);
    this.#at++;
    if (t.text === 'request.headers') {
      this.#expectOp('[');
      const name = this.#tokens[this.#at];
      if (name?.kind !== 'string')
        throw new CelSubsetError('request.headers[...] needs a quoted header name');
      this.#at++;
      this.#expectOp(']');
      const op = this.#comparison(['==', '!=']);
      const value = this.#tokens[this.#at++];
      if (value?.kind !== 'string') throw new CelSubsetError('a header is compared with a quoted string');
      return {
        header_filter: {
          header: {
            name: name.text.toLowerCase(),
            string_match: { exact: value.text },
            ...(op === '!=' ? { invert_match: true } : {}),
          },
        },
      };
    }
    if (t.text === 'response.code') {
      const op = this.#comparison([...COMPARISONS]);
      const value = this.#tokens[this.#at++];
      if (value?.kind !== 'number' || value.value > 999)
        throw new CelSubsetError('response.code is compared with a status code');
      return statusComparison(op, value.value);
    }
    if (t.text === 'response.flags') {
      const op = this.#comparison(['!=']);
      const value = this.#tokens[this.#at++];
      if (value?.kind !== 'string' || value.text !== '-' || op !== '!=')
        throw new CelSubsetError(`only response.flags != '-' (any flag set) is supported`);
      return { response_flag_filter: {} };
    }
    throw new CelSubsetError(
      `"${t.text}" is not supported by Weft in access log filters (response.code, response.flags, request.headers[...])`,
    );
  }

  #comparison(allowed: readonly string[]): string {
    const t = this.#tokens[this.#at];
    if (t?.kind !== 'op' || !allowed.includes(t.text))
      throw new CelSubsetError(`expected one of ${allowed.join(' ')}, found ${this.#describe()}`);
    this.#at++;
    return t.text;
  }
}

/** The Envoy AccessLogFilter for a CEL expression of the supported subset; throws CelSubsetError otherwise. */
export function accessLogFilter(expression: string): JsonObject {
  const tokens = tokenize(expression);
  if (tokens.length === 0) throw new CelSubsetError('empty expression');
  return new Parser(tokens).parse();
}
