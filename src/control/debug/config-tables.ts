/**
 * Readable summaries of a proxy's config dump (see config-dump.ts), for `weft proxy-config`: one row per
 * listener, route, cluster or endpoint. The dump arrives over HTTP as plain JSON, so every field is optional here.
 */
import { isObject } from '../../core/json.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { formatTable } from './table.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export type ConfigKind = 'listeners' | 'routes' | 'clusters' | 'endpoints';
export const CONFIG_KINDS: readonly ConfigKind[] = ['listeners', 'routes', 'clusters', 'endpoints'];

function obj(v: Json | undefined): JsonObject {
  return isObject(v) ? v : {};
}

function arr(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : [];
}

function str(v: Json | undefined, fallback = ''): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

function section(dump: JsonObject, type: string): JsonObject {
  return obj(arr(dump.configs).find((c) => isObject(c) && c['@type'] === `${ADMIN}.${type}`));
}

/** The resources of one kind in a dump, as canonical JSON. */
export function resourcesOf(dump: JsonObject, kind: ConfigKind): JsonObject[] {
  switch (kind) {
    case 'listeners':
      return arr(section(dump, 'ListenersConfigDump').dynamic_listeners).map((l) =>
        obj(obj(obj(l).active_state).listener),
      );
    case 'routes':
      return arr(section(dump, 'RoutesConfigDump').dynamic_route_configs).map((r) =>
        obj(obj(r).route_config),
      );
    case 'clusters':
      return arr(section(dump, 'ClustersConfigDump').dynamic_active_clusters).map((c) => obj(obj(c).cluster));
    case 'endpoints':
      return arr(section(dump, 'EndpointsConfigDump').dynamic_endpoint_configs).map((e) =>
        obj(obj(e).endpoint_config),
      );
  }
}

function address(a: Json | undefined): string {
  const addr = obj(a);
  const socket = obj(addr.socket_address);
  if (socket.address !== undefined) {
    const host = str(socket.address);
    const port = str(socket.port_value, str(socket.named_port, '0'));
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }
  if (addr.pipe !== undefined) return `unix:${str(obj(addr.pipe).path)}`;
  if (addr.envoy_internal_address !== undefined)
    return `internal:${str(obj(addr.envoy_internal_address).server_listener_name)}`;
  return '-';
}

function typeName(typed: JsonObject): string {
  const t = str(typed['@type']);
  return t.slice(t.lastIndexOf('/') + 1);
}

function hcmSummary(hcm: JsonObject): string {
  if (hcm.rds !== undefined) return `HTTP → RDS ${str(obj(hcm.rds).route_config_name)}`;
  if (hcm.route_config !== undefined)
    return `HTTP → inline route ${str(obj(hcm.route_config).name, '(unnamed)')}`;
  if (hcm.scoped_routes !== undefined) return 'HTTP → scoped routes';
  return 'HTTP';
}

function tcpSummary(tcp: JsonObject): string {
  if (tcp.cluster !== undefined) return `TCP → ${str(tcp.cluster)}`;
  const weighted = arr(obj(tcp.weighted_clusters).clusters).map(
    (c) => `${str(obj(c).name)} ${str(obj(c).weight, '1')}`,
  );
  return `TCP → ${weighted.join(', ')}`;
}

function matchSummary(m: JsonObject): string {
  const parts: string[] = [];
  if (m.destination_port !== undefined) parts.push(`port ${str(m.destination_port)}`);
  const sni = arr(m.server_names).map((s) => str(s));
  if (sni.length > 0) parts.push(`sni ${sni.join(',')}`);
  if (m.transport_protocol !== undefined) parts.push(str(m.transport_protocol));
  const alpn = arr(m.application_protocols).map((s) => str(s));
  if (alpn.length > 0) parts.push(`alpn ${alpn.join(',')}`);
  const prefixes = arr(m.prefix_ranges).map(
    (r) => `${str(obj(r).address_prefix)}/${str(obj(r).prefix_len, '32')}`,
  );
  if (prefixes.length > 0) parts.push(`dst ${prefixes.join(',')}`);
  return parts.length > 0 ? `[${parts.join(' ')}] ` : '';
}

