/**
 * Checks the secrets a bootstrap's static listeners and clusters name: a secret without sds_config must be
 * one of static_resources.secrets (as Envoy requires), and one over ADS needs an ADS stream.
 */
import { ConfigError } from '../../core/errors.ts';
import type { ListenerConfig } from '../listener/types.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import type { CommonTlsConfig } from './tls-context-config.ts';

function namedSecrets(tls: CommonTlsConfig): { name: string; source: string }[] {
  const out: { name: string; source: string }[] = [];
  for (const c of tls.certificates) if (c.kind === 'sds') out.push(c);
  const trust = tls.validation?.trust;
  if (trust?.kind === 'sds') out.push(trust);
  return out;
}

export function checkSecretReferences(
  listeners: readonly ListenerConfig[],
  clusters: readonly ClusterConfig[],
  staticNames: ReadonlySet<string>,
  hasAds: boolean,
): void {
  const check = (tls: CommonTlsConfig | undefined, path: string): void => {
    if (tls === undefined) return;
    for (const ref of namedSecrets(tls)) {
      if (ref.source === 'static' && !staticNames.has(ref.name))
        throw new ConfigError(
          path,
          `unknown static secret ${JSON.stringify(ref.name)} (not in static_resources.secrets; set sds_config for SDS)`,
        );
      if (ref.source === 'ads' && !hasAds)
        throw new ConfigError(
          path,
          `secret ${JSON.stringify(ref.name)} comes from SDS over ads, which needs dynamic_resources.ads_config`,
        );
    }
  };
  listeners.forEach((l, i) => {
    const chains = [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])];
    chains.forEach((c, j) => {
      const where = j < l.filterChains.length ? `filter_chains[${j}]` : 'default_filter_chain';
      check(c.tls, `static_resources.listeners[${i}].${where}.transport_socket`);
    });
  });
  clusters.forEach((c, i) => check(c.tls, `static_resources.clusters[${i}].transport_socket`));
}
