/**
 * Access log filters (config.accesslog.v3.AccessLogFilter), compiled once into predicates over an HTTP
 * stream or a TCP session: a line is written only when the access log's filter accepts the exchange.
 */
import { GRPC_STATUS_NAMES } from '../../core/grpc-status.ts';
import { ConfigError, grpcStatusForHttp } from '../../core/errors.ts';
import { hashString } from '../../core/hash.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import {
  asObject,
  objectItems,
  onlyFields,
  optBool,
  optObject,
  optString,
  stringItems,
} from '../config-proto/fields.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { compileFractionalPercent } from '../http/filters/fault-config.ts';
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import { compileHeaderMatcher } from '../router/header-matcher.ts';
import type { RouteRequest } from '../router/types.ts';

export interface AccessLogFilter {
  http(stream: HttpStream): boolean;
  tcp(session: TcpSession): boolean;
}

const FILTERS = [
  'status_code_filter',
  'duration_filter',
  'not_health_check_filter',
  'traceable_filter',
  'runtime_filter',
  'and_filter',
  'or_filter',
  'header_filter',
  'response_flag_filter',
  'grpc_status_filter',
];
const REFUSED = {
  extension_filter: 'not supported by Weft',
  metadata_filter: 'not supported by Weft',
  log_type_filter: 'not supported by Weft',
};

const RESPONSE_FLAGS = new Set(
  'LH UH UT LR UR UF UC UO NR DI FI RL UAEX RLSE DC URX SI IH DPE UMSDR RFCF NFCF DT UPE NC OM DF DO DR'.split(
    ' ',
  ),
);

// Envoy's GrpcStatusFilter enum spells code 1 CANCELED.
const GRPC_STATUSES = GRPC_STATUS_NAMES.map((n) => (n === 'CANCELLED' ? 'CANCELED' : n));

/** A TCP session has no request headers: header filters see an empty request. */
const NO_REQUEST: RouteRequest = {
  authority: '',
  path: '',
  method: '',
  headers: {},
  scheme: '',
  sourceIp: '',
};

function durationOf(s: { readonly startMs: number; readonly endMs: number }): number {
  return Math.floor(s.endMs - s.startMs);
}

/** ComparisonFilter: op against a RuntimeUInt32's default (Weft has no runtime, so the default applies). */
function compileComparison(json: Json | undefined, path: string): (n: number) => boolean {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['op', 'value']);
  const op = optString(obj, 'op', path) ?? 'EQ';
  const valuePath = fieldPath(path, 'value');
  const value = asObject(obj.value, valuePath);
  onlyFields(value, valuePath, ['default_value', 'runtime_key']);
  const n = typeof value.default_value === 'number' ? value.default_value : 0;
  switch (op) {
    case 'EQ':
      return (x) => x === n;
    case 'GE':
      return (x) => x >= n;
    case 'LE':
      return (x) => x <= n;
    default:
      throw new ConfigError(fieldPath(path, 'op'), `unknown value ${JSON.stringify(op)} (EQ, GE or LE)`);
  }
}

function emptyMessage(obj: JsonObject, key: string, path: string): void {
  const inner = optObject(obj, key, path);
  if (inner !== undefined) onlyFields(inner, fieldPath(path, key), []);
}

function all(filters: readonly AccessLogFilter[]): AccessLogFilter {
  return {
    http: (s) => filters.every((f) => f.http(s)),
    tcp: (s) => filters.every((f) => f.tcp(s)),
  };
}

function any(filters: readonly AccessLogFilter[]): AccessLogFilter {
  return {
    http: (s) => filters.some((f) => f.http(s)),
    tcp: (s) => filters.some((f) => f.tcp(s)),
  };
}

function compileList(obj: JsonObject, path: string): AccessLogFilter[] {
  const items = objectItems(obj, 'filters', path);
  if (items.length < 2)
    throw new ConfigError(fieldPath(path, 'filters'), `needs at least 2 filters, got ${items.length}`);
  return items.map(({ item, path: p }) => compileAccessLogFilter(item, p));
}

function hasFlag(flags: string, wanted: ReadonlySet<string>): boolean {
  if (flags === '') return false;
  if (wanted.size === 0) return true;
  for (const f of flags.split(',')) if (wanted.has(f)) return true;
  return false;
}

/** The response's gRPC status as Envoy's filter sees it: grpc-status, else mapped from the HTTP status. */
function grpcStatusOf(s: HttpStream): number {
  const g = s.grpcStatus;
  const n = g === undefined || g === '' ? NaN : Number(g);
  if (Number.isInteger(n) && n >= 0) return n;
  return s.responseStatus === 0 ? 2 : grpcStatusForHttp(s.responseStatus);
}

