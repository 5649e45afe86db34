/** The contract between the ADS client (protocol) and what applies resources to the running proxy. */
import type { JsonObject } from '../../core/json.ts';

/** One resource of a response, decoded — or why it could not be. */
export interface XdsResourceIn {
  readonly name: string;
  /** The response's version_info (state of the world) or the resource's own version (delta). */
  readonly version: string;
  /** Canonical proto3 JSON with "@type", when it decoded. */
  readonly json?: JsonObject;
  /** Set instead of json when the resource could not be decoded. */
  readonly error?: string;
}

/** A response, as a change to one type's resources. */
export interface XdsUpdate {
  readonly typeUrl: string;
  /** version_info of a state-of-the-world response, system_version_info of a delta one. */
  readonly version: string;
  /** Resources added or replaced (possibly unchanged: the receiver compares). */
  readonly resources: readonly XdsResourceIn[];
  /**
   * Names that no longer exist: for Listener and Cluster in the state of the world, those absent from the
   * response; in delta, removed_resources.
   */
  readonly removed: readonly string[];
}

export interface XdsSink {
  /**
   * Validates every resource, then applies them all; throws an Error whose message names each bad resource
   * and field to refuse the response (a NACK), leaving this type's configuration exactly as it was.
   */
  apply(update: XdsUpdate): Promise<void>;
  /** The names of a non-wildcard type (route configurations, EDS services) the proxy needs now. */
  resourceNames(typeUrl: string): ReadonlySet<string>;
  /** The ADS stream is established (true) or gone (false). */
  onConnectionState?(connected: boolean): void;
}
