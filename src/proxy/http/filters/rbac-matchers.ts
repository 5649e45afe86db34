/**
 * envoy.config.rbac.v3 Permission and Principal, compiled once into predicates over the request.
 *
 * Connection facts come from the downstream socket (destination = its local address, direct remote =
 * its peer) and from what TLS established (`downstreamSecurity`, undefined on plaintext: no
 * authenticated principal, SNI ""). `remote_ip` is the client the connection manager derived
 * (x-forwarded-for when it trusts it); `source_ip` is the deprecated name of `direct_remote_ip`.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { asObject, intInRange, objectItems, optBool, optObject } from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileHeaderMatcher } from '../../router/header-matcher.ts';
import { compileStringMatcher } from '../../router/string-matcher.ts';
import type { StringMatcher } from '../../router/string-matcher.ts';
import type { RouteRequest } from '../../router/types.ts';
import type { ConnectionSecurity } from '../../tls/connection-security.ts';
import { compileCidrRange } from './rbac-cidr.ts';
import { compileMetadataMatcher } from './rbac-metadata.ts';
import type { DynamicMetadata } from './rbac-metadata.ts';

/** What RBAC reads of an HttpStream (HttpStream satisfies it). */
export interface RbacRequest extends RouteRequest {
  readonly req: {
    readonly socket: {
      readonly remoteAddress?: string | undefined;
      readonly localAddress?: string | undefined;
      readonly localPort?: number | undefined;
    } | null;
  };
  readonly downstreamSecurity: ConnectionSecurity | undefined;
  readonly dynamicMetadata: DynamicMetadata;
}

export type RbacMatcher = (r: RbacRequest) => boolean;

const matchAny: RbacMatcher = () => true;

function allOf(list: readonly RbacMatcher[]): RbacMatcher {
  if (list.length === 1) return list[0];
  return (r) => {
    for (const m of list) if (!m(r)) return false;
    return true;
  };
}

export function anyOf(list: readonly RbacMatcher[]): RbacMatcher {
  if (list.length === 1) return list[0];
  return (r) => {
    for (const m of list) if (m(r)) return true;
    return false;
  };
}

/** The oneof that is set, or a ConfigError: none set, several set, or one Weft does not implement. */
function oneSet(obj: JsonObject, path: string, kinds: readonly string[], refused: readonly string[]): string {
  for (const key of Object.keys(obj)) {
    if (refused.includes(key) && obj[key] !== null)
      throw new ConfigError(fieldPath(path, key), `${key} is not supported by Weft`);
    if (!kinds.includes(key)) throw new ConfigError(fieldPath(path, key), 'unknown field');
  }
  const set = kinds.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0) throw new ConfigError(path, `one of ${kinds.join(', ')} is required`);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  return set[0];
}

function compileSet(
  obj: JsonObject,
  key: string,
  path: string,
  field: 'rules' | 'ids',
  compile: (json: Json, path: string) => RbacMatcher,
): RbacMatcher[] {
  const p = fieldPath(path, key);
  const set = asObject(obj[key], p);
  checkFields(set, p, { supported: [field], refused: {} });
  const items = objectItems(set, field, p);
  if (items.length === 0) throw new ConfigError(fieldPath(p, field), 'at least one is required');
  return items.map(({ item, path: ip }) => compile(item, ip));
}

function anyField(obj: JsonObject, path: string): RbacMatcher {
  if (optBool(obj, 'any', path) !== true) throw new ConfigError(fieldPath(path, 'any'), 'must be true');
  return matchAny;
}

/** PathMatcher {path: StringMatcher}, matched against the path without its query string or fragment. */
function compileUrlPath(json: Json | undefined, path: string): RbacMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['path'], refused: {} });
  if (obj.path === undefined || obj.path === null) throw new ConfigError(fieldPath(path, 'path'), 'required');
  const m = compileStringMatcher(obj.path, fieldPath(path, 'path'));
  return (r) => {
    const p = r.path;
    let end = p.length;
    for (let i = 0; i < end; i++) {
      const c = p.charCodeAt(i);
      if (c === 63 /* ? */ || c === 35 /* # */) end = i;
    }
    return m.matchesRange(p, 0, end);
  };
}

function compileHeader(json: Json | undefined, path: string): RbacMatcher {
  const m = compileHeaderMatcher(json, path);
  return (r) => m.matches(r);
}

function compileMetadata(json: Json | undefined, path: string): RbacMatcher {
  const m = compileMetadataMatcher(json, path);
  return (r) => m.matches(r.dynamicMetadata);
}