function compileRuntimeFilter(obj: JsonObject, path: string): AccessLogFilter {
  onlyFields(obj, path, ['runtime_key', 'percent_sampled', 'use_independent_randomness']);
  // Weft has no runtime layers, so runtime_key never overrides percent_sampled.
  const { numerator, denominator } = compileFractionalPercent(
    obj.percent_sampled,
    fieldPath(path, 'percent_sampled'),
  );
  const independent = optBool(obj, 'use_independent_randomness', path) ?? false;
  const sampled = (s: HttpStream): boolean => {
    const id = s.headers['x-request-id'];
    // As in Envoy, the request id decides unless independent randomness is asked for, so every proxy
    // on a request's path makes the same choice.
    const roll =
      !independent && typeof id === 'string' && id !== ''
        ? hashString(id) % denominator
        : Math.floor(Math.random() * denominator);
    return roll < numerator;
  };
  return { http: sampled, tcp: () => Math.floor(Math.random() * denominator) < numerator };
}

/** Compiles one AccessLogFilter. */
export function compileAccessLogFilter(json: Json | undefined, path: string): AccessLogFilter {
  const obj = asObject(json, path);
  onlyFields(obj, path, FILTERS, REFUSED);
  const set = FILTERS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0) throw new ConfigError(path, `one of ${FILTERS.join(', ')} is required`);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  const key = set[0];
  const p = fieldPath(path, key);
  switch (key) {
    case 'status_code_filter': {
      const inner = asObject(obj[key], p);
      onlyFields(inner, p, ['comparison']);
      const cmp = compileComparison(inner.comparison, fieldPath(p, 'comparison'));
      return { http: (s) => cmp(s.responseStatus), tcp: () => cmp(0) };
    }
    case 'duration_filter': {
      const inner = asObject(obj[key], p);
      onlyFields(inner, p, ['comparison']);
      const cmp = compileComparison(inner.comparison, fieldPath(p, 'comparison'));
      return { http: (s) => cmp(durationOf(s)), tcp: (s) => cmp(durationOf(s)) };
    }
    case 'not_health_check_filter':
      emptyMessage(obj, key, path);
      // Envoy marks health checks in its health_check HTTP filter, which Weft does not have: none is one.
      return { http: () => true, tcp: () => true };
    case 'traceable_filter':
      emptyMessage(obj, key, path);
      return { http: (s) => s.trace?.sampled === true, tcp: () => false };
    case 'runtime_filter':
      return compileRuntimeFilter(asObject(obj[key], p), p);
    case 'and_filter':
      return all(compileList(asObject(obj[key], p), p));
    case 'or_filter':
      return any(compileList(asObject(obj[key], p), p));
    case 'header_filter': {
      const inner = asObject(obj[key], p);
      onlyFields(inner, p, ['header']);
      const m = compileHeaderMatcher(inner.header, fieldPath(p, 'header'));
      return { http: (s) => m.matches(s), tcp: () => m.matches(NO_REQUEST) };
    }
    case 'response_flag_filter': {
      const inner = asObject(obj[key], p);
      onlyFields(inner, p, ['flags']);
      const flags = stringItems(inner, 'flags', p);
      flags.forEach((f, i) => {
        if (!RESPONSE_FLAGS.has(f))
          throw new ConfigError(
            indexPath(fieldPath(p, 'flags'), i),
            `unknown response flag ${JSON.stringify(f)}`,
          );
      });
      const wanted = new Set(flags);
      return { http: (s) => hasFlag(s.flags, wanted), tcp: (s) => hasFlag(s.flags, wanted) };
    }
    case 'grpc_status_filter': {
      const inner = asObject(obj[key], p);
      onlyFields(inner, p, ['statuses', 'exclude']);
      const statuses = new Set(
        stringItems(inner, 'statuses', p).map((name, i) => {
          const n = GRPC_STATUSES.indexOf(name);
          if (n < 0)
            throw new ConfigError(
              indexPath(fieldPath(p, 'statuses'), i),
              `unknown gRPC status ${JSON.stringify(name)}`,
            );
          return n;
        }),
      );
      const exclude = optBool(inner, 'exclude', p) ?? false;
      return { http: (s) => statuses.has(grpcStatusOf(s)) !== exclude, tcp: () => exclude };
    }
    default:
      throw new ConfigError(p, 'not supported by Weft');
  }
}
