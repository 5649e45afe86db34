/**
 * String helpers for matching request data the way Envoy does: case folding is ASCII-only (Envoy uses
 * absl's Ascii* functions) and comparisons are byte-exact. Node decodes header bytes as latin1, one
 * character per byte, so configured strings are converted to that "wire" form once, at compile time.
 */

/** `s` as Node presents the same bytes on the wire: its UTF-8 encoding, one latin1 character per byte. */
export function toWire(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'utf8').toString('latin1');
  }
  return s;
}

function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** ASCII lower-casing; returns `s` itself (no allocation) when it has no upper-case ASCII letter. */
export function asciiLower(s: string): string {
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) break;
    i++;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) out += String.fromCharCode(lowerCode(s.charCodeAt(i)));
  return out;
}

/** Whether `s[at, at + lower.length)` equals `lower` (already lower-case) ignoring ASCII case. */
export function regionEqualsIgnoreCase(s: string, at: number, lower: string): boolean {
  if (at < 0 || at + lower.length > s.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if (lowerCode(s.charCodeAt(at + i)) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether `s[start, end)` contains `lower` (already lower-case) ignoring ASCII case. */
export function containsIgnoreCase(s: string, start: number, end: number, lower: string): boolean {
  const last = end - lower.length;
  for (let at = start; at <= last; at++) {
    if (regionEqualsIgnoreCase(s, at, lower)) return true;
  }
  return false;
}

/** The index where the path ends and the query string or fragment begins (Envoy's removeQueryAndFragment). */
export function pathEnd(path: string): number {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return path.length;
}

/**
 * Where the value of query parameter `name` starts in `path`, or -1 when the parameter is absent. Follows
 * Envoy's parseQueryString: everything after the first `?`, split on `&`, each item split at its first `=`
 * (an item without `=` has the empty value), no percent-decoding, first occurrence wins. The value ends at
 * the next `&` or the end of `path`.
 */
export function queryValueStart(path: string, name: string): number {
  const q = path.indexOf('?');
  if (q < 0) return -1;
  let start = q + 1;
  while (start < path.length) {
    let end = path.indexOf('&', start);
    if (end < 0) end = path.length;
    if (path.startsWith(name, start)) {
      const after = start + name.length;
      if (after === end) return end;
      if (after < end && path.charCodeAt(after) === 61 /* = */) {
        // The first `=` of the item must be the one right after the name for the key to equal `name`.
        return after + 1;
      }
    }
    start = end + 1;
  }
  return -1;
}

/** The end of a query value that starts at `start` (see queryValueStart). */
export function queryValueEnd(path: string, start: number): number {
  const end = path.indexOf('&', start);
  return end < 0 ? path.length : end;
}

/** Whether `s` contains an ASCII control character (DEL included), or also a space when `orSpace`. */
export function hasControlChar(s: string, orSpace = false): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (orSpace && c === 0x20)) return true;
  }
  return false;
}
