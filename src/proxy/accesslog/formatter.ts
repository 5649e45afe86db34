/**
 * Access log formats (Envoy's SubstitutionFormatString): a text format or a JSON dictionary, compiled once
 * into literal pieces and operator readers, so formatting a line is a loop of property reads and string
 * concatenation. Unknown values print `-` in text and null in JSON; with omit_empty_values they print
 * nothing in text and their key is left out in JSON.
 */
import { ConfigError } from '../../core/errors.ts';
import { isObject } from '../../core/json.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import { fieldPath } from '../config-proto/path.ts';
import { compileOperator } from './operators.ts';
import type { LogValue, Operator } from './operators.ts';

/** Envoy's default format, used when an access log gives none. */
export const DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

export interface Formatter {
  formatHttp(stream: HttpStream): string;
  formatTcp(session: TcpSession): string;
}

interface OperatorPart {
  readonly op: Operator;
  /** Envoy's `:N` suffix: strings are cut to N characters (0 = no limit). */
  readonly maxLength: number;
}

type Part = string | OperatorPart;

// %NAME%, %NAME(args)%, %NAME:N%, %NAME(args):N% (args may hold '%', e.g. START_TIME's format).
const COMMAND = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%/y;

/** Splits a format string into literals and compiled operators. */
export function parseFormat(format: string, path: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < format.length;) {
    const c = format[i];
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    COMMAND.lastIndex = i;
    const m = COMMAND.exec(format);
    if (m === null)
      throw new ConfigError(
        path,
        `no valid command operator at position ${i} of ${JSON.stringify(format)} (expected %NAME%, %NAME(arg)% or %NAME(arg):N%)`,
      );
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push({
      op: compileOperator(m[1], m[2], path),
      maxLength: m[3] === undefined ? 0 : Number(m[3]),
    });
    i += m[0].length;
  }
  if (literal !== '') parts.push(literal);
  return parts;
}

function cut(v: string, maxLength: number): string {
  return maxLength > 0 && v.length > maxLength ? v.slice(0, maxLength) : v;
}

function read(p: OperatorPart, s: unknown, tcp: boolean): LogValue {
  return tcp ? p.op.tcp(s as TcpSession) : p.op.http(s as HttpStream);
}

function textOf(v: LogValue, maxLength: number, missing: string): string {
  if (v === null) return missing;
  if (typeof v === 'string') return v === '' ? missing : cut(v, maxLength);
  if (typeof v === 'object') return cut(JSON.stringify(v), maxLength);
  return String(v);
}

/**
 * The pieces of the line being rendered. Joined once, the line is one flat string: concatenating them
 * piece by piece built a rope of ~40 nodes per request that the sink then had to flatten, a third of what the
 * access log allocated. Rendering is synchronous, so one array serves every formatter.
 */
const pieces: string[] = [];

function renderText(parts: readonly Part[], s: unknown, tcp: boolean, missing: string): string {
  pieces.length = parts.length;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    pieces[i] = typeof p === 'string' ? p : textOf(read(p, s, tcp), p.maxLength, missing);
  }
  return pieces.join('');
}

class TextFormatter implements Formatter {
  private readonly parts: readonly Part[];
  private readonly missing: string;

  constructor(parts: readonly Part[], omitEmpty: boolean) {
    this.parts = parts;
    this.missing = omitEmpty ? '' : '-';
  }

  formatHttp(stream: HttpStream): string {
    return renderText(this.parts, stream, false, this.missing);
  }

  formatTcp(session: TcpSession): string {
    return renderText(this.parts, session, true, this.missing);
  }
}

const CONST = 0;
const VALUE = 1;
const TEMPLATE = 2;
const OBJECT = 3;

type JsonNode =
  | { readonly kind: typeof CONST; readonly text: string }
  | { readonly kind: typeof VALUE; readonly part: OperatorPart }
  | { readonly kind: typeof TEMPLATE; readonly parts: readonly Part[] }
  | {
      readonly kind: typeof OBJECT;
      /** Each key already written as `"key":`. */
      readonly keys: readonly string[];
      readonly nodes: readonly JsonNode[];
    };

function compileJsonNode(value: Json, path: string, sortKeys: boolean): JsonNode {
  if (typeof value === 'string') {
    const parts = parseFormat(value, path);
    if (parts.length === 1 && typeof parts[0] !== 'string') return { kind: VALUE, part: parts[0] };
    if (parts.every((p) => typeof p === 'string')) return { kind: CONST, text: JSON.stringify(value) };
    return { kind: TEMPLATE, parts };
  }
  if (isObject(value)) return compileJsonObject(value, path, sortKeys);
  if (Array.isArray(value)) throw new ConfigError(path, 'lists in json_format are not supported by Weft');
  return { kind: CONST, text: JSON.stringify(value) };
}

function compileJsonObject(obj: JsonObject, path: string, sortKeys: boolean): JsonNode {
  const names = Object.keys(obj);
  if (sortKeys) names.sort();
  return {
    kind: OBJECT,
    keys: names.map((k) => `${JSON.stringify(k)}:`),
    nodes: names.map((k) => compileJsonNode(obj[k], fieldPath(path, k), sortKeys)),
  };
}

/** The JSON text of a node, or undefined when omit_empty_values leaves it out. */
function renderJson(node: JsonNode, s: unknown, tcp: boolean, omitEmpty: boolean): string | undefined {
  switch (node.kind) {
    case CONST:
      return node.text;
    case VALUE: {
      const v = read(node.part, s, tcp);
      if (v === null) return omitEmpty ? undefined : 'null';
      if (typeof v === 'string') {
        if (v === '' && omitEmpty) return undefined;
        return JSON.stringify(cut(v, node.part.maxLength));
      }
      if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
      if (typeof v === 'boolean') return String(v);
      return JSON.stringify(v) ?? 'null';
    }
    case TEMPLATE:
      return JSON.stringify(renderText(node.parts, s, tcp, omitEmpty ? '' : '-'));
    case OBJECT: {
      let out = '{';
      let first = true;
      const nodes = node.nodes;
      for (let i = 0; i < nodes.length; i++) {
        const v = renderJson(nodes[i], s, tcp, omitEmpty);
        if (v === undefined) continue;
        out += first ? node.keys[i] + v : ',' + node.keys[i] + v;
        first = false;
      }
      return out + '}';
    }
  }
}

class JsonFormatter implements Formatter {
  private readonly root: JsonNode;
  private readonly omitEmpty: boolean;

  constructor(root: JsonNode, omitEmpty: boolean) {
    this.root = root;
    this.omitEmpty = omitEmpty;
  }

  formatHttp(stream: HttpStream): string {
    return renderJson(this.root, stream, false, this.omitEmpty) + '\n';
  }

  formatTcp(session: TcpSession): string {
    return renderJson(this.root, session, true, this.omitEmpty) + '\n';
  }
}

export function textFormatter(format: string, path: string, omitEmpty = false): Formatter {
  return new TextFormatter(parseFormat(format, path), omitEmpty);
}

/** A JSON dictionary (google.protobuf.Struct): one object per line, keys in config order unless sorted. */
export function jsonFormatter(
  dict: JsonObject,
  path: string,
  opts: { omitEmpty?: boolean; sortKeys?: boolean } = {},
): Formatter {
  return new JsonFormatter(compileJsonObject(dict, path, opts.sortKeys ?? false), opts.omitEmpty ?? false);
}
