import type { Json } from '../../core/json.ts';
import type { ClusterConfig, Locality } from '../upstream/types.ts';
import type { ListenerConfig, SocketAddress } from '../listener/types.ts';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Json;
  readonly locality: Locality | undefined;
}

/** A validated Envoy v3 bootstrap. */
export interface BootstrapConfig {
  readonly node: NodeInfo;
  readonly admin: { readonly address: SocketAddress } | undefined;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  /** The normalized bootstrap (snake_case, proto3 JSON), for /config_dump. */
  readonly normalized: Json;
  /** The file it came from, for error messages and /server_info. */
  readonly source: string;
}