function chainSummary(chain: JsonObject): string {
  const filters = arr(chain.filters).map(obj);
  const terminal = filters[filters.length - 1] ?? {};
  const typed = obj(terminal.typed_config);
  const type = typeName(typed);
  const what =
    type === HCM
      ? hcmSummary(typed)
      : type === TCP_PROXY
        ? tcpSummary(typed)
        : str(terminal.name, type || '-');
  return `${matchSummary(obj(chain.filter_chain_match))}${what}`;
}

function listenerRow(l: JsonObject): string[] {
  if (l.api_listener !== undefined) {
    const hcm = obj(obj(l.api_listener).api_listener);
    return [str(l.name), '-', `API listener: ${hcmSummary(hcm)}`];
  }
  const chains = arr(l.filter_chains).map((c) => chainSummary(obj(c)));
  if (l.default_filter_chain !== undefined)
    chains.push(`default: ${chainSummary(obj(l.default_filter_chain))}`);
  return [str(l.name), address(l.address), chains.join('; ') || '-'];
}

function domainsSummary(domains: Json[]): string {
  const names = domains.map((d) => str(d));
  return names.length <= 2 ? names.join(', ') : `${names.slice(0, 2).join(', ')} +${names.length - 2} more`;
}

function routeMatch(match: JsonObject): string {
  let path = '/*';
  if (match.prefix !== undefined) path = `${str(match.prefix)}*`;
  else if (match.path !== undefined) path = str(match.path);
  else if (match.safe_regex !== undefined) path = `~${str(obj(match.safe_regex).regex)}`;
  else if (match.path_separated_prefix !== undefined) path = `${str(match.path_separated_prefix)}/*`;
  else if (match.path_match_policy !== undefined) path = 'path template';
  const extras = arr(match.headers).map((h) => {
    const header = obj(h);
    const sm = obj(header.string_match);
    const value =
      sm.exact !== undefined
        ? `=${str(sm.exact)}`
        : sm.prefix !== undefined
          ? `=${str(sm.prefix)}*`
          : sm.safe_regex !== undefined
            ? `~${str(obj(sm.safe_regex).regex)}`
            : header.present_match !== undefined
              ? ' present'
              : '';
    return `${header.invert_match === true ? '!' : ''}${str(header.name)}${value}`;
  });
  for (const q of arr(match.query_parameters)) extras.push(`?${str(obj(q).name)}`);
  if (match.grpc !== undefined) extras.push('grpc');
  return extras.length > 0 ? `${path} [${extras.join(' ')}]` : path;
}

function routeDestination(route: JsonObject): string {
  if (route.route !== undefined) {
    const action = obj(route.route);
    if (action.cluster !== undefined) return str(action.cluster);
    if (action.weighted_clusters !== undefined) {
      const clusters = arr(obj(action.weighted_clusters).clusters).map(obj);
      const total = clusters.reduce((sum, c) => sum + Number(c.weight ?? 0), 0) || 1;
      return clusters
        .map((c) => `${str(c.name)} ${Math.round((Number(c.weight ?? 0) * 100) / total)}%`)
        .join(', ');
    }
    if (action.cluster_header !== undefined) return `header ${str(action.cluster_header)}`;
    if (action.cluster_specifier_plugin !== undefined)
      return `plugin ${str(action.cluster_specifier_plugin)}`;
    return '-';
  }
  if (route.redirect !== undefined) {
    const r = obj(route.redirect);
    const target = `${str(r.host_redirect)}${str(r.path_redirect, str(r.prefix_rewrite))}`;
    return `redirect${target ? ` → ${target}` : ''}`;
  }
  if (route.direct_response !== undefined) return `direct response ${str(obj(route.direct_response).status)}`;
  if (route.non_forwarding_action !== undefined) return 'non-forwarding';
  return '-';
}

