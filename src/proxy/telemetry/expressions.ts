/**
 * The subset of Istio's CEL attribute expressions Weft accepts as metric dimension values, compiled once
 * into accessors (no parsing, regex or allocation per request beyond the value itself):
 *
 *   'literal' or "literal"            a constant
 *   request.host                      the :authority / Host
 *   request.method                    GET, POST, ...
 *   request.path                      path with query
 *   request.url_path                  path without query
 *   request.scheme                    http | https
 *   request.protocol                  HTTP/1.1 | HTTP/2
 *   request.headers['name']           a request header ('' when absent)
 *   response.code                     the response status
 *   response.grpc_status              the gRPC status ('' when none)
 *   destination.port                  the upstream endpoint's port
 *   source.address                    the downstream client's IP
 *   upstream_peer.F / downstream_peer.F   F = workload, namespace, cluster, app, version, service,
 *                                     revision, principal, labels['name']
 *   node.id, node.metadata['KEY']     this proxy's bootstrap node
 *   a | b                             Istio's default: a when it is there (not '' nor 'unknown'), else b
 *
 * On TCP connections the request.* and response.* attributes are 'unknown'. Anything else is refused
 * with a ConfigError naming the dimension.
 */
import { ConfigError } from '../../core/errors.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import type { PeerMetadata } from './peer-metadata.ts';
import { peerApp, peerCanonicalRevision, peerCanonicalService, peerVersion } from './labels.ts';

const UNKNOWN = 'unknown';

export interface CompiledExpression {
  readonly source: string;
  http(stream: HttpStream, node: NodeInfo | undefined): string;
  tcp(session: TcpSession, node: NodeInfo | undefined): string;
}

const QUOTED = String.raw`(?:'([^'\\]*)'|"([^"\\]*)")`;
const LITERAL = new RegExp(`^${QUOTED}$`);
const INDEXED = new RegExp(String.raw`^([a-z_.]+)\[${QUOTED}\]$`);

type PeerField = (p: PeerMetadata | undefined) => string;

const PEER_FIELDS: Readonly<Record<string, PeerField>> = {
  workload: (p) => p?.workload ?? UNKNOWN,
  namespace: (p) => p?.namespace ?? UNKNOWN,
  cluster: (p) => p?.cluster ?? UNKNOWN,
  app: (p) => peerApp(p),
  version: (p) => peerVersion(p),
  service: (p) => peerCanonicalService(p),
  revision: (p) => peerCanonicalRevision(p),
  principal: (p) => p?.principal ?? UNKNOWN,
};

function constant(source: string, value: string): CompiledExpression {
  return { source, http: () => value, tcp: () => value };
}

function httpOnly(source: string, f: (s: HttpStream) => string): CompiledExpression {
  return { source, http: f, tcp: () => UNKNOWN };
}

function str(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  return typeof v === 'string' ? v : v.join(',');
}

