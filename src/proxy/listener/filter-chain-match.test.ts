import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectFilterChain } from './filter-chain-match.ts';
import type { ConnectionFacts } from './filter-chain-match.ts';
import type { FilterChainConfig, FilterChainMatch } from './types.ts';

function chain(name: string, match: Partial<FilterChainMatch>): FilterChainConfig {
  return {
    name,
    filters: [],
    match: {
      destinationPort: undefined,
      serverNames: [],
      transportProtocol: undefined,
      applicationProtocols: [],
      prefixRanges: [],
      sourcePrefixRanges: [],
      ...match,
    },
  };
}

const base: ConnectionFacts = {
  localIp: '127.0.0.1',
  localPort: 80,
  remoteIp: '127.0.0.1',
  transportProtocol: 'raw_buffer',
  serverName: undefined,
  applicationProtocols: [],
};
const fallback = chain('default', {});
const pick = (chains: FilterChainConfig[], facts: Partial<ConnectionFacts>): string | undefined =>
  selectFilterChain(chains, fallback, { ...base, ...facts })?.name;

describe('selectFilterChain', () => {
  it('matches detected application protocols, else falls to the default chain', () => {
    const chains = [chain('http', { applicationProtocols: ['http/1.1', 'h2c'] })];
    assert.equal(pick(chains, { applicationProtocols: ['h2c'] }), 'http');
    assert.equal(pick(chains, {}), 'default');
  });

  it('prefers an exact server name, then the longest wildcard; TLS only by transport protocol', () => {
    const chains = [
      chain('wild', { serverNames: ['*.example.com'] }),
      chain('deeper', { serverNames: ['*.a.example.com'] }),
      chain('exact', { serverNames: ['x.a.example.com'] }),
      chain('tls', { transportProtocol: 'tls' }),
    ];
    const tls = { transportProtocol: 'tls' };
    assert.equal(pick(chains, { ...tls, serverName: 'x.a.example.com' }), 'exact');
    assert.equal(pick(chains, { ...tls, serverName: 'y.a.example.com' }), 'deeper');
    assert.equal(pick(chains, { ...tls, serverName: 'b.example.com' }), 'wild');
    assert.equal(pick(chains, { ...tls, serverName: 'example.com' }), 'tls');
    assert.equal(pick(chains, {}), 'default');
  });

  it('never steps back to a less specific criterion (Envoy): a port match that fails later means no match', () => {
    const chains = [chain('port80-tls', { destinationPort: 80, transportProtocol: 'tls' }), chain('any', {})];
    assert.equal(pick(chains, { transportProtocol: 'tls' }), 'port80-tls');
    assert.equal(pick(chains, {}), 'default');
    assert.equal(pick(chains, { localPort: 81 }), 'any');
  });
});
