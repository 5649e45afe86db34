/**
 * Envoy's tag extraction: a flat stat name such as `cluster.foo.upstream_rq_200` becomes a
 * tag-extracted name (`cluster.upstream_rq`) plus tags (`envoy.response_code=200`,
 * `envoy.cluster_name=foo`). Prometheus metric names and labels are derived from the result, so
 * dashboards written against Envoy's /stats/prometheus work unchanged.
 *
 * A specifier's regex follows Envoy's stats_config.stats_tags contract: the first capture group is
 * the text removed from the name, the second (or the first, if there is only one) is the value.
 * Extraction runs once per stat, when it is created, never on the hot path.
 */

export type TagSpecifier =
  | {
      /** Tag name, e.g. `envoy.cluster_name` (becomes the label `envoy_cluster_name`). */
      readonly name: string;
      readonly regex: string;
      /** A value that must not become a tag (Envoy keeps `listener.admin.*` untagged this way). */
      readonly negativeMatch?: string;
    }
  | { readonly name: string; readonly fixedValue: string };

export interface ExtractedName {
  /** The stat name with every tag's removed text cut out. */
  readonly name: string;
  /** Tag name and value pairs in specifier order; a tag name appears at most once. */
  readonly tags: readonly (readonly [string, string])[];
}

/** A single dot-free name segment (Envoy's <TAG_VALUE>). */
const TAG_VALUE = '[^.]+';
/** An IPv4 or bracketed IPv6 address with `:` already turned into `_`, then `_port` (Envoy's <ADDRESS>). */
const ADDRESS = String.raw`(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)`;
const CIPHER = String.raw`[\w-]+`;
const ROUTE_CONFIG_NAME = String.raw`[\w\-.]+`;
/**
 * A cluster name. Envoy's default takes one dot-free token, which cuts a mesh cluster such as
 * `outbound|9080||reviews.default.svc.cluster.local` at its first dot; like Istio's sidecar bootstrap, a
 * name running to `.svc.cluster.local` is taken whole (dot-free names are unchanged).
 */
const CLUSTER_NAME = String.raw`(?:[^.]+\.)+?svc\.cluster\.local|[^.]+`;
/**
 * A connection manager's or tcp_proxy's stat prefix. Envoy's default takes one dot-free token; the control plane's
 * prefixes carry an IPv4 address (`outbound_10.0.0.1_9080`), which is taken whole (others are unchanged).
 */
const STAT_PREFIX = String.raw`(?:[\w-]+_)?\d{1,3}(?:\.\d{1,3}){3}_\d+|[^.]+`;

/**
 * Translates Envoy's tokenized specifier syntax into a regex: tokens are dot-separated, `*` is one
 * token, `**` is zero or more tokens, `$` is the single token captured as the value (removed
 * together with the dot that follows it, or the dot before it when it is last).
 */
