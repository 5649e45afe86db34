/** xDS subscription stats with Envoy's names (`listener_manager.lds.*`, `cluster_manager.cds.*`, ...). */
import { hashString } from '../../core/hash.ts';
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';

/** One subscription's counters: Envoy's SubscriptionStats. */
export class SubscriptionStats {
  readonly updateAttempt: Counter;
  readonly updateSuccess: Counter;
  readonly updateRejected: Counter;
  readonly updateFailure: Counter;
  readonly updateEmpty: Counter;
  readonly initFetchTimeout: Counter;
  readonly version: Gauge;
  readonly updateTime: Gauge;

  constructor(store: StatsStore, prefix: string) {
    this.updateAttempt = store.counter(`${prefix}update_attempt`);
    this.updateSuccess = store.counter(`${prefix}update_success`);
    this.updateRejected = store.counter(`${prefix}update_rejected`);
    this.updateFailure = store.counter(`${prefix}update_failure`);
    this.updateEmpty = store.counter(`${prefix}update_empty`);
    this.initFetchTimeout = store.counter(`${prefix}init_fetch_timeout`);
    this.version = store.gauge(`${prefix}version`);
    this.updateTime = store.gauge(`${prefix}update_time`);
  }

  /** A successful update: Envoy's `version` gauge is a hash of version_info. */
  succeeded(version: string): void {
    this.updateSuccess.inc();
    this.version.set(hashString(version));
    this.updateTime.set(Date.now());
  }
}

/**
 * The update counters of one route configuration (per connection manager) or one EDS cluster: fewer than a
 * subscription's, since a mesh-wide configuration has thousands of them.
 */
export class ResourceUpdateStats {
  readonly updateAttempt: Counter;
  readonly updateSuccess: Counter;
  readonly updateRejected: Counter;
  readonly updateEmpty: Counter;
  readonly version: Gauge;

  constructor(store: StatsStore, prefix: string) {
    this.updateAttempt = store.counter(`${prefix}update_attempt`);
    this.updateSuccess = store.counter(`${prefix}update_success`);
    this.updateRejected = store.counter(`${prefix}update_rejected`);
    this.updateEmpty = store.counter(`${prefix}update_empty`);
    this.version = store.gauge(`${prefix}version`);
  }

  succeeded(version: string): void {
    this.updateSuccess.inc();
    this.version.set(hashString(version));
  }
}

/** Listener manager and cluster manager counters and gauges that LDS and CDS move. */
export class ManagerStats {
  readonly listenerAdded: Counter;
  readonly listenerModified: Counter;
  readonly listenerInPlaceUpdated: Counter;
  readonly listenerRemoved: Counter;
  readonly listenerCreateFailure: Counter;
  readonly listenersActive: Gauge;
  readonly listenersWarming: Gauge;
  readonly listenersDraining: Gauge;
  readonly clusterAdded: Counter;
  readonly clusterModified: Counter;
  readonly clusterRemoved: Counter;
  readonly clustersActive: Gauge;
  readonly clustersWarming: Gauge;
  readonly connectedState: Gauge;

  constructor(store: StatsStore) {
    const l = 'listener_manager.';
    this.listenerAdded = store.counter(`${l}listener_added`);
    this.listenerModified = store.counter(`${l}listener_modified`);
    this.listenerInPlaceUpdated = store.counter(`${l}listener_in_place_updated`);
    this.listenerRemoved = store.counter(`${l}listener_removed`);
    this.listenerCreateFailure = store.counter(`${l}listener_create_failure`);
    this.listenersActive = store.gauge(`${l}total_listeners_active`);
    this.listenersWarming = store.gauge(`${l}total_listeners_warming`);
    this.listenersDraining = store.gauge(`${l}total_listeners_draining`);
    const c = 'cluster_manager.';
    this.clusterAdded = store.counter(`${c}cluster_added`);
    this.clusterModified = store.counter(`${c}cluster_modified`);
    this.clusterRemoved = store.counter(`${c}cluster_removed`);
    this.clustersActive = store.gauge(`${c}active_clusters`);
    this.clustersWarming = store.gauge(`${c}warming_clusters`);
    this.connectedState = store.gauge('control_plane.connected_state');
  }
}
