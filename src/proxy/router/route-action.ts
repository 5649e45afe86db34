/**
 * Route.route (RouteAction) and Route.direct_response, compiled into the runtime actions of types.ts.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../core/errors.ts';
import { parseDurationMs } from '../../core/duration.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, objectItems, optBool, optNumber, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileHashPolicy } from './hash-policy.ts';
import type { HashPolicy } from './hash-policy.ts';
import { compileHeaderMutation } from './header-mutation.ts';
import { PathRewriter } from './path-rewrite.ts';
import { compileRegexRewrite } from './regex.ts';
import { compileMirrorPolicies } from './mirror-policy.ts';
import type { MirrorPolicy } from './mirror-policy.ts';
import { compileRateLimits } from './rate-limit-actions.ts';
import type { RateLimitPolicyEntry } from './rate-limit-actions.ts';
import { compileRetryPolicy } from './retry-policy.ts';
import type { GrpcTimeoutPolicy } from './deadline.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { hasControlChar, toWire } from './strings.ts';
import type {
  ConnectConfig,
  DirectResponseAction,
  ForwardAction,
  HashResult,
  RouteRequest,
  WeightedPick,
} from './types.ts';

/** Envoy's default upstream timeout for a route. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

const ROUTE_ACTION_FIELDS = {
  supported: [
    'cluster',
    'weighted_clusters',
    'prefix_rewrite',
    'regex_rewrite',
    'host_rewrite_literal',
    'auto_host_rewrite',
    'timeout',
    'idle_timeout',
    'hash_policy',
    'upgrade_configs',
    'retry_policy',
    'request_mirror_policies',
    'rate_limits',
    'max_grpc_timeout',
    'grpc_timeout_offset',
    'max_stream_duration',
  ],
  refused: {
    cluster_header: null,
    cluster_specifier_plugin: null,
    inline_cluster_specifier_plugin: null,
    cluster_not_found_response_code: 'SERVICE_UNAVAILABLE',
    metadata_match: null,
    path_rewrite_policy: null,
    host_rewrite_header: null,
    host_rewrite_path_regex: null,
    append_x_forwarded_host: null,
    early_data_policy: null,
    retry_policy_typed_config: null,
    priority: 'DEFAULT',
    include_vh_rate_limits: null,
    cors: null,
    internal_redirect_policy: null,
    internal_redirect_action: 'PASS_THROUGH_INTERNAL_REDIRECT',
    max_internal_redirects: null,
    hedge_policy: null,
  },
};

const CLUSTER_WEIGHT_FIELDS = {
  supported: [
    'name',
    'weight',
    'request_headers_to_add',
    'request_headers_to_remove',
    'response_headers_to_add',
    'response_headers_to_remove',
  ],
  refused: {
    cluster_header: null,
    metadata_match: null,
    typed_per_filter_config: null,
    host_rewrite_literal: null,
  },
  maps: ['typed_per_filter_config'],
};

const UINT32_MAX = 2 ** 32 - 1;

/** weighted_clusters: cluster i owns the interval [ends[i-1], ends[i]) of [0, total). */
export class WeightedClusters {
  private readonly picks: readonly WeightedPick[];
  private readonly ends: readonly number[];
  readonly total: number;

  constructor(entries: readonly { pick: WeightedPick; weight: number }[]) {
    const ends: number[] = [];
    let total = 0;
    for (const e of entries) {
      total += e.weight;
      ends.push(total);
    }
    this.picks = entries.map((e) => e.pick);
    this.ends = ends;
    this.total = total;
  }

  pick(random: number): WeightedPick {
    let selected = Math.floor(random * this.total);
    if (!(selected >= 0)) selected = 0;
    if (selected >= this.total) selected = this.total - 1;
    const ends = this.ends;
    // Binary search for the first interval end above `selected` (weight-0 entries own empty intervals).
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid] > selected) hi = mid;
      else lo = mid + 1;
    }
    return this.picks[lo];
  }
}

