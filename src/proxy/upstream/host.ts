/** Host objects: one per endpoint address of a cluster. */
import { isIPv6 } from 'node:net';
import type { HealthStatus, Host, Locality } from './types.ts';

/** `ip:port`, with IPv6 addresses bracketed, as Envoy prints host addresses. */
export function hostKey(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface HostInit {
  readonly address: string;
  readonly port: number;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  readonly health: HealthStatus;
  readonly socketMatch?: Readonly<Record<string, string>>;
  readonly istioWorkload?: string;
}

// A class so every host has the same hidden class: the load balancers read these fields per request.
class UpstreamHost implements Host {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  health: HealthStatus;
  activeRequests: number;
  outlierEjected: boolean;
  readonly socketMatch: Readonly<Record<string, string>> | undefined;
  readonly istioWorkload: string | undefined;

  constructor(init: HostInit) {
    this.key = hostKey(init.address, init.port);
    this.address = init.address;
    this.port = init.port;
    this.hostname = init.hostname;
    this.weight = init.weight;
    this.locality = init.locality;
    this.priority = init.priority;
    this.health = init.health;
    this.activeRequests = 0;
    this.outlierEjected = false;
    this.socketMatch = init.socketMatch;
    this.istioWorkload = init.istioWorkload;
  }
}

export function createHost(init: HostInit): Host {
  return new UpstreamHost(init);
}

/** Whether an existing host already is what `init` describes, so it can be kept (with its counters). */
export function hostMatches(host: Host, init: HostInit): boolean {
  return (
    host.address === init.address &&
    host.port === init.port &&
    host.hostname === init.hostname &&
    host.weight === init.weight &&
    host.priority === init.priority &&
    host.locality.region === init.locality.region &&
    host.locality.zone === init.locality.zone &&
    host.locality.subZone === init.locality.subZone &&
    // Another transport (e.g. the workload got a sidecar) needs a new host: pools keep their transport.
    sameMatch(host.socketMatch, init.socketMatch) &&
    // Telemetry reads the workload from the host: a relabelled endpoint gets a new host.
    host.istioWorkload === init.istioWorkload
  );
}

function sameMatch(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
