/**
 * Tells an HTTP/1.x request line or the HTTP/2 prior-knowledge preface from other bytes, the way Envoy's
 * http_inspector does: "http/1.0", "http/1.1", "h2c", or nothing. Decides as soon as the bytes allow: the
 * first byte that cannot continue a request line settles "not HTTP", a complete request line settles HTTP.
 */

/** RFC 9113 §3.4: what an h2c client with prior knowledge sends first. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Envoy's http_inspector looks at no more than this many bytes. */
export const MAX_HTTP_INSPECT_BYTES = 8192;

export type HttpDetection =
  | { readonly kind: 'need_more' }
  | { readonly kind: 'not_http' }
  | { readonly kind: 'http'; readonly protocol: 'http/1.0' | 'http/1.1' | 'h2c' };

const NEED_MORE: HttpDetection = { kind: 'need_more' };
const NOT_HTTP: HttpDetection = { kind: 'not_http' };

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION_PREFIX = Buffer.from('HTTP/1.', 'latin1');

export function detectHttp(bytes: Uint8Array, maxBytes = MAX_HTTP_INSPECT_BYTES): HttpDetection {
  const n = Math.min(bytes.length, H2_PREFACE.length);
  if (n > 0 && H2_PREFACE.subarray(0, n).equals(bytes.subarray(0, n))) {
    return bytes.length >= H2_PREFACE.length ? { kind: 'http', protocol: 'h2c' } : NEED_MORE;
  }
  const result = requestLine(bytes.subarray(0, maxBytes));
  // A request line longer than the inspection window is not one Envoy would recognise either.
  return result === NEED_MORE && bytes.length >= maxBytes ? NOT_HTTP : result;
}

/** method SP request-target SP HTTP/1.<digit> CRLF (a bare LF is accepted, as HTTP/1 parsers do). */
function requestLine(b: Uint8Array): HttpDetection {
  let i = 0;
  while (i < b.length && TCHAR[b[i]] === 1) i++;
  if (i === b.length) return NEED_MORE;
  if (i === 0 || b[i] !== SP) return NOT_HTTP;
  const targetStart = ++i;
  // request-target: visible characters (obs-text allowed, as lenient parsers do); no controls, no spaces.
  while (i < b.length && b[i] > SP && b[i] !== 0x7f) i++;
  if (i === b.length) return NEED_MORE;
  if (i === targetStart || b[i] !== SP) return NOT_HTTP;
  i++;
  for (let k = 0; k < VERSION_PREFIX.length; k++, i++) {
    if (i === b.length) return NEED_MORE;
    if (b[i] !== VERSION_PREFIX[k]) return NOT_HTTP;
  }
  if (i === b.length) return NEED_MORE;
  const minor = b[i++];
  if (minor < 0x30 || minor > 0x39) return NOT_HTTP;
  if (i === b.length) return NEED_MORE;
  if (b[i] === CR) {
    i++;
    if (i === b.length) return NEED_MORE;
  }
  if (b[i] !== LF) return NOT_HTTP;
  // Envoy reports any HTTP/1 version other than 1.1 as HTTP/1.0.
  return { kind: 'http', protocol: minor === 0x31 ? 'http/1.1' : 'http/1.0' };
}
