/**
 * The collector's share of the cost view: the deltas of every scraped proxy's weft_locality_bytes_total and
 * weft_locality_requests_total, summed per flow — (proxy, destination service, source locality,
 * destination locality), protocols and directions together — into per-interval rings, so /api/cost can
 * price any window up to the retention.
 *
 * Bounded: a flow costs two Float64Array(retention / interval) (2.9 KB at the defaults, 180 slots; 14 KB
 * at a 1 s interval), and at most MAX_FLOWS (4096) are kept — 12 MB at the defaults. A flow without
 * traffic for a whole retention is forgotten; new flows past the bound are dropped (and counted).
 */
import type { Flow } from '../cost/model.ts';

export const LOCALITY_BYTES = 'weft_locality_bytes_total';
export const LOCALITY_REQUESTS = 'weft_locality_requests_total';
export const MAX_FLOWS = 4096;

const UNKNOWN = 'unknown';

/** Who the proxy at an address is, as the cost view names a flow's source. */
export interface FlowSource {
  proxyId: string;
  /** `namespace/name` of its workload, else its `name.namespace`, else its id. */
  source: string;
}

interface FlowRing {
  proxyId: string;
  source: string;
  service: string;
  from: { region: string; zone: string };
  to: { region: string; zone: string };
  bytes: Float64Array;
  requests: Float64Array;
  pendingBytes: number;
  pendingRequests: number;
  lastActiveTick: number;
}

export interface FlowWindow {
  flows: Flow[];
  /** The seconds the window covers: its ticks' span (at most the asked-for window). */
  seconds: number;
}

export class LocalityFlows {
  readonly capacity: number;
  readonly #flows = new Map<string, FlowRing>();
  dropped = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#flows.size;
  }

  /** One positive delta of one sample of the two families, from the proxy `who`. */
  add(who: FlowSource, family: string, labels: Map<string, string>, delta: number): void {
    const service = labels.get('destination_service') || UNKNOWN;
    const from = {
      region: labels.get('source_region') || UNKNOWN,
      zone: labels.get('source_zone') || UNKNOWN,
    };
    const to = {
      region: labels.get('destination_region') || UNKNOWN,
      zone: labels.get('destination_zone') || UNKNOWN,
    };
    const key = [who.proxyId, service, from.region, from.zone, to.region, to.zone].join('\u0000');
    let f = this.#flows.get(key);
    if (f === undefined) {
      if (this.#flows.size >= MAX_FLOWS) {
        this.dropped++;
        return;
      }
      f = {
        proxyId: who.proxyId,
        source: who.source,
        service,
        from,
        to,
        bytes: new Float64Array(this.capacity),
        requests: new Float64Array(this.capacity),
        pendingBytes: 0,
        pendingRequests: 0,
        lastActiveTick: -1,
      };
      this.#flows.set(key, f);
    }
    f.source = who.source;
    if (family === LOCALITY_BYTES) f.pendingBytes += delta;
    else f.pendingRequests += delta;
  }

  /** Closes the interval written at `slot`, the `tickNo`th. */
  tick(slot: number, tickNo: number): void {
    for (const [key, f] of this.#flows) {
      if (f.lastActiveTick < 0) f.lastActiveTick = tickNo;
      f.bytes[slot] = f.pendingBytes;
      f.requests[slot] = f.pendingRequests;
      if (f.pendingBytes > 0 || f.pendingRequests > 0) f.lastActiveTick = tickNo;
      f.pendingBytes = 0;
      f.pendingRequests = 0;
      if (tickNo - f.lastActiveTick >= this.capacity) this.#flows.delete(key);
    }
  }

  /**
   * The flows summed over `slots` (the window's, oldest first), with the seconds they span: from the tick
   * before the first slot (or the first slot's time less one interval) to the last.
   */
  window(slots: readonly number[], seconds: number): FlowWindow {
    const flows: Flow[] = [];
    for (const f of this.#flows.values()) {
      let bytes = 0;
      let requests = 0;
      for (const s of slots) {
        bytes += f.bytes[s];
        requests += f.requests[s];
      }
      if (bytes > 0 || requests > 0)
        flows.push({
          source: f.source,
          proxy: f.proxyId,
          service: f.service,
          from: { ...f.from },
          to: { ...f.to },
          bytes,
          requests,
        });
    }
    return { flows, seconds };
  }
}
