/** What the admin server needs from the running proxy. The proxy's server object implements it. */
import type { Host } from '../upstream/types.ts';

export interface AdminClusterStatus {
  readonly name: string;
  readonly hosts: readonly Host[];
  /** Free-form per-cluster extras (e.g. circuit breaker settings) rendered as `name::key::value`. */
  readonly extras?: Readonly<Record<string, string | number>>;
  /** Open upstream connections to a host (Envoy's cx_active), when the pool layer knows them. */
  readonly connectionCount?: (host: Host) => number;
}

export interface AdminTarget {
  /** True once listeners are bound and clusters initialised (DNS resolved). */
  isReady(): boolean;
  /** Envoy-style server info: version, state, uptime, node, command line. */
  serverInfo(): Record<string, unknown>;
  /** The running configuration as JSON (Envoy's /config_dump shape: { configs: [...] }). */
  configDump(): unknown;
  clusters(): readonly AdminClusterStatus[];
  /** The TLS certificates in use, in Envoy's /certs JSON shape ({ certificates: [...] }); none when absent. */
  certs?(): unknown;
  /** Stop accepting new connections on all listeners; in-flight requests go on. */
  drainListeners(): Promise<void>;
  /** Graceful stop then exit. */
  quit(): void;
}
