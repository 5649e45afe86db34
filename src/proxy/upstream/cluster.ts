/**
 * The runtime cluster: its current hosts and the load balancer over them. Host changes (DNS
 * refreshes, later EDS and health checking) build a new load balancer and swap it in; requests in
 * flight keep the Host objects they hold, and hosts that survive a change stay the same objects, so
 * their activeRequests and connection pools carry over.
 */
import { createLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import { DnsDiscovery, systemDnsResolve } from './dns.ts';
import type { DnsResolve } from './dns.ts';
import { createHost, hostKey, hostMatches } from './host.ts';
import type { HostInit } from './host.ts';
import { PrioritySet } from './host-set.ts';
import type { LocalityWeightLookup } from './host-set.ts';
import { createLoadBalancer } from './lb/priority-lb.ts';
import type { RandomSource } from './lb/picker.ts';
import type { ClusterConfig, Host, LoadBalancer } from './types.ts';

/** Told which hosts appeared and which went away (so their connection pools can be closed). */
export type HostsChangedListener = (added: readonly Host[], removed: readonly Host[]) => void;

export interface ClusterOptions {
  /** Name resolution for DNS clusters; the system resolver by default. */
  readonly resolve?: DnsResolve;
  /** Randomness for the load balancer, numbers in [0, 1); Math.random by default. */
  readonly random?: RandomSource;
  readonly logger?: Logger;
}

/** A cluster's endpoints by locality and its overprovisioning factor: a load_assignment or an EDS resource. */
export type LoadAssignment = Pick<ClusterConfig, 'localityEndpoints' | 'overprovisioningFactor'>;

function hostInits(assignment: LoadAssignment): HostInit[] {
  return assignment.localityEndpoints.flatMap((le) =>
    le.endpoints.map((ep) => ({
      address: ep.address,
      port: ep.port,
      hostname: ep.hostname,
      weight: ep.weight,
      locality: le.locality,
      priority: le.priority,
      health: ep.health,
      ...(ep.socketMatch ? { socketMatch: ep.socketMatch } : {}),
      ...(ep.istioWorkload === undefined ? {} : { istioWorkload: ep.istioWorkload }),
    })),
  );
}

function localityWeights(assignment: LoadAssignment): LocalityWeightLookup {
  return (priority, locality) =>
    assignment.localityEndpoints.find(
      (le) =>
        le.priority === priority &&
        le.locality.region === locality.region &&
        le.locality.zone === locality.zone &&
        le.locality.subZone === locality.subZone,
    )?.weight;
}

export class Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  /** The current load balancer; replaced (not mutated) whenever hosts or their health change. */
  loadBalancer: LoadBalancer;

  private current: readonly Host[] = [];
  private prioritySet: PrioritySet;
  private readonly listeners = new Set<HostsChangedListener>();
  private readonly random: RandomSource;
  private readonly logger: Logger;
  /** The configured assignment, or the last one EDS delivered. */
  private assignment: LoadAssignment;
  private localityWeight: LocalityWeightLookup;
  private readonly dns: DnsDiscovery | undefined;

  constructor(config: ClusterConfig, options: ClusterOptions = {}) {
    this.name = config.name;
    this.config = config;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? createLogger('upstream.cluster');
    this.assignment = config;
    this.localityWeight = localityWeights(config);
    this.prioritySet = this.buildPrioritySet();
    this.loadBalancer = createLoadBalancer(this.prioritySet, config, this.random);
    if (config.type === 'STATIC') {
      this.setHosts(hostInits(config), false);
    } else if (config.type === 'STRICT_DNS' || config.type === 'LOGICAL_DNS') {
      this.dns = new DnsDiscovery(config, {
        resolve: options.resolve ?? systemDnsResolve,
        onHosts: (hosts) => this.setHosts(hosts, false),
        logger: this.logger,
      });
    }
    // EDS clusters start without hosts; setLoadAssignment gives them theirs.
  }

  /**
   * EDS: replaces the hosts with those of a ClusterLoadAssignment. Hosts that stay (same address, port,
   * weight, locality and priority) keep their Host object, so their connection pools and counters carry
   * over; a changed health status is applied to them in place.
   */
  setLoadAssignment(assignment: LoadAssignment): void {
    if (this.config.type !== 'EDS') throw new Error(`cluster ${this.name} is not an EDS cluster`);
    const weightsChanged =
      assignment.overprovisioningFactor !== this.assignment.overprovisioningFactor ||
      JSON.stringify(assignment.localityEndpoints.map((l) => [l.locality, l.priority, l.weight])) !==
        JSON.stringify(this.assignment.localityEndpoints.map((l) => [l.locality, l.priority, l.weight]));
    this.assignment = assignment;
    this.localityWeight = localityWeights(assignment);
    if (!this.setHosts(hostInits(assignment), true) && weightsChanged) this.healthChanged();
  }

  /** Every current host, across priorities. */
  hosts(): readonly Host[] {
    return this.current;
  }

  /**
   * Resolves when the cluster has its first host set: at once for STATIC; for DNS clusters after the
   * first resolution round, whether or not it succeeded (as Envoy finishes warming).
   */
  async start(): Promise<void> {
    if (this.dns) await this.dns.start();
  }

  stop(): void {
    this.dns?.stop();
  }

  /** Forces a DNS resolution round now (DNS clusters only). */
  async refreshDns(): Promise<void> {
    if (this.dns) await this.dns.refresh();
  }

  /** Registers a listener for host additions and removals; returns a function that unregisters it. */
  onHostsChanged(listener: HostsChangedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Rebuilds the load balancer after something changed Host.health (health checks, outlier detection). */
  healthChanged(): void {
    this.prioritySet = this.buildPrioritySet();
    this.loadBalancer = createLoadBalancer(this.prioritySet, this.config, this.random);
  }

  private buildPrioritySet(): PrioritySet {
    return new PrioritySet(
      this.current,
      this.assignment.overprovisioningFactor,
      this.config.healthyPanicThreshold,
      this.localityWeight,
    );
  }

  /**
   * Replaces the host list, keeping the Host objects that still match, and swaps the load balancer.
   * `applyHealth`: the source states health (EDS), so kept hosts take the new status; DNS does not.
   * Returns whether anything changed.
   */
  private setHosts(inits: readonly HostInit[], applyHealth: boolean): boolean {
    const existing = new Map<string, Host>();
    for (const h of this.current) existing.set(h.key, h);
    const next: Host[] = [];
    const added: Host[] = [];
    const kept = new Set<Host>();
    const keys = new Set<string>();
    let healthChanged = false;
    for (const init of inits) {
      const key = hostKey(init.address, init.port);
      // Two endpoints resolving to the same address and port make one host: the first one's.
      if (keys.has(key)) continue;
      keys.add(key);
      const old = existing.get(key);
      if (old !== undefined && hostMatches(old, init)) {
        if (applyHealth && old.health !== init.health) {
          old.health = init.health;
          healthChanged = true;
        }
        next.push(old);
        kept.add(old);
      } else {
        const host = createHost(init);
        next.push(host);
        added.push(host);
      }
    }
    const removed = this.current.filter((h) => !kept.has(h));
    if (added.length === 0 && removed.length === 0) {
      if (healthChanged) this.healthChanged();
      return healthChanged;
    }

    this.current = next;
    this.healthChanged();
    for (const listener of this.listeners) {
      try {
        listener(added, removed);
      } catch (err) {
        this.logger.error('hosts-changed listener failed', {
          cluster: this.name,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return true;
  }
}

export function createCluster(config: ClusterConfig, options?: ClusterOptions): Cluster {
  return new Cluster(config, options);
}
