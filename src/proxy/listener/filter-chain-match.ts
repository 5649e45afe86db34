/**
 * Chooses a listener's filter chain for a new connection, by Envoy's filter_chain_match rules, in its order
 * of precedence: destination port, destination IP, server name, transport protocol, application protocols,
 * source IP. Plaintext connections carry no SNI or ALPN, so chains that require them never match here.
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
}

function score(m: FilterChainMatch | undefined, c: ConnectionFacts): number[] | null {
  if (m === undefined) return [0, 0, 0, 0, 0, 0];
  const s: number[] = [];
  if (m.destinationPort !== undefined) {
    if (m.destinationPort !== c.localPort) return null;
    s.push(1);
  } else s.push(0);
  if (m.prefixRanges.length > 0) {
    const p = longestPrefix(c.localIp, m.prefixRanges);
    if (p < 0) return null;
    s.push(p + 1);
  } else s.push(0);
  if (m.serverNames.length > 0) {
    if (c.serverName === undefined || !m.serverNames.includes(c.serverName)) return null;
    s.push(1);
  } else s.push(0);
  if (m.transportProtocol !== undefined) {
    if (m.transportProtocol !== c.transportProtocol) return null;
    s.push(1);
  } else s.push(0);
  if (m.applicationProtocols.length > 0) return null;
  s.push(0);
  if (m.sourcePrefixRanges.length > 0) {
    const p = longestPrefix(c.remoteIp, m.sourcePrefixRanges);
    if (p < 0) return null;
    s.push(p + 1);
  } else s.push(0);
  return s;
}

/** The most specific matching chain, else the default chain, else undefined (connection closed). */
export function selectFilterChain(
  chains: readonly FilterChainConfig[],
  fallback: FilterChainConfig | undefined,
  facts: ConnectionFacts,
): FilterChainConfig | undefined {
  if (chains.length === 1 && chains[0].match === undefined) return chains[0];
  let best: FilterChainConfig | undefined;
  let bestScore: number[] | null = null;
  for (const chain of chains) {
    const s = score(chain.match, facts);
    if (s === null) continue;
    if (bestScore === null || compare(s, bestScore) > 0) {
      best = chain;
      bestScore = s;
    }
  }
  return best ?? fallback;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
