/**
 * Named TLS secrets (Envoy's Secret resource): certificates with their keys, and trust bundles. Transport
 * sockets refer to them by name and read the current value at each handshake, so a rotated certificate
 * or trust bundle applies to new connections at once and existing connections keep theirs.
 *
 * Where a secret comes from is its `SecretSource`:
 *  - 'static': `static_resources.secrets` of the bootstrap;
 *  - 'ads': SDS over the ADS stream (`sds_config: { ads: {} }`), how the control plane sends trust bundles;
 *  - 'agent': the proxy's own certificate agent, reached as Istio's `sds-grpc` SDS cluster: it makes the
 *    workload's key locally and has the control plane's CA sign it, so the private key never leaves.
 */

export interface TlsCertificateSecret {
  readonly kind: 'tls_certificate';
  /** PEM, leaf first. */
  readonly certificateChain: string;
  /** PEM. */
  readonly privateKey: string;
}

export interface ValidationContextSecret {
  readonly kind: 'validation_context';
  /** PEM bundle of every trusted root (several during a root rotation). */
  readonly trustedCa: string;
}

export type SecretValue = TlsCertificateSecret | ValidationContextSecret;

export type SecretSource = 'static' | 'ads' | 'agent';

/** Where the value of a secret that transport sockets asked for will come from, for its provider. */
export interface SecretDemand {
  readonly name: string;
  readonly source: SecretSource;
}

export class SecretManager {
  private readonly values = new Map<string, { value: SecretValue; version: number }>();
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Names in use per source, counted by watchers, so providers fetch only what is needed. */
  private readonly demand = new Map<string, { source: SecretSource; refs: number }>();
  private readonly demandListeners = new Set<(demands: readonly SecretDemand[]) => void>();
  private versions = 0;

  /** The current value and a version that changes with every update; undefined until it first arrives. */
  get(name: string): { readonly value: SecretValue; readonly version: number } | undefined {
    return this.values.get(name);
  }

  /** Delivers or replaces a secret's value and tells its watchers. */
  set(name: string, value: SecretValue): void {
    this.values.set(name, { value, version: ++this.versions });
    for (const w of this.watchers.get(name) ?? []) w();
  }

  /** Removes a secret (SDS removal): new handshakes needing it fail until it comes back. */
  delete(name: string): void {
    if (!this.values.delete(name)) return;
    for (const w of this.watchers.get(name) ?? []) w();
  }

  /**
   * Registers a transport socket's use of a secret; `onChange` runs when its value arrives or changes.
   * Returns the release function (call it when the listener or cluster goes away).
   */
  watch(name: string, source: SecretSource, onChange: () => void): () => void {
    let set = this.watchers.get(name);
    if (set === undefined) this.watchers.set(name, (set = new Set()));
    set.add(onChange);
    const d = this.demand.get(name);
    if (d === undefined) {
      this.demand.set(name, { source, refs: 1 });
      this.demandChanged();
    } else d.refs++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      set.delete(onChange);
      const cur = this.demand.get(name);
      if (cur !== undefined && --cur.refs === 0) {
        this.demand.delete(name);
        this.demandChanged();
      }
    };
  }

  /** The secrets in use, with their sources. */
  demands(): SecretDemand[] {
    return [...this.demand].map(([name, d]) => ({ name, source: d.source }));
  }

  /** Tells a provider (ADS, the agent) whenever the set of secrets in use changes. */
  onDemandChange(listener: (demands: readonly SecretDemand[]) => void): () => void {
    this.demandListeners.add(listener);
    return () => this.demandListeners.delete(listener);
  }

  private demandChanged(): void {
    const all = this.demands();
    for (const l of this.demandListeners) l(all);
  }
}