/** `a | b`: the parts around each `|` outside quotes and brackets (one part when there is none). */
function splitAlternatives(source: string): string[] {
  const parts: string[] = [];
  let quote = '';
  let depth = 0;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(source.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(source.slice(start));
  return parts;
}

/** What an attribute that is not there evaluates to (an absent header is '', an unknown peer field 'unknown'). */
function isAbsent(v: string): boolean {
  return v === '' || v === UNKNOWN;
}

export function compileExpression(expr: string, path: string): CompiledExpression {
  const source = expr.trim();
  const alternatives = splitAlternatives(source);
  if (alternatives.length > 1) {
    // Istio's `a | b` default: the first alternative that is there.
    if (alternatives.some((a) => a.trim() === '')) throw unsupported(expr, path);
    const parts = alternatives.map((a) => compileSingle(a.trim(), expr, path));
    const last = parts.length - 1;
    return {
      source,
      http: (s, n) => {
        for (let i = 0; i < last; i++) {
          const v = parts[i].http(s, n);
          if (!isAbsent(v)) return v;
        }
        return parts[last].http(s, n);
      },
      tcp: (s, n) => {
        for (let i = 0; i < last; i++) {
          const v = parts[i].tcp(s, n);
          if (!isAbsent(v)) return v;
        }
        return parts[last].tcp(s, n);
      },
    };
  }
  return compileSingle(source, expr, path);
}

function compileSingle(source: string, expr: string, path: string): CompiledExpression {
  const lit = LITERAL.exec(source);
  if (lit !== null) return constant(source, lit[1] ?? lit[2]);
  const indexed = INDEXED.exec(source);
  if (indexed !== null) {
    const key = indexed[2] ?? indexed[3];
    const base = indexed[1];
    if (base === 'request.headers') {
      const name = key.toLowerCase();
      return httpOnly(source, (s) => str(s.headers[name]));
    }
    if (base === 'node.metadata') {
      const read = (node: NodeInfo | undefined): string => {
        const m = node?.metadata;
        const v = m !== null && typeof m === 'object' && !Array.isArray(m) ? m[key] : undefined;
        return typeof v === 'string' ? v : UNKNOWN;
      };
      return { source, http: (_s, n) => read(n), tcp: (_s, n) => read(n) };
    }
    for (const side of ['upstream_peer', 'downstream_peer'] as const) {
      if (base === `${side}.labels`) {
        const pick = (p: PeerMetadata | undefined): string => p?.labels?.[key] ?? UNKNOWN;
        return {
          source,
          http: (s) => pick(side === 'upstream_peer' ? s.upstreamPeer : s.downstreamPeer),
          tcp: (s) => pick(side === 'upstream_peer' ? s.upstreamPeer : s.downstreamPeer),
        };
      }
    }
    throw unsupported(expr, path);
  }
  switch (source) {
    case 'request.host':
      return httpOnly(source, (s) => s.authority);
    case 'request.method':
      return httpOnly(source, (s) => s.method);
    case 'request.path':
      return httpOnly(source, (s) => s.path);
    case 'request.url_path':
      return httpOnly(source, (s) => {
        const q = s.path.indexOf('?');
        return q < 0 ? s.path : s.path.slice(0, q);
      });
    case 'request.scheme':
      return httpOnly(source, (s) => s.scheme);
    case 'request.protocol':
      return httpOnly(source, (s) => (s.http2 ? 'HTTP/2' : 'HTTP/1.1'));
    case 'response.code':
      return httpOnly(source, (s) => String(s.responseStatus));
    case 'response.grpc_status':
      return httpOnly(source, (s) => s.grpcStatus ?? '');
    case 'destination.port':
      return {
        source,
        http: (s) => (s.upstreamHost === null ? UNKNOWN : String(s.upstreamHost.port)),
        tcp: (s) => (s.upstreamHost === null ? UNKNOWN : String(s.upstreamHost.port)),
      };
    case 'source.address':
      return {
        source,
        http: (s) => s.sourceIp || UNKNOWN,
        tcp: (s) => s.downstream.remoteAddress ?? UNKNOWN,
      };
    case 'node.id':
      return { source, http: (_s, n) => n?.id ?? UNKNOWN, tcp: (_s, n) => n?.id ?? UNKNOWN };
  }
  const dot = source.indexOf('.');
  const side = source.slice(0, dot);
  const field = PEER_FIELDS[source.slice(dot + 1)] as PeerField | undefined;
  if (dot > 0 && (side === 'upstream_peer' || side === 'downstream_peer') && field !== undefined) {
    return side === 'upstream_peer'
      ? { source, http: (s) => field(s.upstreamPeer), tcp: (s) => field(s.upstreamPeer) }
      : { source, http: (s) => field(s.downstreamPeer), tcp: (s) => field(s.downstreamPeer) };
  }
  throw unsupported(expr, path);
}

function unsupported(expr: string, path: string): ConfigError {
  return new ConfigError(
    path,
    `expression ${JSON.stringify(expr)} is not supported by Weft (supported: a quoted literal, request.host, ` +
      `request.method, request.path, request.url_path, request.scheme, request.protocol, ` +
      `request.headers['name'], response.code, response.grpc_status, destination.port, source.address, ` +
      `upstream_peer.* / downstream_peer.* (workload, namespace, cluster, app, version, service, revision, ` +
      `principal, labels['name']), node.id, node.metadata['KEY'], and \`a | b\` defaults)`,
  );
}