function compileWeightedClusters(json: Json, path: string): WeightedClusters {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['clusters', 'total_weight'],
    refused: { runtime_key_prefix: null, header_name: null },
  });
  const items = objectItems(obj, 'clusters', path);
  if (items.length === 0)
    throw new ConfigError(fieldPath(path, 'clusters'), 'at least one cluster is required');
  const entries = items.map(({ item, path: p }) => {
    checkFields(item, p, CLUSTER_WEIGHT_FIELDS);
    const name = optString(item, 'name', p);
    if (!name) throw new ConfigError(fieldPath(p, 'name'), 'required');
    const weight = optNumber(item, 'weight', p) ?? 0;
    if (!Number.isInteger(weight) || weight < 0 || weight > UINT32_MAX)
      throw new ConfigError(fieldPath(p, 'weight'), `must be an integer from 0 to ${UINT32_MAX}`);
    const requestHeaders = compileHeaderMutation(item, p, 'request');
    const responseHeaders = compileHeaderMutation(item, p, 'response');
    const pick: WeightedPick = Object.freeze({
      cluster: name,
      ...(requestHeaders ? { requestHeaders } : {}),
      ...(responseHeaders ? { responseHeaders } : {}),
    });
    return { pick, weight };
  });
  const sum = entries.reduce((s, e) => s + e.weight, 0);
  if (sum === 0)
    throw new ConfigError(fieldPath(path, 'clusters'), 'the sum of the weights must be greater than 0');
  if (sum > UINT32_MAX)
    throw new ConfigError(
      fieldPath(path, 'clusters'),
      `the sum of the weights must not exceed ${UINT32_MAX}`,
    );
  const total = optNumber(obj, 'total_weight', path) ?? 0;
  if (total > 0 && total !== sum)
    throw new ConfigError(fieldPath(path, 'total_weight'), `is ${total} but the weights add up to ${sum}`);
  return new WeightedClusters(entries);
}

class Forward implements ForwardAction {
  readonly kind = 'route';
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number | undefined;
  readonly upgradeOverrides: ReadonlyMap<string, boolean>;
  readonly connectConfig: ConnectConfig | undefined;
  readonly retryPolicy: RetryPolicy | undefined;
  readonly mirrorPolicies: readonly MirrorPolicy[] | undefined;
  readonly rateLimits: readonly RateLimitPolicyEntry[] | undefined;
  readonly grpcTimeout: GrpcTimeoutPolicy | undefined;
  private readonly single: WeightedPick | undefined;
  private readonly weighted: WeightedClusters | undefined;
  private readonly rewriter: PathRewriter;
  private readonly hashPolicy: HashPolicy | undefined;

  constructor(init: {
    target: WeightedPick | WeightedClusters;
    rewriter: PathRewriter;
    hostRewriteLiteral: string | undefined;
    autoHostRewrite: boolean;
    timeoutMs: number;
    idleTimeoutMs: number | undefined;
    hashPolicy: HashPolicy | undefined;
    upgradeOverrides: ReadonlyMap<string, boolean>;
    connectConfig: ConnectConfig | undefined;
    retryPolicy: RetryPolicy | undefined;
    mirrorPolicies: readonly MirrorPolicy[] | undefined;
    rateLimits: readonly RateLimitPolicyEntry[] | undefined;
    grpcTimeout: GrpcTimeoutPolicy | undefined;
  }) {
    if (init.target instanceof WeightedClusters) this.weighted = init.target;
    else this.single = init.target;
    this.rewriter = init.rewriter;
    this.hostRewriteLiteral = init.hostRewriteLiteral;
    this.autoHostRewrite = init.autoHostRewrite;
    this.timeoutMs = init.timeoutMs;
    this.idleTimeoutMs = init.idleTimeoutMs;
    this.hashPolicy = init.hashPolicy;
    this.upgradeOverrides = init.upgradeOverrides;
    this.connectConfig = init.connectConfig;
    this.retryPolicy = init.retryPolicy;
    this.mirrorPolicies = init.mirrorPolicies;
    this.rateLimits = init.rateLimits;
    this.grpcTimeout = init.grpcTimeout;
  }

  pickCluster(random: number): WeightedPick {
    return this.single ?? this.weighted!.pick(random);
  }

  rewritePath(path: string): string {
    return this.rewriter.rewrite(path);
  }

  computeHash(req: RouteRequest): HashResult | undefined {
    return this.hashPolicy?.compute(req);
  }
}

interface UpgradeConfigs {
  readonly overrides: ReadonlyMap<string, boolean>;
  readonly connectConfig: ConnectConfig | undefined;
}

/**
 * upgrade_configs of a route. A CONNECT entry must carry connect_config: Weft terminates CONNECT and sends
 * the payload to the cluster as raw TCP; forwarding the CONNECT request itself upstream (Envoy's behaviour
 * without connect_config) is not implemented, so such a route is refused rather than left to fail.
 */
