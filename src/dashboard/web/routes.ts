/**
 * The page's hash routes: `#/` (the graph), `#/service/NS/NAME`, `#/workload/NS/NAME`, `#/proxies`,
 * `#/config`, `#/cost`. Hash routes need nothing from the server: every view is the one index.html.
 */

export type Route =
  | { view: 'graph' }
  | { view: 'proxies' }
  | { view: 'config' }
  | { view: 'cost' }
  | { view: 'service' | 'workload'; namespace: string; name: string };

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((p) => p !== '');
  let decoded: string[];
  try {
    decoded = parts.map(decodeURIComponent);
  } catch {
    return { view: 'graph' };
  }
  const [view, namespace, name, ...rest] = decoded;
  if ((view === 'service' || view === 'workload') && namespace && name && rest.length === 0)
    return { view, namespace, name };
  if ((view === 'proxies' || view === 'config' || view === 'cost') && namespace === undefined)
    return { view };
  return { view: 'graph' };
}

export function serviceHash(namespace: string, name: string): string {
  return `#/service/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

export function workloadHash(namespace: string, name: string): string {
  return `#/workload/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/** The page of a graph node (`workload:NS/NAME` or `service:HOST`, with its name and namespace). */
export function nodeHash(n: { kind: 'workload' | 'service'; namespace: string; name: string }): string {
  return n.kind === 'service' ? serviceHash(n.namespace, n.name) : workloadHash(n.namespace, n.name);
}
