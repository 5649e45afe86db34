/**
 * Envoy's `server.*` gauges that describe the process as a whole (state, version, concurrency, connections),
 * set at each stats flush (the memory and uptime gauges are set beside them by the server); and the process's
 * CPU, memory and event-loop delay in /stats/prometheus (process-metrics.ts).
 */
import type { Gauge, StatsStore } from './stats/store.ts';
import type { ListenerConfig } from './listener/types.ts';
import { processMetrics } from './process-metrics.ts';

/** Envoy's server.state values (envoy.admin.v3.ServerInfo.State). */
const STATE_VALUE = { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 } as const;

export type ServerState = 'INITIALIZING' | 'LIVE' | 'DRAINING' | 'STOPPED';

/** A version as one number, as Envoy's server.version is: `1.2.3` → 10203 (each part below 100). */
export function versionNumber(version: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? Number(m[1]) * 10_000 + Number(m[2]) * 100 + Number(m[3]) : 0;
}

export class ServerStats {
  readonly #store: StatsStore;
  readonly #state: Gauge;
  readonly #totalConnections: Gauge;

  constructor(store: StatsStore, version: string) {
    this.#store = store;
    this.#state = store.gauge('server.state');
    this.#totalConnections = store.gauge('server.total_connections');
    // One event loop serves every connection: Envoy's concurrency counts worker threads.
    store.gauge('server.concurrency').set(1);
    store.gauge('server.version').set(versionNumber(version));
    this.#state.set(STATE_VALUE.INITIALIZING);
    store.addPrometheusSource(processMetrics());
  }

  /** `listeners`: the active ones; their connections are read from their `downstream_cx_active` gauges. */
  flush(state: ServerState, listeners: Iterable<{ readonly config: ListenerConfig }>): void {
    this.#state.set(state === 'STOPPED' ? STATE_VALUE.DRAINING : STATE_VALUE[state]);
    let total = 0;
    for (const l of listeners) {
      const { host, port } = l.config.address;
      const h = host.includes(':') ? `[${host}]` : host;
      total += this.#store.gauge(`listener.${h}_${port}.downstream_cx_active`).value;
    }
    this.#totalConnections.set(total);
  }
}
