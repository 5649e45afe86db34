/**
 * The RBAC filter (`envoy.filters.http.rbac`). Shadow rules run first and only count and annotate; then
 * the enforced rules decide: ALLOW passes a request iff some policy matches, DENY refuses it iff some
 * policy matches, LOG passes everything and records whether a policy matched in the access-log hint.
 * A refused request gets 403 "RBAC: access denied" (gRPC: PERMISSION_DENIED).
 *
 * Stats, as Envoy names them: `http.<hcm stat_prefix>.rbac.<rules_stat_prefix>allowed|denied` and
 * `http.<hcm stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`.
 */
import type { Counter, StatsStore } from '../../stats/store.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import { RBAC_FILTER_NAME } from './rbac-config.ts';
import type { RbacConfig, RbacEngine } from './rbac-config.ts';
import type { RbacRequest } from './rbac-matchers.ts';

export const RBAC_DENIED_BODY = 'RBAC: access denied';
const GRPC_PERMISSION_DENIED = 7;
/** Envoy keeps the access-log hint in this namespace, where access loggers look for it. */
const COMMON_METADATA_NAMESPACE = 'envoy.common';

export class RbacStats {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly shadowAllowed: Counter;
  readonly shadowDenied: Counter;

  constructor(store: StatsStore, hcmStatPrefix: string, config: RbacConfig) {
    const p = `http.${hcmStatPrefix}.rbac.`;
    this.allowed = store.counter(`${p}${config.rulesStatPrefix}allowed`);
    this.denied = store.counter(`${p}${config.rulesStatPrefix}denied`);
    this.shadowAllowed = store.counter(`${p}${config.shadowRulesStatPrefix}shadow_allowed`);
    this.shadowDenied = store.counter(`${p}${config.shadowRulesStatPrefix}shadow_denied`);
  }
}

/** The first policy (by name) that matches the request, or undefined. */
export function matchingPolicy(engine: RbacEngine, r: RbacRequest): string | undefined {
  for (const p of engine.policies) if (p.permission(r) && p.principal(r)) return p.name;
  return undefined;
}

/** Whether the engine lets the request through (LOG always does). */
export function engineAllows(engine: RbacEngine, matched: string | undefined): boolean {
  switch (engine.action) {
    case 'ALLOW':
      return matched !== undefined;
    case 'DENY':
      return matched === undefined;
    case 'LOG':
      return true;
  }
}

function metadataOf(stream: HttpStream, namespace: string): Record<string, unknown> {
  let md = stream.dynamicMetadata.get(namespace);
  if (md === undefined) stream.dynamicMetadata.set(namespace, (md = {}));
  return md;
}

export class RbacFilter implements HttpFilter {
  readonly name: string;
  private readonly config: RbacConfig;
  private readonly stats: RbacStats;

  constructor(name: string, config: RbacConfig, stats: RbacStats) {
    this.name = name;
    this.config = config;
    this.stats = stats;
  }

  onRequest(stream: HttpStream): FilterStatus {
    const { rules, shadowRules } = this.config;
    if (shadowRules !== undefined) {
      const matched = matchingPolicy(shadowRules, stream);
      const allowed = engineAllows(shadowRules, matched);
      (allowed ? this.stats.shadowAllowed : this.stats.shadowDenied).inc();
      const md = metadataOf(stream, RBAC_FILTER_NAME);
      const prefix = this.config.shadowRulesStatPrefix;
      if (matched !== undefined) md[`${prefix}shadow_effective_policy_id`] = matched;
      md[`${prefix}shadow_engine_result`] = allowed ? 'allowed' : 'denied';
    }
    if (rules === undefined) return 'continue';
    const matched = matchingPolicy(rules, stream);
    if (rules.action === 'LOG') {
      const hint = matched !== undefined;
      metadataOf(stream, COMMON_METADATA_NAMESPACE).access_log_hint = hint;
      metadataOf(stream, RBAC_FILTER_NAME).access_log_hint = hint;
    }
    if (engineAllows(rules, matched)) {
      this.stats.allowed.inc();
      return 'continue';
    }
    this.stats.denied.inc();
    stream.sendLocalReply(403, null, RBAC_DENIED_BODY, undefined, GRPC_PERMISSION_DENIED);
    return 'stop';
  }
}
