/**
 * Chooses a listener's filter chain for a new connection by Envoy's filter_chain_match rules. Criteria are
 * applied one at a time in Envoy's order (destination port, destination IP, server name, transport
 * protocol, application protocols, source IP): at each step only the chains with the most specific match
 * go on; chains that leave the criterion unset go on only when no chain matches it specifically. A step
 * that leaves nothing means no match (the default chain), never a step back.
 *
 * Server name, transport and application protocols come from listener filters (tls_inspector,
 * http_inspector); without them a connection is "raw_buffer" with no SNI or ALPN.
 */
import net from 'node:net';
import type { FilterChainConfig, FilterChainMatch } from './types.ts';

interface Cidr {
  readonly address: string;
  readonly prefixLen: number;
}

function ipInCidr(ip: string, cidr: Cidr): boolean {
  const list = new net.BlockList();
  const family = net.isIPv6(cidr.address) ? 'ipv6' : 'ipv4';
  const ipFamily = net.isIPv6(ip) ? 'ipv6' : 'ipv4';
  if (family !== ipFamily) return false;
  list.addSubnet(cidr.address, cidr.prefixLen, family);
  return list.check(ip, ipFamily);
}

function longestPrefix(ip: string, ranges: readonly Cidr[]): number {
  let best = -1;
  for (const r of ranges) if (r.prefixLen > best && ipInCidr(ip, r)) best = r.prefixLen;
  return best;
}

export interface ConnectionFacts {
  readonly localIp: string;
  readonly localPort: number;
  readonly remoteIp: string;
  readonly transportProtocol: string;
  readonly serverName: string | undefined;
  readonly applicationProtocols: readonly string[];
}

/** An exact server name beats every wildcard; a longer wildcard suffix beats a shorter one. */
const EXACT_NAME = Number.MAX_SAFE_INTEGER;

function serverNameScore(names: readonly string[], serverName: string | undefined): number | null {
  if (serverName === undefined) return null;
  let best: number | null = null;
  for (const name of names) {
    const n = name.toLowerCase();
    if (n === serverName) return EXACT_NAME;
    // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
    if (n.startsWith('*.') && serverName.endsWith(n.slice(1)) && serverName.length > n.length - 1) {
      best = Math.max(best ?? 0, n.length);
    }
  }
  return best;
}

/**
 * One criterion's verdict on a chain: null when the chain requires something else, 0 when it does not use
 * the criterion, otherwise how specific its match is (higher wins).
 */
type Criterion = (m: FilterChainMatch, c: ConnectionFacts) => number | null;

const CRITERIA: readonly Criterion[] = [
  (m, c) => (m.destinationPort === undefined ? 0 : m.destinationPort === c.localPort ? 1 : null),
  (m, c) => {
    if (m.prefixRanges.length === 0) return 0;
    const p = longestPrefix(c.localIp, m.prefixRanges);
    return p < 0 ? null : p + 1;
  },
  (m, c) => (m.serverNames.length === 0 ? 0 : serverNameScore(m.serverNames, c.serverName)),
  (m, c) => (m.transportProtocol === undefined ? 0 : m.transportProtocol === c.transportProtocol ? 1 : null),
  (m, c) =>
    m.applicationProtocols.length === 0
      ? 0
      : c.applicationProtocols.some((p) => m.applicationProtocols.includes(p))
        ? 1
        : null,
  (m, c) => {
    if (m.sourcePrefixRanges.length === 0) return 0;
    const p = longestPrefix(c.remoteIp, m.sourcePrefixRanges);
    return p < 0 ? null : p + 1;
  },
];

const NO_MATCH: FilterChainMatch = {
  destinationPort: undefined,
  serverNames: [],
  transportProtocol: undefined,
  applicationProtocols: [],
  prefixRanges: [],
  sourcePrefixRanges: [],
};

/** The most specific matching chain, else the default chain, else undefined (connection closed). */
export function selectFilterChain(
  chains: readonly FilterChainConfig[],
  fallback: FilterChainConfig | undefined,
  facts: ConnectionFacts,
): FilterChainConfig | undefined {
  if (chains.length === 1 && chains[0].match === undefined) return chains[0];
  let candidates: readonly FilterChainConfig[] = chains;
  for (const criterion of CRITERIA) {
    let best = -1;
    let kept: FilterChainConfig[] = [];
    for (const chain of candidates) {
      const s = criterion(chain.match ?? NO_MATCH, facts);
      if (s === null || s < best) continue;
      if (s > best) {
        best = s;
        kept = [];
      }
      kept.push(chain);
    }
    if (kept.length === 0) return fallback;
    candidates = kept;
  }
  return candidates[0] ?? fallback;
}
