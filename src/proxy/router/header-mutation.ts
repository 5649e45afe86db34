/**
 * request_headers_to_add/remove and response_headers_to_add/remove at one level, compiled into a
 * HeaderMutation that behaves like Envoy's HeaderParser::evaluateHeaders:
 * 1. the listed headers are removed;
 * 2. every value is formatted, and its append_action decided against the headers as they are after the
 *    removals (empty values are skipped unless keep_empty_value);
 * 3. overwrites are applied, in order, then appends.
 * Header names are lower-cased; the header map is expected to use lower-case keys. Pseudo-headers and
 * `host` may be neither added nor removed (Envoy refuses them too).
 *
 * Values may use these substitution commands: %REQ(name)% (also %REQ(a?b)% and %REQ(name):N%) and
 * %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%; "%%" is a literal "%". Like Envoy's header formatter, an
 * absent request header formats as "".
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, objectItems, optBool, optObject, optString, stringItems } from '../config-proto/fields.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { RequestHeader } from './request-header.ts';
import { toWire } from './strings.ts';
import type { HeaderMap, HeaderMutation, RouteRequest } from './types.ts';

const APPEND_IF_EXISTS_OR_ADD = 0;
const ADD_IF_ABSENT = 1;
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
const OVERWRITE_IF_EXISTS = 3;

const APPEND_ACTIONS: Readonly<Record<string, number>> = {
  APPEND_IF_EXISTS_OR_ADD,
  ADD_IF_ABSENT,
  OVERWRITE_IF_EXISTS_OR_ADD,
  OVERWRITE_IF_EXISTS,
};

/** Commands Envoy supports but Weft cannot evaluate from what the router sees, with the reason. */
const UNAVAILABLE: Readonly<Record<string, string>> = {
  DOWNSTREAM_REMOTE_ADDRESS:
    'the downstream port is not available to the router; use %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%',
  PROTOCOL: 'the downstream protocol version is not available to the router',
};

type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'req'; readonly headers: readonly RequestHeader[]; readonly maxLength: number }
  | { readonly kind: 'source_ip' };

/** A header value with substitution commands, parsed once. */
export class ValueFormatter {
  private readonly parts: readonly Part[];
  /** The value when it has no commands. */
  readonly constant: string | undefined;

  constructor(parts: readonly Part[]) {
    this.parts = parts;
    this.constant = parts.every((p) => p.kind === 'text')
      ? parts.map((p) => (p as { text: string }).text).join('')
      : undefined;
  }

  format(req: RouteRequest): string {
    if (this.constant !== undefined) return this.constant;
    let out = '';
    for (const part of this.parts) {
      switch (part.kind) {
        case 'text':
          out += part.text;
          break;
        case 'source_ip':
          out += req.sourceIp;
          break;
        case 'req': {
          let v: string | undefined;
          for (const h of part.headers) {
            v = h.get(req);
            if (v !== undefined) break;
          }
          if (v !== undefined)
            out += part.maxLength >= 0 && v.length > part.maxLength ? v.slice(0, part.maxLength) : v;
          break;
        }
      }
    }
    return out;
  }
}

const COMMAND = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/y;

/** Parses an Envoy substitution format string, keeping only the commands Weft can evaluate. */
export function parseValueFormat(value: string, path: string): ValueFormatter {
  const parts: Part[] = [];
  let text = '';
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (ch !== '%') {
      text += ch;
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      text += '%';
      i += 2;
      continue;
    }
    COMMAND.lastIndex = i;
    const m = COMMAND.exec(value);
    if (m === null)
      throw new ConfigError(
        path,
        `invalid substitution at offset ${i} in ${JSON.stringify(value)} (write %% for a literal %)`,
      );
    const [all, name, args, max] = m;
    if (text) parts.push(textPart(text, path));
    text = '';
    parts.push(commandPart(name, args, max, path));
    i += all.length;
  }
  if (text) parts.push(textPart(text, path));
  return new ValueFormatter(parts);
}

function textPart(text: string, path: string): Part {
  // Node refuses to send NUL, CR or LF in a header value; Envoy's config validation refuses them too.
  if (/[\0\r\n]/.test(text)) throw new ConfigError(path, 'header values must not contain NUL, CR or LF');
  return { kind: 'text', text: toWire(text) };
}

function commandPart(name: string, args: string | undefined, max: string | undefined, path: string): Part {
  if (name === 'REQ') {
    if (!args) throw new ConfigError(path, '%REQ(...)% needs a header name');
    const alternatives = args.split('?');
    if (alternatives.length > 2 || alternatives.some((a) => a === '')) {
      throw new ConfigError(path, `invalid %REQ(${args})%: expected a header name or "main?alternative"`);
    }
    return {
      kind: 'req',
      headers: alternatives.map((a) => new RequestHeader(a)),
      maxLength: max === undefined ? -1 : Number(max),
    };
  }
  if (name === 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT') {
    if (args !== undefined || max !== undefined) throw new ConfigError(path, `%${name}% takes no arguments`);
    return { kind: 'source_ip' };
  }
  const why = UNAVAILABLE[name];
  if (why) throw new ConfigError(path, `substitution %${name}% is not supported by Weft: ${why}`);
  throw new ConfigError(
    path,
    `substitution %${name}% is not supported by Weft (supported: %REQ(header)%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%)`,
  );
}

interface AddEntry {
  readonly key: string;
  readonly value: ValueFormatter;
  readonly action: number;
  readonly keepEmpty: boolean;
}

