/** Header hygiene at the proxy boundary (RFC 9110 §7.6.1 connection-specific fields). */
import type { IncomingHttpHeaders } from 'node:http';

/** Connection-specific fields that never cross a hop. `te` is handled apart: "te: trailers" is kept (gRPC needs it). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
]);

function connectionTokens(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return null;
  // The common values name no other header: skip the split on the hot path.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return null;
  const v = Array.isArray(value) ? value.join(',') : value;
  const out: string[] = [];
  for (const t of v.split(',')) {
    const tok = t.trim().toLowerCase();
    if (tok && tok !== 'close' && tok !== 'keep-alive') out.push(tok);
  }
  return out.length > 0 ? out : null;
}

/**
 * Copies request headers for the upstream: drops pseudo-headers, hop-by-hop fields and fields named in
 * `Connection`, keeps `te: trailers`.
 */
export function upstreamRequestHeaders(
  src: IncomingHttpHeaders,
): Record<string, string | string[] | undefined> {
  const named = connectionTokens(src.connection);
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in src) {
    if (k.charCodeAt(0) === 58 /* : */) continue;
    if (HOP_BY_HOP.has(k)) {
      if (k === 'te') {
        const te = src.te;
        if (typeof te === 'string' && te.toLowerCase().includes('trailers')) out.te = 'trailers';
      }
      continue;
    }
    if (named !== null && named.includes(k)) continue;
    out[k] = src[k];
  }
  return out;
}

/** Copies response headers for the downstream, without hop-by-hop fields (the downstream codec frames the body itself). */
export function downstreamResponseHeaders(
  src: IncomingHttpHeaders,
): Record<string, string | string[] | undefined> {
  const named = connectionTokens(src.connection);
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in src) {
    if (k.charCodeAt(0) === 58) continue;
    if (HOP_BY_HOP.has(k)) continue;
    if (named !== null && named.includes(k)) continue;
    out[k] = src[k];
  }
  return out;
}

/** The client address without the IPv4-mapped IPv6 prefix. */
export function plainIp(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
