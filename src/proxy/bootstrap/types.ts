import type { Json } from '../../core/json.ts';
import type { StatsStoreOptions } from '../stats/store.ts';
import type { ClusterConfig, Locality } from '../upstream/types.ts';
import type { ListenerConfig, SocketAddress } from '../listener/types.ts';
import type { SecretValue } from '../tls/secrets.ts';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Json;
  readonly locality: Locality | undefined;
}

/** dynamic_resources.ads_config: the one aggregated (ADS) stream every dynamic resource comes over. */
export interface AdsConfig {
  /** GRPC: state of the world; DELTA_GRPC: incremental. */
  readonly apiType: 'GRPC' | 'DELTA_GRPC';
  /** The static cluster (HTTP/2) the ADS stream goes to. */
  readonly clusterName: string;
  /** The :authority of the stream (envoy_grpc.authority, else the cluster name, as in Envoy). */
  readonly authority: string;
  /** set_node_on_first_message_only: send the node in the first request of a stream only. */
  readonly nodeOnFirstMessageOnly: boolean;
}

/** A subscription over ADS (lds_config, cds_config). */
export interface AdsSubscriptionConfig {
  /** initial_fetch_timeout: how long readiness waits for the first response; 0 waits for ever. */
  readonly initialFetchTimeoutMs: number;
}

export interface DynamicResourcesConfig {
  readonly ads: AdsConfig | undefined;
  readonly lds: AdsSubscriptionConfig | undefined;
  readonly cds: AdsSubscriptionConfig | undefined;
}

/** A validated Envoy v3 bootstrap. */
export interface BootstrapConfig {
  readonly node: NodeInfo;
  /** stats_config: how stat names become Prometheus names and labels (Envoy's defaults when absent). */
  readonly stats?: StatsStoreOptions;
  readonly admin: { readonly address: SocketAddress } | undefined;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  /** static_resources.secrets, by name (transport sockets refer to them without an sds_config). */
  readonly secrets?: readonly { readonly name: string; readonly value: SecretValue }[];
  /** dynamic_resources, when the bootstrap has them. */
  readonly dynamic?: DynamicResourcesConfig;
  /** The normalized bootstrap (snake_case, proto3 JSON), for /config_dump. */
  readonly normalized: Json;
  /** The file it came from, for error messages and /server_info. */
  readonly source: string;
}