function compileUpgradeConfigs(obj: JsonObject, path: string): UpgradeConfigs {
  const overrides = new Map<string, boolean>();
  let connectConfig: ConnectConfig | undefined;
  for (const { item, path: p } of objectItems(obj, 'upgrade_configs', path)) {
    checkFields(item, p, { supported: ['upgrade_type', 'enabled', 'connect_config'], refused: {} });
    const type = (optString(item, 'upgrade_type', p) ?? '').toLowerCase();
    if (!type) throw new ConfigError(fieldPath(p, 'upgrade_type'), 'required');
    if (overrides.has(type))
      throw new ConfigError(fieldPath(p, 'upgrade_type'), `duplicate upgrade type ${JSON.stringify(type)}`);
    const enabled = optBool(item, 'enabled', p) ?? true;
    overrides.set(type, enabled);
    const connect = optObject(item, 'connect_config', p);
    if (connect !== undefined) {
      if (type !== 'connect')
        throw new ConfigError(fieldPath(p, 'connect_config'), 'only applies to upgrade_type CONNECT');
      // proxy_protocol_config and allow_post are not implemented.
      checkFields(connect, fieldPath(p, 'connect_config'), {
        supported: [],
        refused: { proxy_protocol_config: null, allow_post: null },
      });
      connectConfig = Object.freeze({});
    } else if (type === 'connect' && enabled) {
      throw new ConfigError(
        p,
        'CONNECT without connect_config (forwarding the CONNECT request upstream) is not supported by Weft: set connect_config to terminate it',
      );
    }
  }
  return { overrides, connectConfig };
}

/**
 * Compiles a RouteAction; `matchedLength` comes from the route's match (see PathRewriter). `inheritedMirrors`
 * are the virtual host's (else the route configuration's) request_mirror_policies, used when the route sets none.
 */
export function compileRouteAction(
  json: Json,
  path: string,
  matchedLength: number,
  inheritedMirrors?: readonly MirrorPolicy[],
): ForwardAction {
  const obj = asObject(json, path);
  checkFields(obj, path, ROUTE_ACTION_FIELDS);
  const hasCluster = obj.cluster !== undefined && obj.cluster !== null;
  const hasWeighted = obj.weighted_clusters !== undefined && obj.weighted_clusters !== null;
  if (hasCluster && hasWeighted)
    throw new ConfigError(
      fieldPath(path, 'weighted_clusters'),
      'conflicts with "cluster": only one may be set',
    );
  let target: WeightedPick | WeightedClusters;
  if (hasWeighted) {
    target = compileWeightedClusters(obj.weighted_clusters, fieldPath(path, 'weighted_clusters'));
  } else {
    const cluster = optString(obj, 'cluster', path);
    if (!cluster) throw new ConfigError(path, 'one of cluster or weighted_clusters is required');
    target = Object.freeze({ cluster });
  }
  const prefix = optString(obj, 'prefix_rewrite', path) || undefined;
  const hasRegex = obj.regex_rewrite !== undefined && obj.regex_rewrite !== null;
  if (prefix !== undefined && hasRegex)
    throw new ConfigError(
      fieldPath(path, 'regex_rewrite'),
      'conflicts with "prefix_rewrite": only one may be set',
    );
  if (prefix !== undefined && hasControlChar(prefix, true))
    throw new ConfigError(fieldPath(path, 'prefix_rewrite'), 'must not contain spaces or control characters');
  const regex = hasRegex
    ? compileRegexRewrite(obj.regex_rewrite, fieldPath(path, 'regex_rewrite'))
    : undefined;
  const hostLiteral = optString(obj, 'host_rewrite_literal', path) || undefined;
  const autoHost = optBool(obj, 'auto_host_rewrite', path) ?? false;
  if (hostLiteral !== undefined && autoHost)
    throw new ConfigError(
      fieldPath(path, 'auto_host_rewrite'),
      'conflicts with "host_rewrite_literal": only one may be set',
    );
  if (hostLiteral !== undefined && hasControlChar(hostLiteral, true)) {
    throw new ConfigError(
      fieldPath(path, 'host_rewrite_literal'),
      'must not contain spaces or control characters',
    );
  }
  const idle = obj.idle_timeout;
  const upgrades = compileUpgradeConfigs(obj, path);
  return new Forward({
    target,
    rewriter: new PathRewriter(matchedLength, prefix === undefined ? undefined : toWire(prefix), regex),
    hostRewriteLiteral: hostLiteral === undefined ? undefined : toWire(hostLiteral),
    autoHostRewrite: autoHost,
    timeoutMs:
      obj.timeout === undefined || obj.timeout === null
        ? DEFAULT_ROUTE_TIMEOUT_MS
        : parseDurationMs(obj.timeout, fieldPath(path, 'timeout')),
    idleTimeoutMs:
      idle === undefined || idle === null
        ? undefined
        : parseDurationMs(idle, fieldPath(path, 'idle_timeout')),
    hashPolicy: compileHashPolicy(objectItems(obj, 'hash_policy', path)),
    upgradeOverrides: upgrades.overrides,
    connectConfig: upgrades.connectConfig,
    retryPolicy:
      obj.retry_policy === undefined || obj.retry_policy === null
        ? undefined
        : compileRetryPolicy(obj.retry_policy, fieldPath(path, 'retry_policy')),
    mirrorPolicies: compileMirrorPolicies(obj, path) ?? inheritedMirrors,
    rateLimits: compileRateLimits(obj, path),
    grpcTimeout: compileGrpcTimeout(obj, path),
  });
}

