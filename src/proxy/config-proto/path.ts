/** Field paths as they appear in config errors: `static_resources.clusters[1].lb_policy`, `metadata.filter_metadata["envoy.lb"]`. */

const PLAIN_KEY = /^[A-Za-z_@][A-Za-z0-9_]*$/;

/** The path of a field (or map key) inside the object at `path`. */
export function fieldPath(path: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

/** The path of an array element. */
export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}
