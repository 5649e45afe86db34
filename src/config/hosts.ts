/**
 * Istio's name resolution for hosts and gateway references, applied once when a resource is loaded so
 * that everything downstream compares fully qualified names.
 *
 * - A host with no dot (`reviews`) is a Kubernetes short name: it means `reviews.<namespace>.svc.<domain>`
 *   in the namespace of the resource that names it. `*`, IP addresses and names with a dot stay as written.
 * - A gateway reference `name` means `<namespace>/name`; `./name` also means the resource's own namespace;
 *   the legacy form `name.ns.svc.cluster.local` (or `name.ns`) means `ns/name`; `ns/name` and `mesh` stay.
 */
import net from 'node:net';

export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

export function qualifyHost(host: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  if (host === '' || host === '*' || host.includes('.') || net.isIP(host) !== 0) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

export const MESH_GATEWAY = 'mesh';

export function qualifyGatewayName(gateway: string, namespace: string): string {
  if (gateway === MESH_GATEWAY || gateway === '') return gateway;
  const slash = gateway.indexOf('/');
  if (slash >= 0)
    return gateway.slice(0, slash) === '.' ? `${namespace}/${gateway.slice(slash + 1)}` : gateway;
  const dot = gateway.indexOf('.');
  if (dot < 0) return `${namespace}/${gateway}`;
  const rest = gateway.slice(dot + 1);
  const nextDot = rest.indexOf('.');
  return `${nextDot < 0 ? rest : rest.slice(0, nextDot)}/${gateway.slice(0, dot)}`;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

function qualifyStrings(list: unknown, fn: (s: string) => string): unknown {
  return Array.isArray(list) ? list.map((s: unknown) => (typeof s === 'string' ? fn(s) : s)) : list;
}

function qualifyDestinationHost(dest: unknown, host: (h: string) => string): void {
  if (isObj(dest) && typeof dest.host === 'string') dest.host = host(dest.host);
}

/**
 * Returns a copy of a (schema-valid) spec with Istio's short names resolved. Only VirtualService and
 * DestinationRule carry names that Istio resolves this way; other kinds are returned unchanged.
 */
export function qualifySpecNames(
  kind: string,
  spec: unknown,
  namespace: string,
  domainSuffix = DEFAULT_DOMAIN_SUFFIX,
): unknown {
  if (!isObj(spec) || (kind !== 'VirtualService' && kind !== 'DestinationRule')) return spec;
  const copy = structuredClone(spec);
  const host = (h: string): string => qualifyHost(h, namespace, domainSuffix);
  const gateway = (g: string): string => qualifyGatewayName(g, namespace);
  if (kind === 'DestinationRule') {
    if (typeof copy.host === 'string') copy.host = host(copy.host);
    return copy;
  }
  if (copy.hosts !== undefined) copy.hosts = qualifyStrings(copy.hosts, host);
  if (copy.gateways !== undefined) copy.gateways = qualifyStrings(copy.gateways, gateway);
  for (const protocol of ['http', 'tcp', 'tls'] as const) {
    for (const rule of objects(copy[protocol])) {
      for (const match of objects(rule.match))
        if (match.gateways !== undefined) match.gateways = qualifyStrings(match.gateways, gateway);
      for (const route of objects(rule.route)) qualifyDestinationHost(route.destination, host);
      if (protocol === 'http') {
        qualifyDestinationHost(rule.mirror, host);
        for (const mirror of objects(rule.mirrors)) qualifyDestinationHost(mirror.destination, host);
      }
    }
  }
  return copy;
}