function optDurationMs(obj: JsonObject, key: string, path: string): number | undefined {
  const v = obj[key];
  return v === undefined || v === null ? undefined : parseDurationMs(v, fieldPath(path, key));
}

/**
 * max_grpc_timeout / grpc_timeout_offset (deprecated, but what Istio sets), or MaxStreamDuration's
 * grpc_timeout_header_max / grpc_timeout_header_offset, which take precedence as in Envoy.
 */
function compileGrpcTimeout(obj: JsonObject, path: string): GrpcTimeoutPolicy | undefined {
  const msd = optObject(obj, 'max_stream_duration', path);
  if (msd !== undefined) {
    const p = fieldPath(path, 'max_stream_duration');
    // Weft has no stream-duration limit; only the grpc-timeout header fields are implemented.
    checkFields(msd, p, {
      supported: ['grpc_timeout_header_max', 'grpc_timeout_header_offset'],
      refused: { max_stream_duration: null },
    });
    const max = optDurationMs(msd, 'grpc_timeout_header_max', p);
    if (max === undefined) {
      if (optDurationMs(msd, 'grpc_timeout_header_offset', p) !== undefined)
        throw new ConfigError(
          fieldPath(p, 'grpc_timeout_header_offset'),
          'not supported by Weft without grpc_timeout_header_max',
        );
      return undefined;
    }
    return Object.freeze({
      maxMs: max,
      offsetMs: optDurationMs(msd, 'grpc_timeout_header_offset', p) ?? 0,
      offsetMayExpire: true,
      rewriteHeader: false,
    });
  }
  const max = optDurationMs(obj, 'max_grpc_timeout', path);
  const offset = optDurationMs(obj, 'grpc_timeout_offset', path);
  if (max === undefined) {
    // Envoy reads the offset only together with max_grpc_timeout; an offset alone would be silently ignored.
    if (offset !== undefined && offset > 0)
      throw new ConfigError(fieldPath(path, 'grpc_timeout_offset'), 'has no effect without max_grpc_timeout');
    return undefined;
  }
  return Object.freeze({ maxMs: max, offsetMs: offset ?? 0, offsetMayExpire: false, rewriteHeader: true });
}

/** Envoy's default for RouteConfiguration.max_direct_response_body_size_bytes. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES = 4096;

/** A config.core.v3.DataSource (inline_string, inline_bytes or filename), read once at compile time. */
export function readDataSource(json: Json, path: string): Buffer {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['inline_string', 'inline_bytes', 'filename'],
    refused: { environment_variable: null, watched_directory: null },
  });
  const set = ['inline_string', 'inline_bytes', 'filename'].filter(
    (k) => obj[k] !== undefined && obj[k] !== null,
  );
  if (set.length === 0)
    throw new ConfigError(path, 'one of inline_string, inline_bytes or filename is required');
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  const inlineString = optString(obj, 'inline_string', path);
  if (inlineString !== undefined) return Buffer.from(inlineString, 'utf8');
  const inlineBytes = optString(obj, 'inline_bytes', path);
  if (inlineBytes !== undefined) return Buffer.from(inlineBytes, 'base64');
  const filename = optString(obj, 'filename', path) ?? '';
  if (!filename) throw new ConfigError(fieldPath(path, 'filename'), 'must not be empty');
  try {
    return readFileSync(filename);
  } catch (err) {
    throw new ConfigError(
      fieldPath(path, 'filename'),
      `cannot read ${JSON.stringify(filename)}: ${(err as Error).message}`,
    );
  }
}

export function compileDirectResponse(json: Json, path: string, maxBodyBytes: number): DirectResponseAction {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['status', 'body'], refused: {} });
  const status = optNumber(obj, 'status', path);
  if (status === undefined || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new ConfigError(
      fieldPath(path, 'status'),
      `must be an HTTP status from 200 to 599, got ${status === undefined ? 'nothing' : status}`,
    );
  }
  let body: Buffer | undefined;
  if (optObject(obj, 'body', path)) {
    body = readDataSource(obj.body, fieldPath(path, 'body'));
    if (body.length > maxBodyBytes) {
      throw new ConfigError(
        fieldPath(path, 'body'),
        `is ${body.length} bytes, above max_direct_response_body_size_bytes (${maxBodyBytes})`,
      );
    }
  }
  return Object.freeze({ kind: 'direct_response' as const, status, body });
}