const PERMISSION_KINDS = [
  'and_rules',
  'or_rules',
  'any',
  'header',
  'url_path',
  'destination_ip',
  'destination_port',
  'destination_port_range',
  'metadata',
  'not_rule',
  'requested_server_name',
];

export function compilePermission(json: Json | undefined, path: string): RbacMatcher {
  const obj = asObject(json, path);
  const kind = oneSet(obj, path, PERMISSION_KINDS, ['matcher', 'uri_template']);
  const p = fieldPath(path, kind);
  switch (kind) {
    case 'and_rules':
      return allOf(compileSet(obj, kind, path, 'rules', compilePermission));
    case 'or_rules':
      return anyOf(compileSet(obj, kind, path, 'rules', compilePermission));
    case 'any':
      return anyField(obj, path);
    case 'header':
      return compileHeader(obj.header, p);
    case 'url_path':
      return compileUrlPath(obj.url_path, p);
    case 'destination_ip': {
      const cidr = compileCidrRange(obj.destination_ip, p);
      return (r) => cidr.matches(r.req.socket?.localAddress);
    }
    case 'destination_port': {
      const port = intInRange(obj, kind, path, 0, 65535, 0);
      return (r) => r.req.socket?.localPort === port;
    }
    case 'destination_port_range': {
      const range = optObject(obj, kind, path)!;
      checkFields(range, p, { supported: ['start', 'end'], refused: {} });
      const start = intInRange(range, 'start', p, -(2 ** 31), 2 ** 31 - 1, 0);
      const end = intInRange(range, 'end', p, -(2 ** 31), 2 ** 31 - 1, 0);
      // type.v3.Int32Range is [start, end).
      return (r) => {
        const port = r.req.socket?.localPort;
        return port !== undefined && port >= start && port < end;
      };
    }
    case 'metadata':
      return compileMetadata(obj.metadata, p);
    case 'not_rule': {
      const inner = compilePermission(obj.not_rule, p);
      return (r) => !inner(r);
    }
    case 'requested_server_name': {
      const m = compileStringMatcher(obj.requested_server_name, p);
      return (r) => m.matches(r.downstreamSecurity?.sni ?? '');
    }
  }
  throw new ConfigError(p, 'unreachable');
}

/**
 * Envoy's authenticated matcher: needs a TLS connection; without principal_name any TLS peer matches;
 * otherwise any URI SAN, then any DNS SAN, then the subject (empty when no certificate) may match.
 */
function authenticated(m: StringMatcher | undefined): RbacMatcher {
  return (r) => {
    const sec = r.downstreamSecurity;
    if (sec === undefined) return false;
    if (m === undefined) return true;
    for (const uri of sec.peerUriSans) if (m.matches(uri)) return true;
    for (const dns of sec.peerDnsSans) if (m.matches(dns)) return true;
    return m.matches(sec.peerSubject ?? '');
  };
}

const PRINCIPAL_KINDS = [
  'and_ids',
  'or_ids',
  'any',
  'authenticated',
  'source_ip',
  'direct_remote_ip',
  'remote_ip',
  'header',
  'url_path',
  'metadata',
  'not_id',
];

export function compilePrincipal(json: Json | undefined, path: string): RbacMatcher {
  const obj = asObject(json, path);
  const kind = oneSet(obj, path, PRINCIPAL_KINDS, ['filter_state', 'custom']);
  const p = fieldPath(path, kind);
  switch (kind) {
    case 'and_ids':
      return allOf(compileSet(obj, kind, path, 'ids', compilePrincipal));
    case 'or_ids':
      return anyOf(compileSet(obj, kind, path, 'ids', compilePrincipal));
    case 'any':
      return anyField(obj, path);
    case 'authenticated': {
      const auth = asObject(obj.authenticated, p);
      checkFields(auth, p, { supported: ['principal_name'], refused: {} });
      const name = auth.principal_name;
      return authenticated(
        name === undefined || name === null
          ? undefined
          : compileStringMatcher(name, fieldPath(p, 'principal_name')),
      );
    }
    case 'source_ip':
    case 'direct_remote_ip': {
      const cidr = compileCidrRange(obj[kind], p);
      return (r) => cidr.matches(r.req.socket?.remoteAddress);
    }
    case 'remote_ip': {
      const cidr = compileCidrRange(obj.remote_ip, p);
      return (r) => cidr.matches(r.sourceIp);
    }
    case 'header':
      return compileHeader(obj.header, p);
    case 'url_path':
      return compileUrlPath(obj.url_path, p);
    case 'metadata':
      return compileMetadata(obj.metadata, p);
    case 'not_id': {
      const inner = compilePrincipal(obj.not_id, p);
      return (r) => !inner(r);
    }
  }
  throw new ConfigError(p, 'unreachable');
}
