/**
 * Route.route.rate_limits (RateLimit with its actions), compiled into descriptor producers: for a request,
 * each RateLimit yields one descriptor (a list of key/value entries) or nothing, when one of its actions
 * cannot produce an entry (Envoy's rule). The local rate limit filter matches these descriptors against
 * its configured ones.
 *
 * Weft's client identity: a request_headers action on x-forwarded-client-cert yields the client's
 * principal — the SPIFFE ID its mTLS handshake with this proxy verified; on a plaintext connection the
 * URI element of the header's first certificate (set by a trusted hop such as a gateway), else the raw
 * header — so that a per-principal limit compares principals rather than whole XFCC strings, and a
 * client with a verified identity cannot claim another one through the header.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, intInRange, objectItems, optBool, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileHeaderMatcher } from './header-matcher.ts';
import type { HeaderMatcher } from './header-matcher.ts';
import { RequestHeader } from './request-header.ts';
import type { RouteRequest } from './types.ts';

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

export type Descriptor = readonly DescriptorEntry[];

interface Action {
  /** The entry, or undefined when this action produces none for the request. */
  entry(req: RouteRequest): DescriptorEntry | undefined;
}

export interface RateLimitPolicyEntry {
  readonly stage: number;
  /** The descriptor for a request, or undefined when an action produced nothing. */
  descriptor(req: RouteRequest): Descriptor | undefined;
}

const XFCC = 'x-forwarded-client-cert';

/** The URI= element of the first certificate of an XFCC value (quoted or not), if any. */
export function xfccUri(value: string): string | undefined {
  const first = value.split(',')[0];
  for (const part of first.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim().toLowerCase() !== 'uri') continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

class RequestHeadersAction implements Action {
  private readonly header: RequestHeader;
  private readonly key: string;
  private readonly skipIfAbsent: boolean;
  private readonly principal: boolean;

  constructor(headerName: string, key: string, skipIfAbsent: boolean) {
    this.header = new RequestHeader(headerName);
    this.key = key;
    this.skipIfAbsent = skipIfAbsent;
    this.principal = this.header.name === XFCC;
  }

  entry(req: RouteRequest): DescriptorEntry | undefined {
    const raw = this.header.get(req);
    // skip_if_absent drops only this entry; without it the whole descriptor is dropped. Both mean "no entry"
    // here; the difference is carried by the `optional` flag the policy reads.
    if (this.principal) {
      const verified = req.downstreamSecurity?.peerPrincipal;
      if (verified !== undefined) return { key: this.key, value: verified };
    }
    if (raw === undefined) return undefined;
    const value = this.principal ? (xfccUri(raw) ?? raw) : raw;
    return { key: this.key, value };
  }

  get optional(): boolean {
    return this.skipIfAbsent;
  }
}

class RemoteAddressAction implements Action {
  entry(req: RouteRequest): DescriptorEntry | undefined {
    return req.sourceIp === '' ? undefined : { key: 'remote_address', value: req.sourceIp };
  }
}

class ConstantAction implements Action {
  private readonly constant: DescriptorEntry;
  constructor(key: string, value: string) {
    this.constant = Object.freeze({ key, value });
  }
  entry(): DescriptorEntry {
    return this.constant;
  }
}

class HeaderValueMatchAction implements Action {
  private readonly constant: DescriptorEntry;
  private readonly expectMatch: boolean;
  private readonly headers: readonly HeaderMatcher[];

  constructor(key: string, value: string, expectMatch: boolean, headers: readonly HeaderMatcher[]) {
    this.constant = Object.freeze({ key, value });
    this.expectMatch = expectMatch;
    this.headers = headers;
  }

  entry(req: RouteRequest): DescriptorEntry | undefined {
    let all = true;
    for (const h of this.headers)
      if (!h.matches(req)) {
        all = false;
        break;
      }
    return all === this.expectMatch ? this.constant : undefined;
  }
}

const ACTION_KINDS = ['request_headers', 'remote_address', 'generic_key', 'header_value_match'];
const REFUSED_ACTIONS: Readonly<Record<string, null>> = {
  source_cluster: null,
  destination_cluster: null,
  masked_remote_address: null,
  dynamic_metadata: null,
  metadata: null,
  extension: null,
  header_value_match_descriptor: null,
  query_parameter_value_match: null,
  query_parameters: null,
};

function required(obj: Record<string, Json>, key: string, path: string): string {
  const v = optString(obj, key, path);
  if (!v) throw new ConfigError(fieldPath(path, key), 'required');
  return v;
}

function compileAction(json: Json, path: string): { action: Action; optional: boolean } {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ACTION_KINDS, refused: REFUSED_ACTIONS });
  const set = ACTION_KINDS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0) throw new ConfigError(path, `one of ${ACTION_KINDS.join(', ')} is required`);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  const kind = set[0];
  const p = fieldPath(path, kind);
  const inner = optObject(obj, kind, path) ?? {};
  switch (kind) {
    case 'request_headers': {
      checkFields(inner, p, { supported: ['header_name', 'descriptor_key', 'skip_if_absent'], refused: {} });
      const a = new RequestHeadersAction(
        required(inner, 'header_name', p),
        required(inner, 'descriptor_key', p),
        optBool(inner, 'skip_if_absent', p) ?? false,
      );
      return { action: a, optional: a.optional };
    }
    case 'remote_address':
      checkFields(inner, p, { supported: [], refused: {} });
      return { action: new RemoteAddressAction(), optional: false };
    case 'generic_key':
      checkFields(inner, p, { supported: ['descriptor_value', 'descriptor_key'], refused: {} });
      return {
        action: new ConstantAction(
          optString(inner, 'descriptor_key', p) || 'generic_key',
          required(inner, 'descriptor_value', p),
        ),
        optional: false,
      };
    default: {
      checkFields(inner, p, {
        supported: ['descriptor_key', 'descriptor_value', 'expect_match', 'headers'],
        refused: {},
      });
      const headers = objectItems(inner, 'headers', p).map(({ item, path: hp }) =>
        compileHeaderMatcher(item, hp),
      );
      if (headers.length === 0) throw new ConfigError(fieldPath(p, 'headers'), 'at least one is required');
      return {
        action: new HeaderValueMatchAction(
          optString(inner, 'descriptor_key', p) || 'header_match',
          required(inner, 'descriptor_value', p),
          optBool(inner, 'expect_match', p) ?? true,
          headers,
        ),
        optional: false,
      };
    }
  }
}

