/**
 * Reads the server name (SNI) and ALPN list out of the first bytes of a connection, if they are a TLS
 * ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2; server_name from RFC 6066 §3, ALPN from RFC 7301 §3.1).
 * The bytes come from an untrusted client: every length is checked against what is actually there, and the
 * answer is "not TLS" for anything malformed. Nothing here throws.
 */

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** RFC 8446 §5.1: a record's plaintext fragment is at most 2^14 bytes. */
const MAX_RECORD_FRAGMENT = 2 ** 14;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const SNI_HOST_NAME = 0;

/** Envoy's tls_inspector gives up on a ClientHello larger than this (its max_client_hello_size default). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

export type ClientHelloResult =
  /** The bytes so far are a valid beginning of a ClientHello. */
  | { readonly kind: 'need_more' }
  | { readonly kind: 'not_tls' }
  /** A ClientHello that does not fit in MAX_CLIENT_HELLO_BYTES (Envoy closes such connections). */
  | { readonly kind: 'too_large' }
  | {
      readonly kind: 'client_hello';
      readonly serverName: string | undefined;
      readonly applicationProtocols: readonly string[];
    };

const NEED_MORE: ClientHelloResult = { kind: 'need_more' };
const NOT_TLS: ClientHelloResult = { kind: 'not_tls' };
const TOO_LARGE: ClientHelloResult = { kind: 'too_large' };

/** Classifies `bytes`, the connection's first bytes so far. */
export function parseClientHello(bytes: Uint8Array, maxBytes = MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  // Decide from the record header as early as possible: one wrong byte is enough to say "not TLS".
  if (bytes.length >= 1 && bytes[0] !== CONTENT_TYPE_HANDSHAKE) return NOT_TLS;
  if (bytes.length >= 2 && bytes[1] !== 3) return NOT_TLS;
  // A ClientHello may span several handshake records: collect their fragments in order.
  const fragments: Uint8Array[] = [];
  let handshakeBytes = 0;
  let offset = 0;
  let expected = -1; // the handshake message's total length once its header is known
  for (;;) {
    if (expected >= 0 && handshakeBytes >= expected) break;
    if (bytes.length - offset < RECORD_HEADER) {
      if (bytes.length - offset >= 1 && bytes[offset] !== CONTENT_TYPE_HANDSHAKE) return NOT_TLS;
      if (bytes.length - offset >= 2 && bytes[offset + 1] !== 3) return NOT_TLS;
      return needMore(bytes, maxBytes);
    }
    if (bytes[offset] !== CONTENT_TYPE_HANDSHAKE || bytes[offset + 1] !== 3) return NOT_TLS;
    const length = (bytes[offset + 3] << 8) | bytes[offset + 4];
    if (length === 0 || length > MAX_RECORD_FRAGMENT) return NOT_TLS;
    const available = Math.min(length, bytes.length - offset - RECORD_HEADER);
    const fragment = bytes.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + available);
    fragments.push(fragment);
    handshakeBytes += fragment.length;
    if (expected < 0 && handshakeBytes >= 1) {
      const head = concat(fragments, Math.min(handshakeBytes, HANDSHAKE_HEADER));
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
      if (head.length === HANDSHAKE_HEADER) {
        expected = HANDSHAKE_HEADER + ((head[1] << 16) | (head[2] << 8) | head[3]);
        if (expected + RECORD_HEADER > maxBytes) return TOO_LARGE;
      }
    }
    if (available < length) return needMore(bytes, maxBytes);
    offset += RECORD_HEADER + length;
  }
  const message = concat(fragments, expected);
  return parseBody(message.subarray(HANDSHAKE_HEADER));
}

/** The limit counts every byte peeked, record headers included, as Envoy's does. */
function needMore(bytes: Uint8Array, maxBytes: number): ClientHelloResult {
  return bytes.length >= maxBytes ? TOO_LARGE : NEED_MORE;
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0].subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    if (at >= length) break;
    const n = Math.min(p.length, length - at);
    out.set(p.subarray(0, n), at);
    at += n;
  }
  return out;
}

/** A bounds-checked cursor: every read past the end makes `ok` false and returns zeroes. */
class Reader {
  private readonly bytes: Uint8Array;
  private at = 0;
  ok = true;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  u8(): number {
    if (this.remaining < 1) return this.fail();
    return this.bytes[this.at++];
  }

  u16(): number {
    if (this.remaining < 2) return this.fail();
    const v = (this.bytes[this.at] << 8) | this.bytes[this.at + 1];
    this.at += 2;
    return v;
  }

  take(n: number): Uint8Array {
    if (this.remaining < n) {
      this.fail();
      return new Uint8Array(0);
    }
    const v = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }

  private fail(): 0 {
    this.ok = false;
    this.at = this.bytes.length;
    return 0;
  }
}

function parseBody(body: Uint8Array): ClientHelloResult {
  const r = new Reader(body);
  r.take(2 + 32); // legacy_version, random
  const sessionId = r.u8();
  if (sessionId > 32) return NOT_TLS;
  r.take(sessionId);
  const suites = r.u16();
  if (suites < 2 || suites % 2 !== 0) return NOT_TLS;
  r.take(suites);
  const compression = r.u8();
  if (compression < 1) return NOT_TLS;
  r.take(compression);
  if (!r.ok) return NOT_TLS;
  let serverName: string | undefined;
  let applicationProtocols: string[] = [];
  // TLS 1.2 allows a ClientHello without extensions.
  if (r.remaining === 0) return { kind: 'client_hello', serverName, applicationProtocols };
  const extensions = new Reader(r.take(r.u16()));
  if (!r.ok || r.remaining !== 0) return NOT_TLS;
  const seen = new Set<number>();
  while (extensions.remaining > 0) {
    const type = extensions.u16();
    const data = extensions.take(extensions.u16());
    if (!extensions.ok || seen.has(type)) return NOT_TLS;
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = parseServerName(data);
      if (name === null) return NOT_TLS;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const list = parseAlpn(data);
      if (list === null) return NOT_TLS;
      applicationProtocols = list;
    }
  }
  return { kind: 'client_hello', serverName, applicationProtocols };
}

/** The host_name entry of a ServerNameList, lower-cased (DNS names compare case-insensitively); null if malformed. */
function parseServerName(data: Uint8Array): string | null | undefined {
  const outer = new Reader(data);
  const list = new Reader(outer.take(outer.u16()));
  if (!outer.ok || outer.remaining !== 0 || list.remaining === 0) return null;
  let hostName: string | undefined;
  while (list.remaining > 0) {
    const type = list.u8();
    const name = list.take(list.u16());
    if (!list.ok || name.length === 0) return null;
    if (type !== SNI_HOST_NAME) continue;
    if (hostName !== undefined) return null; // at most one name of each type
    // A host name is printable ASCII; anything else (a NUL, UTF-8) is a hostile or broken client.
    for (const b of name) if (b <= 0x20 || b >= 0x7f) return null;
    hostName = Buffer.from(name).toString('latin1').toLowerCase();
  }
  return hostName;
}

/** A ProtocolNameList; null if malformed (RFC 7301: at least one name, none empty). */
function parseAlpn(data: Uint8Array): string[] | null {
  const outer = new Reader(data);
  const list = new Reader(outer.take(outer.u16()));
  if (!outer.ok || outer.remaining !== 0 || list.remaining === 0) return null;
  const names: string[] = [];
  while (list.remaining > 0) {
    const name = list.take(list.u8());
    if (!list.ok || name.length === 0) return null;
    names.push(Buffer.from(name).toString('latin1'));
  }
  return names;
}
