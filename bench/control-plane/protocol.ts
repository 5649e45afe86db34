// Messages between the benchmark (run.ts) and its load processes (load.ts).
import type { SimProxyIdentity } from './sim-proxy.ts';

/** An endpoint change to watch for: the clusters whose assignment must carry the new address. */
export interface WatchedChange {
  readonly id: number;
  readonly address: string;
  readonly clusters: readonly string[];
}

export type LoadCommand =
  | { type: 'connect'; target: string; proxies: SimProxyIdentity[]; perTick: number }
  | { type: 'status' }
  | { type: 'sync-times' }
  | { type: 'watch'; change: WatchedChange }
  | { type: 'progress'; id: number }
  | { type: 'collect'; ids: number[] }
  | { type: 'record'; on: boolean }
  | { type: 'close' };

export interface LoadStatus {
  type: 'status';
  synced: number;
  proxies: number;
  responses: number;
  bytes: number;
  /** Streams that failed and were opened again (with backoff, as Envoy does). */
  reconnects: number;
  /** Proxies whose current stream has not received everything it asked for yet (after a reconnect). */
  outOfSync: number;
  errors: string[];
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export interface SyncTime {
  id: string;
  delta: boolean;
  connectStartedAt: number;
  /** 0 = never synced. */
  syncedAt: number;
}

export type LoadReply =
  | { type: 'ready'; pid: number }
  | { type: 'connected'; at: number }
  | { type: 'all-synced'; at: number }
  | LoadStatus
  | { type: 'sync-times'; times: SyncTime[] }
  | { type: 'watching'; id: number }
  | { type: 'progress'; id: number; arrived: number; of: number }
  | { type: 'arrivals'; arrivals: Record<number, number[]> }
  | { type: 'recording' }
  | { type: 'updates'; updates: number[][] }
  | { type: 'closed' };