class CompiledRateLimit implements RateLimitPolicyEntry {
  readonly stage: number;
  private readonly actions: readonly { action: Action; optional: boolean }[];

  constructor(stage: number, actions: readonly { action: Action; optional: boolean }[]) {
    this.stage = stage;
    this.actions = actions;
  }

  descriptor(req: RouteRequest): Descriptor | undefined {
    const out: DescriptorEntry[] = [];
    for (const a of this.actions) {
      const e = a.action.entry(req);
      if (e === undefined) {
        if (a.optional) continue;
        return undefined;
      }
      out.push(e);
    }
    return out.length === 0 ? undefined : out;
  }
}

/** `obj.rate_limits` (of a RouteAction at `path`); undefined when unset or empty. */
export function compileRateLimits(
  obj: JsonObject,
  path: string,
): readonly RateLimitPolicyEntry[] | undefined {
  const out = objectItems(obj, 'rate_limits', path).map(({ item, path: p }) => {
    checkFields(item, p, {
      supported: ['stage', 'actions'],
      refused: {
        disable_key: null,
        limit: null,
        apply_on_stream_done: null,
        hits_addend: null,
      },
    });
    const stage = intInRange(item, 'stage', p, 0, 10, 0);
    const actions = objectItems(item, 'actions', p).map(({ item: a, path: ap }) => compileAction(a, ap));
    if (actions.length === 0)
      throw new ConfigError(fieldPath(p, 'actions'), 'at least one action is required');
    return new CompiledRateLimit(stage, Object.freeze(actions));
  });
  return out.length === 0 ? undefined : Object.freeze(out);
}
