/**
 * Selecting PEAK_EWMA in a Cluster. Envoy's way to name a load balancer that is not an lb_policy enum
 * value is load_balancing_policy: a list of typed extensions, the first supported one wins. Weft's
 * policy has no compiled proto of its own, so it is written as an xds.type.v3.TypedStruct (the xDS
 * type made for configuring extensions by type URL with a free-form Struct), which the bootstrap
 * and xDS validator already knows how to check:
 *
 *   load_balancing_policy:
 *     policies:
 *       - typed_extension_config:
 *           name: weft.lb.peak_ewma
 *           typed_config:
 *             "@type": type.googleapis.com/xds.type.v3.TypedStruct
 *             type_url: weft.dev/lb/peak_ewma
 *             value: { decay: 10s, default_rtt: 0.030s }
 */
import { parseDurationMs } from '../../../core/duration.ts';
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { asObject, isSet, optionalObject, optionalString, rejectUnsupported } from '../config-fields.ts';
import type { PeakEwmaConfig } from '../types.ts';
import { DEFAULT_PEAK_EWMA } from './peak-ewma.ts';

export const PEAK_EWMA_TYPE_URL = 'weft.dev/lb/peak_ewma';
const TYPED_STRUCT_TYPES = new Set([
  'type.googleapis.com/xds.type.v3.TypedStruct',
  'type.googleapis.com/udpa.type.v1.TypedStruct',
]);

/**
 * The PEAK_EWMA settings when the cluster selects it through load_balancing_policy; undefined when
 * load_balancing_policy is unset (lb_policy then decides).
 */
export function compileLoadBalancingPolicy(c: JsonObject, path: string): PeakEwmaConfig | undefined {
  if (!isSet(c.load_balancing_policy)) return undefined;
  const lbpPath = `${path}.load_balancing_policy`;
  if (isSet(c.lb_policy) && c.lb_policy !== 'LOAD_BALANCING_POLICY_CONFIG') {
    throw new ConfigError(
      `${path}.lb_policy`,
      `conflicts with load_balancing_policy (leave it unset or LOAD_BALANCING_POLICY_CONFIG)`,
    );
  }
  const lbp = asObject(c.load_balancing_policy, lbpPath);
  rejectUnsupported(lbp, lbpPath, ['policies']);
  const policies = Array.isArray(lbp.policies) ? lbp.policies : [];
  for (let i = 0; i < policies.length; i++) {
    const found = compilePolicy(policies[i], `${lbpPath}.policies[${i}]`);
    if (found !== undefined) return found;
  }
  throw new ConfigError(
    lbpPath,
    `not supported by Weft: no policy in the list is an xds.type.v3.TypedStruct with type_url "${PEAK_EWMA_TYPE_URL}" (Weft's PEAK_EWMA)`,
  );
}

/** One list entry: its settings if it is Weft's peak EWMA, undefined for policies Weft lacks. */
function compilePolicy(json: Json, path: string): PeakEwmaConfig | undefined {
  const policy = asObject(json, path);
  rejectUnsupported(policy, path, ['typed_extension_config']);
  const ext = optionalObject(policy, 'typed_extension_config', path);
  if (ext === undefined) throw new ConfigError(`${path}.typed_extension_config`, 'is required');
  const extPath = `${path}.typed_extension_config`;
  rejectUnsupported(ext, extPath, ['name', 'typed_config']);
  const typed = optionalObject(ext, 'typed_config', extPath);
  if (typed === undefined) throw new ConfigError(`${extPath}.typed_config`, 'is required');
  if (!TYPED_STRUCT_TYPES.has(typed['@type'] as string)) return undefined;
  const typedPath = `${extPath}.typed_config`;
  if (optionalString(typed, 'type_url', typedPath) !== PEAK_EWMA_TYPE_URL) return undefined;
  return compilePeakEwmaSettings(typed.value, `${typedPath}.value`);
}

function compilePeakEwmaSettings(json: Json | undefined, path: string): PeakEwmaConfig {
  if (!isSet(json)) return DEFAULT_PEAK_EWMA;
  const value = asObject(json, path);
  rejectUnsupported(value, path, ['decay', 'default_rtt']);
  const decayMs = isSet(value.decay)
    ? parseDurationMs(value.decay, `${path}.decay`)
    : DEFAULT_PEAK_EWMA.decayMs;
  if (decayMs <= 0) throw new ConfigError(`${path}.decay`, 'must be greater than 0');
  const defaultRttMs = isSet(value.default_rtt)
    ? parseDurationMs(value.default_rtt, `${path}.default_rtt`)
    : DEFAULT_PEAK_EWMA.defaultRttMs;
  if (defaultRttMs <= 0) throw new ConfigError(`${path}.default_rtt`, 'must be greater than 0');
  return { decayMs, defaultRttMs };
}
