/**
 * Name resolution for STRICT_DNS and LOGICAL_DNS clusters: resolves the endpoints' host names on a
 * schedule and reports the resulting hosts. A failed resolution keeps the last good addresses of
 * that endpoint, as Envoy does.
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from '../../core/logger.ts';
import type { HostInit } from './host.ts';
import type { ClusterConfig, EndpointConfig, Locality } from './types.ts';

export type DnsLookupFamily = ClusterConfig['dnsLookupFamily'];

export interface DnsAnswer {
  /** Resolved addresses, in resolver order; never empty. */
  readonly addresses: readonly string[];
  /** The smallest record TTL in seconds, when known (respect_dns_ttl). */
  readonly ttlSeconds: number | undefined;
}

/** Resolves a host name; rejects when it cannot. Injectable so refresh sequences are testable. */
export type DnsResolve = (
  hostname: string,
  family: DnsLookupFamily,
  respectTtl: boolean,
) => Promise<DnsAnswer>;

/** The address families to ask for, in order: later ones only when earlier ones found nothing. */
function familyOrder(family: DnsLookupFamily): readonly (0 | 4 | 6)[] {
  switch (family) {
    case 'V4_ONLY':
      return [4];
    case 'V6_ONLY':
      return [6];
    case 'AUTO': // Envoy's AUTO prefers IPv6 and falls back to IPv4.
      return [6, 4];
    case 'V4_PREFERRED':
      return [4, 6];
    case 'ALL':
      return [0];
  }
}

async function lookupFamily(hostname: string, family: 0 | 4 | 6): Promise<DnsAnswer> {
  const results = await dns.lookup(hostname, { all: true, family });
  if (results.length === 0)
    throw Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENODATA' });
  return { addresses: results.map((r) => r.address), ttlSeconds: undefined };
}

let sharedResolver: dns.Resolver | undefined;

async function resolveFamilyWithTtl(hostname: string, family: 0 | 4 | 6): Promise<DnsAnswer> {
  sharedResolver ??= new dns.Resolver({ timeout: 2000, tries: 2 });
  const resolver = sharedResolver;
  const records = [];
  if (family === 4) records.push(...(await resolver.resolve4(hostname, { ttl: true })));
  else if (family === 6) records.push(...(await resolver.resolve6(hostname, { ttl: true })));
  else {
    const [v4, v6] = await Promise.allSettled([
      resolver.resolve4(hostname, { ttl: true }),
      resolver.resolve6(hostname, { ttl: true }),
    ]);
    if (v4.status === 'fulfilled') records.push(...v4.value);
    if (v6.status === 'fulfilled') records.push(...v6.value);
    if (records.length === 0 && v4.status === 'rejected') throw v4.reason;
  }
  if (records.length === 0)
    throw Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENODATA' });
  return { addresses: records.map((r) => r.address), ttlSeconds: Math.min(...records.map((r) => r.ttl)) };
}

/**
 * The system resolver. Without respect_dns_ttl: getaddrinfo (dns.lookup), which also reads
 * /etc/hosts. With it: DNS queries that report TTLs, falling back to getaddrinfo for names DNS does
 * not know (such as those only in /etc/hosts), whose TTL is then unknown.
 */
export const systemDnsResolve: DnsResolve = async (hostname, family, respectTtl) => {
  if (isIP(hostname) !== 0) return { addresses: [hostname], ttlSeconds: undefined };
  let lastError: unknown;
  for (const f of familyOrder(family)) {
    try {
      if (respectTtl) {
        try {
          return await resolveFamilyWithTtl(hostname, f);
        } catch {
          return await lookupFamily(hostname, f);
        }
      }
      return await lookupFamily(hostname, f);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
};

interface Target {
  readonly endpoint: EndpointConfig;
  readonly locality: Locality;
  readonly priority: number;
  /** The addresses of the last successful resolution; empty until there is one. */
  addresses: readonly string[];
  /** Whether the last resolution failed: repeated failures are logged once, not every round. */
  failing: boolean;
}

export interface DnsDiscoveryOptions {
  readonly resolve: DnsResolve;
  /** Called after every resolution round with the complete host list. */
  readonly onHosts: (hosts: readonly HostInit[]) => void;
  readonly logger: Logger;
}

/** Periodically resolves every endpoint of a DNS cluster. */
export class DnsDiscovery {
  private readonly config: ClusterConfig;
  private readonly options: DnsDiscoveryOptions;
  private readonly targets: Target[];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(config: ClusterConfig, options: DnsDiscoveryOptions) {
    this.config = config;
    this.options = options;
    this.targets = config.localityEndpoints.flatMap((le) =>
      le.endpoints.map((endpoint) => ({
        endpoint,
        locality: le.locality,
        priority: le.priority,
        addresses: [],
        failing: false,
      })),
    );
  }

  /** Resolves once (success or not), then keeps refreshing in the background until stop(). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves every endpoint now and reschedules the next round; concurrent calls share one round. */
  refresh(): Promise<void> {
    this.inFlight ??= this.round().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async round(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const { resolve, logger } = this.options;
    const { dnsLookupFamily, respectDnsTtl } = this.config;
    let ttlSeconds: number | undefined;
    await Promise.all(
      this.targets.map(async (target) => {
        const name = target.endpoint.address;
        try {
          const answer = await resolve(name, dnsLookupFamily, respectDnsTtl);
          if (answer.addresses.length === 0) throw new Error('empty answer');
          target.addresses = answer.addresses;
          if (target.failing)
            logger.info('DNS resolution recovered', { cluster: this.config.name, hostname: name });
          target.failing = false;
          if (answer.ttlSeconds !== undefined && answer.ttlSeconds > 0) {
            ttlSeconds = Math.min(ttlSeconds ?? Infinity, answer.ttlSeconds);
          }
        } catch (err) {
          const fields = {
            cluster: this.config.name,
            hostname: name,
            error: err instanceof Error ? err.message : String(err),
            kept: target.addresses.length,
          };
          if (target.failing) logger.debug('DNS resolution failed again', fields);
          else logger.warn('DNS resolution failed; keeping the last good addresses', fields);
          target.failing = true;
        }
      }),
    );
    if (this.stopped) return;
    this.options.onHosts(this.hostInits());
    const delay =
      respectDnsTtl && ttlSeconds !== undefined ? ttlSeconds * 1000 : this.config.dnsRefreshRateMs;
    this.timer = setTimeout(() => void this.refresh(), delay);
    // Refreshing never keeps the process alive on its own.
    this.timer.unref();
  }

  private hostInits(): HostInit[] {
    const logical = this.config.type === 'LOGICAL_DNS';
    const hosts: HostInit[] = [];
    for (const t of this.targets) {
      // LOGICAL_DNS connects to the first address only; STRICT_DNS makes a host of every address.
      const addresses = logical ? t.addresses.slice(0, 1) : t.addresses;
      for (const address of addresses) {
        hosts.push({
          address,
          port: t.endpoint.port,
          hostname: t.endpoint.hostname,
          weight: t.endpoint.weight,
          locality: t.locality,
          priority: t.priority,
          health: t.endpoint.health,
        });
      }
    }
    return hosts;
  }
}
