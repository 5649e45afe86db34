/**
 * The cost of cross-zone and cross-region traffic, from the client-side byte counters
 * (weft_locality_bytes_total / weft_locality_requests_total). Pure: the dashboard gathers the flows and
 * the endpoints, this prices them.
 *
 * A flow is what one client proxy sent to (and received from) one destination service's hosts in one
 * locality over the window. Hops are classified by comparing the proxy's locality with the host's: same
 * region and zone → in zone (free), same region and another zone → cross-zone, another region →
 * cross-region. A flow with an unknown zone or region on either side cannot be placed and is reported apart
 * (`unknown`, priced at 0).
 *
 * The counterfactual "without locality-aware routing" keeps each flow's bytes and requests but spreads them
 * over the service's endpoints as the caller sees them, uniformly (what ROUND_ROBIN without
 * localityLbSetting does): with k of n endpoints in the caller's zone, k/n of the bytes stay in the zone.
 */

/** US dollars per GiB (2^30 bytes: the "GB" of the cloud providers' transfer pricing). */
export interface CostPrices {
  /**
   * Per GiB crossing zones within a region, charged to EACH side: AWS bills $0.01/GB "in each direction"
   * for transfer between Availability Zones, both on the sender's and the receiver's account, so a GiB
   * crossing costs twice this. (AWS EC2 On-Demand pricing, "Data Transfer within the same AWS Region";
   * GCP's inter-zone egress is $0.01/GB too, billed once.)
   */
  interZonePerGb: number;
  /**
   * Per GiB crossing regions, charged once (to the sender): $0.02/GB, the lowest AWS inter-region rate
   * (between US regions) and GCP's within-continent inter-region egress.
   */
  interRegionPerGb: number;
}

export const DEFAULT_PRICES: Readonly<CostPrices> = Object.freeze({
  interZonePerGb: 0.01,
  interRegionPerGb: 0.02,
});

export const GIB = 2 ** 30;
/** The month the estimate extrapolates to: 30 days. */
export const MONTH_SECONDS = 30 * 86_400;

export interface Place {
  region: string;
  zone: string;
}

export interface Flow {
  /** The calling workload (`namespace/name`, or a proxy's name when it serves no workload). */
  source: string;
  /** Which proxy counted it: the endpoints it sees are looked up by this. */
  proxy: string;
  /** The destination service host ("unknown" when the cluster names none). */
  service: string;
  from: Place;
  to: Place;
  /** Request and response bytes together, over the window. */
  bytes: number;
  /** HTTP and gRPC requests over the window (TCP connections are not counted). */
  requests: number;
}

/** The endpoints of a service as a proxy sees them (its EDS), counted per locality. */
export interface ServiceEndpoints {
  proxy: string;
  service: string;
  localities: readonly (Place & { endpoints: number })[];
}

export interface Split {
  inZone: number;
  crossZone: number;
  crossRegion: number;
  /** Flows whose source or destination locality is unknown. */
  unknown: number;
}

export interface CostFigures {
  bytes: Split;
  /** bytes / window seconds. */
  bytesPerSecond: Split;
  requests: Split;
  /** Shares of the bytes and requests, in percent (null with nothing to share). */
  bytesPct: Split | null;
  requestsPct: Split | null;
  /** The observed rate over 30 days, at the prices. */
  monthlyCost: number;
  /** Same bytes, spread uniformly over the endpoints; null when no endpoints are known for any flow. */
  uniform: { bytes: Split; bytesPct: Split | null; monthlyCost: number; partial: boolean } | null;
}

export interface CostEdge extends CostFigures {
  source: string;
  service: string;
}

export interface CostReport {
  prices: CostPrices;
  windowSeconds: number;
  total: CostFigures;
  /** Sorted by monthly cost, then by bytes, the most expensive first. */
  edges: CostEdge[];
}

export type Hop = 'inZone' | 'crossZone' | 'crossRegion' | 'unknown';

const known = (v: string): boolean => v !== '' && v !== 'unknown';

export function classify(from: Place, to: Place): Hop {
  if (!known(from.region) || !known(to.region)) return 'unknown';
  if (from.region !== to.region) return 'crossRegion';
  if (!known(from.zone) || !known(to.zone)) return 'unknown';
  return from.zone === to.zone ? 'inZone' : 'crossZone';
}

const zero = (): Split => ({ inZone: 0, crossZone: 0, crossRegion: 0, unknown: 0 });

function add(into: Split, s: Split, k = 1): void {
  into.inZone += s.inZone * k;
  into.crossZone += s.crossZone * k;
  into.crossRegion += s.crossRegion * k;
  into.unknown += s.unknown * k;
}

function pct(s: Split): Split | null {
  const all = s.inZone + s.crossZone + s.crossRegion + s.unknown;
  if (!(all > 0)) return null;
  return {
    inZone: (100 * s.inZone) / all,
    crossZone: (100 * s.crossZone) / all,
    crossRegion: (100 * s.crossRegion) / all,
    unknown: (100 * s.unknown) / all,
  };
}

