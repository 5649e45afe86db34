/** Test fixtures for the upstream layer: configs, hosts, a seeded random source and statistics. */
import { DEFAULT_THRESHOLDS } from './circuit-breakers.ts';
import { createHost } from './host.ts';
import type { ClusterConfig, HealthStatus, Host } from './types.ts';

/** A ClusterConfig with Envoy's defaults and no endpoints; override what a test needs. */
export function testClusterConfig(overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: 'test',
    type: 'STATIC',
    connectTimeoutMs: 5000,
    lbPolicy: 'ROUND_ROBIN',
    localityEndpoints: [],
    overprovisioningFactor: 140,
    healthyPanicThreshold: 50,
    localityWeighted: false,
    leastRequest: { choiceCount: 2 },
    ringHash: { minimumRingSize: 1024, maximumRingSize: 8 * 1024 * 1024 },
    maglev: { tableSize: 65537 },
    http2: undefined,
    upstreamIdleTimeoutMs: 3600_000,
    maxRequestsPerConnection: undefined,
    maxConnectionDurationMs: 0,
    circuitBreakers: DEFAULT_THRESHOLDS,
    dnsRefreshRateMs: 5000,
    dnsLookupFamily: 'AUTO',
    respectDnsTtl: false,
    ...overrides,
  };
}

export interface TestHostSpec {
  readonly weight?: number;
  readonly health?: HealthStatus;
  readonly priority?: number;
  /** The host's zone (region and sub-zone stay empty). */
  readonly zone?: string;
}

let nextAddress = 1;

/** Hosts on distinct loopback addresses (10.x would do as well: nothing connects to them). */
export function testHosts(specs: readonly TestHostSpec[]): Host[] {
  return specs.map((s) => {
    const n = nextAddress++;
    return createHost({
      address: `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      port: 8080,
      hostname: undefined,
      weight: s.weight ?? 1,
      locality: { region: '', zone: s.zone ?? '', subZone: '' },
      priority: s.priority ?? 0,
      health: s.health ?? 'HEALTHY',
    });
  });
}

/** mulberry32: a small seeded generator of numbers in [0, 1), so statistical tests are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Half-width of the acceptance interval for a count that should be Binomial(n, p): `sigmas`
 * standard deviations. At 5 sigma a correct implementation fails about once in 1.7 million runs,
 * while a wrong proportion fails almost surely once n is large enough (tests pick n so it does).
 */
export function binomialTolerance(n: number, p: number, sigmas = 5): number {
  return sigmas * Math.sqrt(n * p * (1 - p));
}
