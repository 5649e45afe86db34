/**
 * Virtual host selection by authority, as Envoy's RouteMatcher::findVirtualHost:
 * 1. exact domains (`www.foo.com`);
 * 2. suffix wildcards (`*.foo.com`, `*-bar.foo.com`), longest first;
 * 3. prefix wildcards (`foo.*`, `foo-*`), longest first;
 * 4. the catch-all `*`.
 * Comparison is ASCII case-insensitive, and a wildcard never matches the empty string (`*.foo.com`
 * does not match `.foo.com`).
 *
 * Ports: like Envoy, the authority is matched as received, port included, so `foo.com:8080` matches a
 * domain `foo.com:8080` (or a wildcard such as `foo.*` or `*`) but not `foo.com`. Envoy only strips the
 * port when RouteConfiguration.ignore_port_in_host_matching is true, and so does Weft. (Istio lists
 * both `host` and `host:port` in its domains for this reason.)
 *
 * Lookups cost one hash-map probe plus one walk of a character trie per wildcard kind: O(length of the
 * authority), no regex and no allocation unless the authority has upper-case letters or a port is stripped.
 */
import { ConfigError } from '../../core/errors.ts';
import { asciiLower, toWire } from './strings.ts';

class TrieNode<T> {
  children: Map<number, TrieNode<T>> | undefined;
  value: T | undefined;
}

function insert<T>(root: TrieNode<T>, key: string, reversed: boolean, value: T): boolean {
  let node = root;
  for (let k = 0; k < key.length; k++) {
    const c = key.charCodeAt(reversed ? key.length - 1 - k : k);
    node.children ??= new Map();
    let next = node.children.get(c);
    if (next === undefined) {
      next = new TrieNode<T>();
      node.children.set(c, next);
    }
    node = next;
  }
  if (node.value !== undefined) return false;
  node.value = value;
  return true;
}

/** The value of the longest key that is a proper prefix (or, reversed, a proper suffix) of `host`. */
function longest<T>(root: TrieNode<T>, host: string, reversed: boolean): T | undefined {
  let node: TrieNode<T> | undefined = root;
  let best: T | undefined;
  const n = host.length;
  // Stop one character short: the wildcard must match at least one character.
  for (let k = 0; k < n - 1; k++) {
    node = node.children?.get(host.charCodeAt(reversed ? n - 1 - k : k));
    if (node === undefined) break;
    if (node.value !== undefined) best = node.value;
  }
  return best;
}

/** Where the port starts in an authority (index of ":"), or -1 (Envoy's HeaderUtility::getPortStart). */
export function portStart(authority: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon < 0) return -1;
  const v6End = authority.lastIndexOf(']');
  return v6End < 0 || v6End < colon ? colon : -1;
}

export class VirtualHostIndex<T> {
  private readonly exact = new Map<string, T>();
  private readonly suffixes = new TrieNode<T>();
  private readonly prefixes = new TrieNode<T>();
  private hasSuffixes = false;
  private hasPrefixes = false;
  private catchAll: T | undefined;
  private readonly ignorePort: boolean;
  /** Which virtual host declared each domain, for duplicate errors. */
  private readonly owners = new Map<string, string>();

  constructor(ignorePort: boolean) {
    this.ignorePort = ignorePort;
  }

  /** Registers `domain` for `value`; `owner` names the virtual host in errors. */
  add(domain: string, value: T, owner: string, path: string): void {
    const d = asciiLower(toWire(domain));
    const previous = this.owners.get(d);
    if (previous !== undefined) {
      throw new ConfigError(
        path,
        `duplicate domain ${JSON.stringify(domain)}: already used by virtual host ${JSON.stringify(previous)} (domains must be unique across virtual hosts)`,
      );
    }
    this.owners.set(d, owner);
    if (d === '*') {
      this.catchAll = value;
    } else if (d.startsWith('*')) {
      insert(this.suffixes, d.slice(1), true, value);
      this.hasSuffixes = true;
    } else if (d.endsWith('*')) {
      insert(this.prefixes, d.slice(0, -1), false, value);
      this.hasPrefixes = true;
    } else {
      this.exact.set(d, value);
    }
  }

  find(authority: string): T | undefined {
    if (this.exact.size === 0 && !this.hasSuffixes && !this.hasPrefixes) return this.catchAll;
    let host = authority;
    if (this.ignorePort) {
      const p = portStart(host);
      if (p >= 0) host = host.slice(0, p);
    }
    host = asciiLower(host);
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    if (this.hasSuffixes) {
      const v = longest(this.suffixes, host, true);
      if (v !== undefined) return v;
    }
    if (this.hasPrefixes) {
      const v = longest(this.prefixes, host, false);
      if (v !== undefined) return v;
    }
    return this.catchAll;
  }
}