function addValue(headers: HeaderMap, key: string, value: string): void {
  const prev = headers[key];
  if (prev === undefined) headers[key] = value;
  // A new array: the previous one may be shared with the incoming request's header object.
  else headers[key] = typeof prev === 'string' ? [prev, value] : [...prev, value];
}

class HeaderMutationImpl implements HeaderMutation {
  private readonly remove: readonly string[];
  private readonly add: readonly AddEntry[];
  /** Per-entry decisions for one apply() call (apply is synchronous, so one buffer per mutation is enough). */
  private readonly decided: (string | undefined)[];
  private readonly overwrite: boolean[];

  constructor(remove: readonly string[], add: readonly AddEntry[]) {
    this.remove = remove;
    this.add = add;
    this.decided = new Array<string | undefined>(add.length).fill(undefined);
    this.overwrite = new Array<boolean>(add.length).fill(false);
  }

  apply(headers: HeaderMap, req: RouteRequest): void {
    for (const key of this.remove) {
      if (headers[key] !== undefined) delete headers[key];
    }
    const add = this.add;
    const decided = this.decided;
    const overwrite = this.overwrite;
    for (let i = 0; i < add.length; i++) {
      const e = add[i];
      const value = e.value.format(req);
      decided[i] = undefined;
      if (value === '' && !e.keepEmpty) continue;
      const exists = headers[e.key] !== undefined;
      switch (e.action) {
        case APPEND_IF_EXISTS_OR_ADD:
          decided[i] = value;
          overwrite[i] = false;
          break;
        case ADD_IF_ABSENT:
          if (!exists) {
            decided[i] = value;
            overwrite[i] = false;
          }
          break;
        case OVERWRITE_IF_EXISTS:
        case OVERWRITE_IF_EXISTS_OR_ADD:
          if (e.action === OVERWRITE_IF_EXISTS && !exists) break;
          decided[i] = value;
          overwrite[i] = true;
          break;
      }
    }
    for (let i = 0; i < add.length; i++) {
      const v = decided[i];
      if (v !== undefined && overwrite[i]) headers[add[i].key] = v;
    }
    for (let i = 0; i < add.length; i++) {
      const v = decided[i];
      if (v !== undefined && !overwrite[i]) addValue(headers, add[i].key, v);
      decided[i] = undefined;
    }
  }
}

/** Envoy's isModifiableHeader / isRemovableHeader: no pseudo-headers, no `host`. */
function checkMutableName(name: string, path: string, verb: string): void {
  if (name === '') throw new ConfigError(path, 'header name must not be empty');
  if (name.startsWith(':') || name === 'host')
    throw new ConfigError(path, `${JSON.stringify(name)}: pseudo-headers and host may not be ${verb}`);
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name))
    throw new ConfigError(path, `${JSON.stringify(name)} is not a valid header name`);
}

function compileHeaderValueOption(json: Json, path: string): AddEntry {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['header', 'append', 'append_action', 'keep_empty_value'],
    refused: {},
  });
  const headerPath = fieldPath(path, 'header');
  const header = optObject(obj, 'header', path);
  if (!header) throw new ConfigError(headerPath, 'required');
  checkFields(header, headerPath, { supported: ['key', 'value'], refused: { raw_value: null } });
  const key = (optString(header, 'key', headerPath) ?? '').toLowerCase();
  checkMutableName(key, fieldPath(headerPath, 'key'), 'modified');
  const value = parseValueFormat(
    optString(header, 'value', headerPath) ?? '',
    fieldPath(headerPath, 'value'),
  );
  const append = optBool(obj, 'append', path);
  const actionName = optString(obj, 'append_action', path);
  let action = APPEND_IF_EXISTS_OR_ADD;
  if (actionName !== undefined) {
    if (!Object.hasOwn(APPEND_ACTIONS, actionName))
      throw new ConfigError(fieldPath(path, 'append_action'), `unknown value ${JSON.stringify(actionName)}`);
    action = APPEND_ACTIONS[actionName];
  }
  if (append !== undefined) {
    if (action !== APPEND_IF_EXISTS_OR_ADD)
      throw new ConfigError(fieldPath(path, 'append'), 'append and append_action may not both be set');
    action = append ? APPEND_IF_EXISTS_OR_ADD : OVERWRITE_IF_EXISTS_OR_ADD;
  }
  return { key, value, action, keepEmpty: optBool(obj, 'keep_empty_value', path) ?? false };
}

/**
 * The mutation configured by `<prefix>_headers_to_add` and `<prefix>_headers_to_remove` of `obj`, or
 * undefined when neither is set. `prefix` is "request" or "response".
 */
export function compileHeaderMutation(
  json: Json,
  path: string,
  prefix: 'request' | 'response',
): HeaderMutation | undefined {
  const obj = asObject(json, path);
  const addKey = `${prefix}_headers_to_add`;
  const removeKey = `${prefix}_headers_to_remove`;
  const add = objectItems(obj, addKey, path).map(({ item, path: p }) => compileHeaderValueOption(item, p));
  const remove = stringItems(obj, removeKey, path).map((name, i) => {
    const lower = name.toLowerCase();
    checkMutableName(lower, indexPath(fieldPath(path, removeKey), i), 'removed');
    return lower;
  });
  if (add.length === 0 && remove.length === 0) return undefined;
  return new HeaderMutationImpl(remove, add);
}