export function tokensToRegex(pattern: string): string {
  const tokens = pattern.split('.');
  let out = '^';
  tokens.forEach((tok, i) => {
    const last = i === tokens.length - 1;
    if (tok === '$') {
      if (last) out = out.replace(/\\\.$/, '') + `(\\.(${TAG_VALUE}))$`;
      else out += `((${TAG_VALUE})\\.)`;
    } else if (tok === '**') {
      out += last ? '.*' : `(?:${TAG_VALUE}\\.)*`;
    } else {
      out += (tok === '*' ? TAG_VALUE : escapeRegex(tok)) + (last ? '$' : '\\.');
    }
  });
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function tokens(name: string, pattern: string): TagSpecifier {
  return { name, regex: tokensToRegex(pattern) };
}

/**
 * Envoy's default tag specifiers (source/common/config/well_known_names.cc), restricted to the stat
 * families a Weft proxy emits or is likely to: HTTP and TCP proxying, TLS, routing, rate limits,
 * external authorization and fault injection. Order matters only for the label order in output.
 */
export const ENVOY_DEFAULT_TAG_SPECIFIERS: readonly TagSpecifier[] = [
  // *_rq(_<response_code>)
  { name: 'envoy.response_code', regex: String.raw`_rq(_(\d{3}))$` },
  // *_rq_(<response_code_class>)xx
  { name: 'envoy.response_code_class', regex: String.raw`_rq_((\d))xx$` },
  // http.[<stat_prefix>.]user_agent.(<user_agent>.)*
  tokens('envoy.http_user_agent', 'http.*.user_agent.$.**'),
  // vhost.[<virtual_host>.]vcluster.(<virtual_cluster>.)*
  tokens('envoy.virtual_cluster', 'vhost.*.vcluster.$.**'),
  // http.[<stat_prefix>.]fault.(<downstream_cluster>.)*
  tokens('envoy.fault_downstream_cluster', 'http.*.fault.$.**'),
  // listener.[<address>.]ssl.ciphers.(<cipher>)
  { name: 'envoy.ssl_cipher', regex: String.raw`^listener\..*?\.ssl\.ciphers(\.(${CIPHER}))$` },
  // cluster.[<cluster_name>.]ssl.ciphers.(<cipher>)
  { name: 'cipher_suite', regex: String.raw`^cluster\.(?:${CLUSTER_NAME})\.ssl\.ciphers(\.(${CIPHER}))$` },
  // tcp.(<stat_prefix>.)*
  { name: 'envoy.tcp_prefix', regex: String.raw`^tcp\.((${STAT_PREFIX})\.)` },
  // ratelimit.(<stat_prefix>.)*
  tokens('envoy.ratelimit_prefix', 'ratelimit.$.**'),
  // cluster.(<cluster_name>.)*
  { name: 'envoy.cluster_name', regex: String.raw`^cluster\.((${CLUSTER_NAME})\.)` },
  // listener.[<address>.]http.(<stat_prefix>.)*
  { name: 'envoy.http_conn_manager_prefix', regex: String.raw`^listener\..*?\.http\.((${STAT_PREFIX})\.)` },
  // cluster.[<cluster>.]ext_authz.(<ext_authz_prefix>.)* and http.[<prefix>.]ext_authz.(<ext_authz_prefix>.)*
  tokens('envoy.ext_authz_prefix', 'cluster.*.ext_authz.$.**'),
  tokens('envoy.ext_authz_prefix', 'http.*.ext_authz.$.**'),
  // http.(<stat_prefix>.)*
  { name: 'envoy.http_conn_manager_prefix', regex: String.raw`^http\.((${STAT_PREFIX})\.)` },
  // listener.(<address|stat_prefix>.)*, except the admin listener
  {
    name: 'envoy.listener_address',
    regex: String.raw`^listener\.((${ADDRESS}|${TAG_VALUE})\.)`,
    negativeMatch: 'admin',
  },
  // vhost.(<virtual_host>.)*
  tokens('envoy.virtual_host', 'vhost.$.**'),
  // http.[<stat_prefix>.]rds.(<route_config_name>.)<base_stat>; route config names may contain dots
  {
    name: 'envoy.rds_route_config',
    regex: String.raw`^http\.${TAG_VALUE}\.rds\.((${ROUTE_CONFIG_NAME})\.)\w+?$`,
  },
  // vhost.[<virtual_host>.]route.(<route_stat_prefix>.)*
  tokens('envoy.route', 'vhost.*.route.$.**'),
  // (<stat_prefix>.)http_local_rate_limit.*
  tokens('envoy.local_http_ratelimit_prefix', '$.http_local_rate_limit.**'),
  // local_rate_limit.(<stat_prefix>.)*
  tokens('envoy.local_network_ratelimit_prefix', 'local_rate_limit.$.**'),
];

/** POSIX classes that RE2 (Envoy's engine) accepts inside brackets but JavaScript does not. */
const POSIX_CLASSES: Readonly<Record<string, string>> = {
  '[:digit:]': '0-9',
  '[:alpha:]': 'a-zA-Z',
  '[:alnum:]': '0-9a-zA-Z',
  '[:upper:]': 'A-Z',
  '[:lower:]': 'a-z',
  '[:xdigit:]': '0-9a-fA-F',
  '[:space:]': String.raw`\s`,
  '[:word:]': String.raw`\w`,
};

interface CompiledSpecifier {
  readonly name: string;
  readonly re: RegExp | null;
  readonly fixedValue: string | undefined;
  readonly negativeMatch: string | undefined;
}

export class TagExtractor {
  private readonly specifiers: readonly CompiledSpecifier[];

  /** Throws if a regex does not compile (config time). */
  constructor(specifiers: readonly TagSpecifier[]) {
    this.specifiers = specifiers.map((s) => {
      if ('fixedValue' in s)
        return { name: s.name, re: null, fixedValue: s.fixedValue, negativeMatch: undefined };
      const source = s.regex.replace(/\[:[a-z]+:\]/g, (c) => POSIX_CLASSES[c] ?? c);
      // The `d` flag exposes capture-group offsets, needed to cut the removed text out of the name.
      return {
        name: s.name,
        re: new RegExp(source, 'd'),
        fixedValue: undefined,
        negativeMatch: s.negativeMatch,
      };
    });
  }

  extract(statName: string): ExtractedName {
    const tags: [string, string][] = [];
    const removed: [number, number][] = [];
    for (const spec of this.specifiers) {
      if (tags.some((t) => t[0] === spec.name)) continue;
      if (spec.re === null) {
        tags.push([spec.name, spec.fixedValue ?? '']);
        continue;
      }
      const m = spec.re.exec(statName);
      if (m === null || m.indices === undefined) continue;
      const removeSpan = m.indices[1];
      const value = m.length > 2 && m[2] !== undefined ? m[2] : m[1];
      if (removeSpan === undefined || value === undefined || value === spec.negativeMatch) continue;
      tags.push([spec.name, value]);
      removed.push(removeSpan);
    }
    return { name: removed.length === 0 ? statName : cutSpans(statName, removed), tags };
  }
}

/** The name without the characters covered by any span (spans may overlap, as in Envoy's IntervalSet). */
function cutSpans(s: string, spans: readonly [number, number][]): string {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  for (const [start, end] of sorted) {
    if (start > pos) out += s.slice(pos, start);
    if (end > pos) pos = end;
  }
  return out + s.slice(pos);
}
