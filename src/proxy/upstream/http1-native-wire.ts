/**
 * HTTP/1.1 wire helpers for the native upstream pool: access to Node's own llhttp binding (the parser
 * behind node:http, exported by the `_http_common` built-in), request-head serialization with field
 * validation, and response header blocks turned into node-style header objects.
 */
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamRequest } from './codec.ts';

/** The subset of node's internal HTTPParser (src/node_http_parser.cc) the pool drives. */
export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenientFlags?: number): void;
  /** Bytes consumed, or an Error carrying an `HPE_*` code. */
  execute(data: Buffer): number | Error;
  /** Signals EOF: completes a close-delimited body, or returns an Error when the message is incomplete. */
  finish(): Error | undefined;
  close(): void;
  /** Makes the parser read the stream handle directly (no 'data' events); results go to kOnExecute. */
  consume(handle: object): void;
  unconsume(): void;
  /** Inside kOnExecute: a copy of the bytes just parsed. */
  getCurrentBuffer(): Buffer;
  [callback: number]: unknown;
}

interface NativeParserClass {
  new (): NativeParser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

// `_http_common` is not in the public type definitions, but it is what node:http itself runs on.
const httpCommon = createRequire(import.meta.url)('_http_common') as { HTTPParser?: NativeParserClass };
if (typeof httpCommon.HTTPParser !== 'function') {
  throw new Error('this Node.js does not expose HTTPParser from _http_common');
}
export const HTTPParser: NativeParserClass = httpCommon.HTTPParser;

/** llhttp's on_headers_complete return values. */
export const PARSE_BODY = 0;
export const SKIP_BODY = 1;
export const SKIP_BODY_UPGRADE = 2;

/** How the request body is framed on the wire. */
export interface RequestFraming {
  /** Declared length, or -1 when none was given. */
  contentLength: number;
  chunked: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 field-value characters (what node:http and undici accept): no CR, LF, NUL or other controls.
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_PATH = /[^\u0021-\u00ff]/;
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export class InvalidRequestError extends Error {}

/**
 * Long values already found valid, so a value sent on every request (the proxy's own x-envoy-peer-metadata,
 * ~300 characters) is scanned once rather than per request. A constant string keeps its hash, so the
 * lookup is cheap; bounded in entries and size so hostile headers cannot grow it.
 */
const validLongValues = new Set<string>();
const LONG_VALUE = 64;
const MAX_CACHED_VALUE = 4096;
const MAX_CACHED_VALUES = 64;

/** Header names already found to be tokens: the same dozen names arrive on every request. Bounded. */
const validNames = new Set<string>();
const MAX_CACHED_NAMES = 256;

function invalidName(name: string): boolean {
  if (validNames.has(name)) return false;
  if (!TOKEN.test(name)) return true;
  if (validNames.size >= MAX_CACHED_NAMES) validNames.clear();
  validNames.add(name);
  return false;
}

function invalidValue(value: string): boolean {
  if (value.length < LONG_VALUE) return INVALID_VALUE.test(value);
  if (validLongValues.has(value)) return false;
  if (INVALID_VALUE.test(value)) return true;
  if (value.length <= MAX_CACHED_VALUE) {
    if (validLongValues.size >= MAX_CACHED_VALUES) validLongValues.clear();
    validLongValues.add(value);
  }
  return false;
}

/**
 * The head being serialized, piece by piece, joined once at the end: one flat string of the exact size,
 * where appending to a string built a rope of several nodes per header that the socket write then had to
 * flatten (with the mesh's trace and peer-metadata headers, a kilobyte of garbage per request). The function
 * is synchronous and not re-entered, so one array serves every call.
 */
const head: string[] = [];

/**
 * Serializes the request line and header block (latin1 text, ending with the blank line) and fills in
 * the body framing. Throws InvalidRequestError instead of ever writing a field that could split the head.
 */
export function requestHead(req: UpstreamRequest, defaultHost: string, framing: RequestFraming): string {
  const method = req.method;
  if (!TOKEN.test(method)) throw new InvalidRequestError(`invalid method ${JSON.stringify(method)}`);
  if (req.path.length === 0 || INVALID_PATH.test(req.path)) {
    throw new InvalidRequestError(`invalid request target ${JSON.stringify(req.path)}`);
  }
  // Written by index, not emptied: `length = 0` would drop the array's storage and every request would grow
  // it again.
  let n = 0;
  head[n++] = method;
  head[n++] = ' ';
  head[n++] = req.path;
  head[n++] = ' HTTP/1.1\r\n';
  let contentLength = -1;
  let hasHost = false;
  const headers = req.headers;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    // The pool frames the message itself; these never come from the caller.
    if (lower === 'transfer-encoding' || lower === 'connection' || lower === 'upgrade') continue;
    if (invalidName(name)) throw new InvalidRequestError(`invalid header name ${JSON.stringify(name)}`);
    if (typeof value === 'string') {
      if (invalidValue(value)) throw new InvalidRequestError(`invalid value for header ${name}`);
      if (lower === 'content-length') {
        contentLength = parseContentLength(value);
      } else if (lower === 'host') hasHost = true;
      head[n++] = name;
      head[n++] = ': ';
      head[n++] = value;
      head[n++] = '\r\n';
    } else {
      if (lower === 'content-length' || lower === 'host') {
        throw new InvalidRequestError(`header ${name} must have a single value`);
      }
      for (let i = 0; i < value.length; i++) {
        const v = String(value[i]);
        if (invalidValue(v)) throw new InvalidRequestError(`invalid value for header ${name}`);
        head[n++] = name;
        head[n++] = ': ';
        head[n++] = v;
        head[n++] = '\r\n';
      }
    }
  }
  if (!hasHost) {
    head[n++] = 'host: ';
    head[n++] = defaultHost;
    head[n++] = '\r\n';
  }
  let chunked = false;
  if (req.upgrade !== undefined) {
    if (!TOKEN.test(req.upgrade)) throw new InvalidRequestError('invalid upgrade token');
    head[n++] = 'connection: upgrade\r\nupgrade: ';
    head[n++] = req.upgrade;
    head[n++] = '\r\n';
  }
  if (req.body !== null) {
    if (contentLength < 0) {
      chunked = true;
      head[n++] = 'transfer-encoding: chunked\r\n';
    }
  } else if (contentLength < 0 && PAYLOAD_METHODS.has(method)) {
    // As node:http and undici do: a body-carrying method with no body says so explicitly.
    head[n++] = 'content-length: 0\r\n';
    contentLength = 0;
  }
  framing.contentLength = contentLength;
  framing.chunked = chunked;
  head[n++] = '\r\n';
  head.length = n;
  return head.join('');
}

function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) throw new InvalidRequestError('invalid content-length');
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) throw new InvalidRequestError('invalid content-length');
  }
  return Number(value);
}

/**
 * Fields whose duplicates node:http drops (first value wins) because a list makes no sense for them;
 * every other duplicate is joined with ", " (cookie with "; "), and set-cookie is always an array.
 */
const SINGLE_VALUED = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** Turns llhttp's flat [name, value, name, value, ...] list into a header object as node:http builds it. */
export function headerObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    const prev = out[name];
    if (prev === undefined) {
      if (name === '__proto__') continue;
      out[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (prev as string[]).push(value);
    } else if (SINGLE_VALUED.has(name)) {
      continue;
    } else {
      out[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return out;
}