/** Dollars for `bytes` split so, over `seconds`, extrapolated to a month. */
export function monthlyCost(bytes: Split, seconds: number, prices: CostPrices): number {
  if (!(seconds > 0)) return 0;
  const perWindow =
    (bytes.crossZone / GIB) * 2 * prices.interZonePerGb + (bytes.crossRegion / GIB) * prices.interRegionPerGb;
  return (perWindow * MONTH_SECONDS) / seconds;
}

/**
 * How a uniform spread over `endpoints` from `from` splits one byte; null without endpoints. Endpoints of
 * unknown locality count as `unknown`.
 */
export function uniformSplit(from: Place, endpoints: ServiceEndpoints['localities']): Split | null {
  let n = 0;
  const s = zero();
  for (const l of endpoints) {
    if (!(l.endpoints > 0)) continue;
    n += l.endpoints;
    s[classify(from, l)] += l.endpoints;
  }
  if (n === 0) return null;
  return {
    inZone: s.inZone / n,
    crossZone: s.crossZone / n,
    crossRegion: s.crossRegion / n,
    unknown: s.unknown / n,
  };
}

interface Tally {
  bytes: Split;
  requests: Split;
  uniform: Split;
  /** Bytes of flows that have a uniform estimate, and of all flows. */
  uniformCovered: number;
  flows: number;
}

const newTally = (): Tally => ({
  bytes: zero(),
  requests: zero(),
  uniform: zero(),
  uniformCovered: 0,
  flows: 0,
});

function figures(t: Tally, seconds: number, prices: CostPrices): CostFigures {
  const perSecond = zero();
  if (seconds > 0) add(perSecond, t.bytes, 1 / seconds);
  const total = t.bytes.inZone + t.bytes.crossZone + t.bytes.crossRegion + t.bytes.unknown;
  const covered = t.flows > 0 && t.uniformCovered > 0;
  return {
    bytes: t.bytes,
    bytesPerSecond: perSecond,
    requests: t.requests,
    bytesPct: pct(t.bytes),
    requestsPct: pct(t.requests),
    monthlyCost: monthlyCost(t.bytes, seconds, prices),
    uniform: covered
      ? {
          bytes: t.uniform,
          bytesPct: pct(t.uniform),
          monthlyCost: monthlyCost(t.uniform, seconds, prices),
          partial: t.uniformCovered < total,
        }
      : null,
  };
}

/** Prices the flows of a window of `windowSeconds`. */
export function costReport(
  flows: readonly Flow[],
  endpoints: readonly ServiceEndpoints[],
  windowSeconds: number,
  prices: CostPrices = DEFAULT_PRICES,
): CostReport {
  const byProxyService = new Map<string, ServiceEndpoints['localities']>();
  for (const e of endpoints) byProxyService.set(`${e.proxy}\u0000${e.service}`, e.localities);
  const total = newTally();
  const edges = new Map<string, { source: string; service: string; t: Tally }>();
  for (const f of flows) {
    const key = `${f.source}\u0000${f.service}`;
    let e = edges.get(key);
    if (e === undefined) edges.set(key, (e = { source: f.source, service: f.service, t: newTally() }));
    const hop = classify(f.from, f.to);
    const uniform = (() => {
      const eps = byProxyService.get(`${f.proxy}\u0000${f.service}`);
      return eps === undefined ? null : uniformSplit(f.from, eps);
    })();
    for (const t of [e.t, total]) {
      t.flows++;
      t.bytes[hop] += f.bytes;
      t.requests[hop] += f.requests;
      if (uniform !== null) {
        add(t.uniform, uniform, f.bytes);
        t.uniformCovered += f.bytes;
      }
    }
  }
  const out: CostEdge[] = [...edges.values()].map((e) => ({
    source: e.source,
    service: e.service,
    ...figures(e.t, windowSeconds, prices),
  }));
  const allBytes = (s: Split): number => s.inZone + s.crossZone + s.crossRegion + s.unknown;
  out.sort(
    (a, b) =>
      b.monthlyCost - a.monthlyCost ||
      allBytes(b.bytes) - allBytes(a.bytes) ||
      (a.source < b.source ? -1 : a.source > b.source ? 1 : a.service < b.service ? -1 : 1),
  );
  return { prices: { ...prices }, windowSeconds, total: figures(total, windowSeconds, prices), edges: out };
}

/**
 * `zone=0.01,region=0.02` (either may be left out: its default stays) → prices. Throws on anything else,
 * naming what is wrong.
 */
export function parsePrices(text: string, base: CostPrices = DEFAULT_PRICES): CostPrices {
  const out = { ...base };
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const m = /^\s*(zone|region)\s*=\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*$/.exec(part);
    if (m === null)
      throw new Error(`bad price ${JSON.stringify(part)}: expected zone=USD_PER_GB or region=USD_PER_GB`);
    if (m[1] === 'zone') out.interZonePerGb = Number(m[2]);
    else out.interRegionPerGb = Number(m[2]);
  }
  return out;
}
