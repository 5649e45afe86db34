/**
 * Passive health checking, after Envoy's outlier detection (docs: "Outlier detection"): per-host
 * consecutive-error counters fed by the router; a host reaching a threshold is ejected (marked so the
 * host set leaves it out of the healthy view) for base_ejection_time × its ejection multiplier, and the
 * interval sweep returns hosts whose time is up.
 */
import { createLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';
import type { UpstreamFailure } from './codec.ts';
import type { OutlierDetectionConfig } from './outlier-config.ts';
import type { Host } from './types.ts';

/** What the detector needs of its cluster: the current hosts and a way to rebuild the load balancer. */
export interface OutlierCluster {
  readonly name: string;
  hosts(): readonly Host[];
  healthChanged(): void;
}

export type EjectionReason =
  'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

/** A failure that happened on our side of the wire: no response was received from the host. */
export type LocalOriginFailure = 'connect' | 'reset' | 'timeout';

export interface OutlierDetectorOptions {
  /** Monotonic milliseconds; performance.now by default. */
  readonly now?: () => number;
  /** Numbers in [0, 1), for the enforcing percentages and the jitter; Math.random by default. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Runs the interval sweep on a timer (default true); tests call sweep() themselves. */
  readonly timer?: boolean;
}

/** Envoy's per-host monitor state. */
interface HostMonitor {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  /** Envoy's eject-time backoff: the ejection time is base × this, grown per ejection, shrunk while healthy. */
  multiplier: number;
  /** Ejections over the host's life, for logs. */
  ejections: number;
  lastEjectionAt: number;
  lastReturnAt: number | undefined;
  jitterMs: number;
}

class OutlierStats {
  readonly ejectionsActive: Gauge;
  readonly enforcedTotal: Counter;
  readonly overflow: Counter;
  readonly detected: Readonly<Record<EjectionReason, Counter>>;
  readonly enforced: Readonly<Record<EjectionReason, Counter>>;

  constructor(store: StatsStore, cluster: string) {
    const p = `cluster.${cluster}.outlier_detection.`;
    this.ejectionsActive = store.gauge(p + 'ejections_active');
    this.enforcedTotal = store.counter(p + 'ejections_enforced_total');
    this.overflow = store.counter(p + 'ejections_overflow');
    const byReason = (kind: string): Record<EjectionReason, Counter> => ({
      consecutive_5xx: store.counter(`${p}ejections_${kind}_consecutive_5xx`),
      consecutive_gateway_failure: store.counter(`${p}ejections_${kind}_consecutive_gateway_failure`),
      consecutive_local_origin_failure: store.counter(
        `${p}ejections_${kind}_consecutive_local_origin_failure`,
      ),
    });
    this.detected = byReason('detected');
    this.enforced = byReason('enforced');
  }
}

function isGatewayError(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/** The local-origin failure an upstream error stands for; undefined when it says nothing about the host. */
function localOriginFailureOf(failure: UpstreamFailure): LocalOriginFailure | undefined {
  switch (failure) {
    case 'connect':
      return 'connect';
    case 'reset':
    case 'termination':
    case 'protocol':
      return 'reset';
    default:
      // 'refused' (the stream was turned away before processing) and 'local' (we aborted) are not host failures.
      return undefined;
  }
}

export class OutlierDetector {
  readonly config: OutlierDetectionConfig;
  private readonly cluster: OutlierCluster;
  private readonly stats: OutlierStats;
  private readonly monitors = new Map<Host, HostMonitor>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private active = 0;
  /** Set once a successor took over the state, so stopping leaves the shared gauge to it. */
  private handedOver = false;

  constructor(
    cluster: OutlierCluster,
    config: OutlierDetectionConfig,
    store: StatsStore,
    options: OutlierDetectorOptions = {},
  ) {
    this.cluster = cluster;
    this.config = config;
    this.stats = new OutlierStats(store, cluster.name);
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? createLogger('upstream.outlier');
    this.stats.ejectionsActive.set(0);
    if (options.timer !== false) {
      this.timer = setInterval(() => this.sweep(), config.intervalMs);
      // Ejection bookkeeping must never keep the process alive.
      this.timer.unref();
    }
  }

  /** Hosts currently ejected. */
  ejectionsActive(): number {
    return this.active;
  }

  /** A response from `host` with this status. */
  response(host: Host, status: number): void {
    const m = this.monitor(host);
    const cfg = this.config;
    if (status >= 500 && status <= 599) {
      if (isGatewayError(status) && ++m.consecutiveGatewayFailure === cfg.consecutiveGatewayFailure) {
        m.consecutiveGatewayFailure = 0;
        this.detected(host, 'consecutive_gateway_failure');
      }
      if (++m.consecutive5xx === cfg.consecutive5xx) {
        m.consecutive5xx = 0;
        this.detected(host, 'consecutive_5xx');
      }
      return;
    }
    m.consecutive5xx = 0;
    m.consecutiveGatewayFailure = 0;
    // A response at all means the connection worked.
    m.consecutiveLocalOriginFailure = 0;
  }

  /** An attempt to `host` ended without a response; failures that say nothing of the host are ignored. */
  upstreamFailure(host: Host, failure: UpstreamFailure): void {
    const kind = localOriginFailureOf(failure);
    if (kind !== undefined) this.localOriginFailure(host, kind);
  }

  /**
   * A connect failure, reset or timeout. Without split_external_local_origin_errors it counts as the
   * gateway error Envoy maps it to (503, or 504 for a timeout); with it, on its own counter.
   */
  localOriginFailure(host: Host, kind: LocalOriginFailure): void {
    if (!this.config.splitExternalLocalOriginErrors) {
      this.response(host, kind === 'timeout' ? 504 : 503);
      return;
    }
    const m = this.monitor(host);
    if (++m.consecutiveLocalOriginFailure === this.config.consecutiveLocalOriginFailure) {
      m.consecutiveLocalOriginFailure = 0;
      this.detected(host, 'consecutive_local_origin_failure');
    }
  }

  /**
   * The interval sweep: returns hosts whose ejection time is up, shrinks the multiplier of hosts that
   * stayed healthy for an interval since their return, and forgets hosts that left the cluster.
   */
  sweep(): void {
    const now = this.now();
    const cfg = this.config;
    const present = new Set(this.cluster.hosts());
    let changed = false;
    for (const [host, m] of this.monitors) {
      if (!present.has(host)) {
        this.monitors.delete(host);
        if (host.outlierEjected === true) {
          host.outlierEjected = false;
          this.setActive(this.active - 1);
        }
        continue;
      }
      if (host.outlierEjected !== true) {
        if (m.multiplier > 0 && m.lastReturnAt !== undefined && now - m.lastReturnAt >= cfg.intervalMs) {
          m.multiplier--;
        }
        continue;
      }
      const ejectedFor = Math.min(cfg.baseEjectionTimeMs * m.multiplier, cfg.maxEjectionTimeMs) + m.jitterMs;
      if (now - m.lastEjectionAt < ejectedFor) continue;
      host.outlierEjected = false;
      m.lastReturnAt = now;
      this.setActive(this.active - 1);
      changed = true;
      this.logger.info('host returned to service', {
        cluster: this.cluster.name,
        host: host.key,
        ejections: m.ejections,
      });
    }
    if (changed) this.cluster.healthChanged();
  }

  /**
   * Takes over a replaced detector's state (a config update rebuilt the cluster): hosts with the same
   * address keep their counters, multiplier and ejection.
   */
  adopt(previous: OutlierDetector): void {
    const byKey = new Map<string, [Host, HostMonitor]>();
    for (const [host, m] of previous.monitors) byKey.set(host.key, [host, m]);
    let ejected = 0;
    for (const host of this.cluster.hosts()) {
      const old = byKey.get(host.key);
      if (old === undefined) continue;
      this.monitors.set(host, { ...old[1] });
      if (old[0].outlierEjected === true) {
        host.outlierEjected = true;
        ejected++;
      }
    }
    previous.handedOver = true;
    if (ejected > 0) {
      this.setActive(this.active + ejected);
      this.cluster.healthChanged();
    }
  }

  stop(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (!this.handedOver) this.stats.ejectionsActive.set(0);
  }

  private monitor(host: Host): HostMonitor {
    let m = this.monitors.get(host);
    if (m === undefined) {
      m = {
        consecutive5xx: 0,
        consecutiveGatewayFailure: 0,
        consecutiveLocalOriginFailure: 0,
        multiplier: 0,
        ejections: 0,
        lastEjectionAt: 0,
        lastReturnAt: undefined,
        jitterMs: 0,
      };
      this.monitors.set(host, m);
    }
    return m;
  }

  private enforcing(reason: EjectionReason): number {
    const cfg = this.config;
    if (reason === 'consecutive_5xx') return cfg.enforcingConsecutive5xx;
    if (reason === 'consecutive_gateway_failure') return cfg.enforcingConsecutiveGatewayFailure;
    return cfg.enforcingConsecutiveLocalOriginFailure;
  }

  /** A threshold was reached: eject unless already ejected, over max_ejection_percent, or not enforced. */
  private detected(host: Host, reason: EjectionReason): void {
    if (host.outlierEjected === true) return;
    this.stats.detected[reason].inc();
    const cfg = this.config;
    const total = this.cluster.hosts().length;
    const percentAfter = total === 0 ? 100 : (100 * (this.active + 1)) / total;
    if (percentAfter > cfg.maxEjectionPercent && !(cfg.alwaysEjectOneHost && this.active === 0)) {
      this.stats.overflow.inc();
      return;
    }
    if (!(this.random() * 100 < this.enforcing(reason))) return;

    const m = this.monitor(host);
    if (cfg.baseEjectionTimeMs * m.multiplier < cfg.maxEjectionTimeMs) m.multiplier++;
    m.ejections++;
    m.lastEjectionAt = this.now();
    m.jitterMs = Math.floor(this.random() * (cfg.maxEjectionTimeJitterMs + 1));
    // Each ejection starts the host's counters afresh for when it returns.
    m.consecutive5xx = 0;
    m.consecutiveGatewayFailure = 0;
    m.consecutiveLocalOriginFailure = 0;
    host.outlierEjected = true;
    this.setActive(this.active + 1);
    this.stats.enforcedTotal.inc();
    this.stats.enforced[reason].inc();
    this.logger.info('host ejected', {
      cluster: this.cluster.name,
      host: host.key,
      reason,
      ejections: m.ejections,
      ejectionTimeMs: Math.min(cfg.baseEjectionTimeMs * m.multiplier, cfg.maxEjectionTimeMs) + m.jitterMs,
    });
    this.cluster.healthChanged();
  }

  private setActive(n: number): void {
    this.active = n;
    this.stats.ejectionsActive.set(n);
  }
}