function routeRows(rc: JsonObject): string[][] {
  const rows: string[][] = [];
  for (const vhJson of arr(rc.virtual_hosts)) {
    const vh = obj(vhJson);
    for (const r of arr(vh.routes)) {
      const route = obj(r);
      rows.push([
        str(rc.name),
        domainsSummary(arr(vh.domains)),
        routeMatch(obj(route.match)),
        routeDestination(route),
      ]);
    }
    if (arr(vh.routes).length === 0) rows.push([str(rc.name), domainsSummary(arr(vh.domains)), '-', '-']);
  }
  if (rows.length === 0) rows.push([str(rc.name), '-', '-', '-']);
  return rows;
}

function lbEndpoints(cla: JsonObject): number {
  return arr(cla.endpoints).reduce<number>((n, l) => n + arr(obj(l).lb_endpoints).length, 0);
}

function clusterRow(c: JsonObject, edsCounts: ReadonlyMap<string, number>): string[] {
  const type =
    c.type !== undefined
      ? str(c.type)
      : c.cluster_type !== undefined
        ? str(obj(c.cluster_type).name)
        : 'STATIC';
  let lb = c.lb_policy !== undefined ? str(c.lb_policy) : 'ROUND_ROBIN';
  const policies = arr(obj(c.load_balancing_policy).policies);
  if (policies.length > 0)
    lb = typeName(obj(obj(obj(policies[0]).typed_extension_config).typed_config)) || lb;
  let endpoints: string;
  if (type === 'EDS') {
    const service = str(obj(c.eds_cluster_config).service_name) || str(c.name);
    endpoints = String(edsCounts.get(service) ?? 0);
  } else if (c.load_assignment !== undefined) {
    endpoints = String(lbEndpoints(obj(c.load_assignment)));
  } else {
    endpoints = '-';
  }
  return [str(c.name), type, lb, endpoints];
}

function endpointRows(cla: JsonObject): string[][] {
  const rows: string[][] = [];
  for (const l of arr(cla.endpoints)) {
    const group = obj(l);
    const loc = obj(group.locality);
    const locality =
      [str(loc.region), str(loc.zone), str(loc.sub_zone)].filter((p) => p !== '').join('/') || '-';
    for (const e of arr(group.lb_endpoints)) {
      const lbe = obj(e);
      rows.push([
        str(cla.cluster_name),
        address(obj(lbe.endpoint).address),
        locality,
        str(lbe.load_balancing_weight, '1'),
        str(lbe.health_status, 'UNKNOWN'),
      ]);
    }
  }
  return rows;
}

/** The table for one kind of resource in a proxy's config dump. */
export function formatConfigTable(dump: JsonObject, kind: ConfigKind): string {
  const resources = resourcesOf(dump, kind);
  switch (kind) {
    case 'listeners':
      return formatTable(['NAME', 'ADDRESS:PORT', 'FILTER CHAINS'], resources.map(listenerRow));
    case 'routes':
      return formatTable(['ROUTE CONFIG', 'DOMAINS', 'MATCH', 'DESTINATION'], resources.flatMap(routeRows));
    case 'clusters': {
      const counts = new Map(
        resourcesOf(dump, 'endpoints').map((cla) => [str(cla.cluster_name), lbEndpoints(cla)]),
      );
      return formatTable(
        ['NAME', 'TYPE', 'LB POLICY', 'ENDPOINTS'],
        resources.map((c) => clusterRow(c, counts)),
      );
    }
    case 'endpoints':
      return formatTable(
        ['CLUSTER', 'ADDRESS:PORT', 'LOCALITY', 'WEIGHT', 'HEALTH'],
        resources.flatMap(endpointRows),
      );
  }
}
