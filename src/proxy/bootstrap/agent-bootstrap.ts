/**
 * The bootstrap a proxy builds for itself when it joins a mesh, as istio-agent builds Envoy's: the node
 * identifies the workload the way Istio's proxies do, dynamic resources come over ADS from the control
 * plane, and static listeners serve Prometheus stats (15090) and the readiness probe (15021), proxied to
 * the admin server (15000) as in Istio's sidecar.
 *
 * Istio's conventions followed here: node.id `TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`;
 * node.cluster `CANONICAL-SERVICE.NAMESPACE`, the canonical service being the first of the labels
 * service.istio.io/canonical-name, app.kubernetes.io/name, app, else the workload name; node.metadata with
 * Istio's keys (INSTANCE_IPS is a comma-separated string, as Istio marshals its string lists).
 */
import net from 'node:net';
import os from 'node:os';
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { VERSION } from '../../core/version.ts';

export interface AgentOptions {
  /** The control plane's ADS address, `host:port` (`[v6]:port` for IPv6). */
  readonly xdsAddress: string;
  readonly type: 'sidecar' | 'router';
  /** The pod (workload instance) name. */
  readonly name: string;
  readonly namespace: string;
  /** The workload's IP; the first non-internal address of the machine by default. */
  readonly ip?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  readonly locality?: { readonly region: string; readonly zone: string; readonly subZone: string };
  /** The workload (Deployment) name; the pod name by default. */
  readonly workloadName?: string;
  /** Incremental xDS (DELTA_GRPC) instead of the state of the world. */
  readonly delta?: boolean;
  readonly interceptionMode?: 'NONE' | 'REDIRECT';
  readonly clusterId?: string;
  readonly adminPort?: number;
  readonly prometheusPort?: number;
  readonly healthPort?: number;
  /** More node.metadata (Istio's ISTIO_META_* variables; Weft's own keys); overrides the defaults. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export const AGENT_DEFAULTS = {
  adminPort: 15000,
  prometheusPort: 15090,
  healthPort: 15021,
  clusterId: 'Kubernetes',
  serviceAccount: 'default',
  interceptionMode: 'NONE',
} as const;

/** The metadata key carrying the admin port (Weft's own; Istio has none for it). */
export const WEFT_ADMIN_PORT_KEY = 'WEFT_ADMIN_PORT';

const XDS_CLUSTER = 'xds-grpc';

/** `k=v,k2=v2` → a map (labels, metadata); an empty string is an empty map. */
export function parseLabels(text: string, option = '--labels'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(option, `expected key=value, got ${JSON.stringify(item)}`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

/** `region/zone/subzone` (trailing parts optional) → a locality. */
export function parseLocality(text: string): { region: string; zone: string; subZone: string } {
  const parts = text.split('/');
  if (parts.length > 3)
    throw new ConfigError('--locality', `expected region/zone/subzone, got ${JSON.stringify(text)}`);
  return { region: parts[0] ?? '', zone: parts[1] ?? '', subZone: parts[2] ?? '' };
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(what, `expected host:port, got ${JSON.stringify(text)}`);
  return { host: m[1], port };
}

/** The machine's first non-internal IPv4 address (else IPv6, else loopback), as istio-agent picks one. */
export function defaultInstanceIp(): string {
  const all = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
  const external = all.filter((a) => !a.internal);
  return (
    external.find((a) => a.family === 'IPv4')?.address ??
    external.find((a) => a.family === 'IPv6')?.address ??
    '127.0.0.1'
  );
}

/** Istio's canonical service name for a workload. */
export function canonicalServiceName(labels: Readonly<Record<string, string>>, workloadName: string): string {
  return (
    labels['service.istio.io/canonical-name'] ??
    labels['app.kubernetes.io/name'] ??
    labels.app ??
    workloadName
  );
}

function port(value: number | undefined, fallback: number, what: string): number {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ConfigError(what, `invalid port ${p}`);
  return p;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function buildAgentBootstrap(o: AgentOptions): JsonObject {
  if (!o.name) throw new ConfigError('--name', 'required');
  if (!DNS_LABEL.test(o.namespace))
    throw new ConfigError('--namespace', `${JSON.stringify(o.namespace)} is not a valid namespace name`);
  const ip = o.ip ?? defaultInstanceIp();
  if (net.isIP(ip) === 0) throw new ConfigError('--ip', `${JSON.stringify(ip)} is not an IP address`);
  const xds = parseHostPort(o.xdsAddress, '--xds-address');
  const labels = { ...(o.labels ?? {}) };
  const workloadName = o.workloadName ?? o.name;
  const adminPort = port(o.adminPort, AGENT_DEFAULTS.adminPort, '--admin-port');
  const prometheusPort = port(o.prometheusPort, AGENT_DEFAULTS.prometheusPort, '--prometheus-port');
  const healthPort = port(o.healthPort, AGENT_DEFAULTS.healthPort, '--health-port');
  if (adminPort === 0)
    throw new ConfigError(
      '--admin-port',
      'must be a fixed port (the stats and health listeners proxy to it)',
    );
  const locality = o.locality;
  const ads = { ads: {}, resource_api_version: 'V3' };

  const node: JsonObject = {
    id: `${o.type}~${ip}~${o.name}.${o.namespace}~${o.namespace}.svc.cluster.local`,
    cluster: `${canonicalServiceName(labels, workloadName)}.${o.namespace}`,
    metadata: {
      NAME: o.name,
      NAMESPACE: o.namespace,
      LABELS: labels,
      SERVICE_ACCOUNT: o.serviceAccount ?? AGENT_DEFAULTS.serviceAccount,
      WORKLOAD_NAME: workloadName,
      INSTANCE_IPS: ip,
      INTERCEPTION_MODE: o.interceptionMode ?? AGENT_DEFAULTS.interceptionMode,
      CLUSTER_ID: o.clusterId ?? AGENT_DEFAULTS.clusterId,
      ISTIO_VERSION: VERSION,
      ENVOY_PROMETHEUS_PORT: prometheusPort,
      ENVOY_STATUS_PORT: healthPort,
      [WEFT_ADMIN_PORT_KEY]: adminPort,
      ...(o.metadata ?? {}),
    },
    ...(locality
      ? { locality: { region: locality.region, zone: locality.zone, sub_zone: locality.subZone } }
      : {}),
  };

  return {
    node,
    admin: { address: socketAddress('127.0.0.1', adminPort) },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      cds_config: ads,
      lds_config: ads,
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER,
          type: net.isIP(xds.host) === 0 ? 'STRICT_DNS' : 'STATIC',
          connect_timeout: '1s',
          load_assignment: endpointsOf(XDS_CLUSTER, xds.host, xds.port),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
        // Istio's names for the clusters behind the stats and health listeners.
        {
          name: 'prometheus_stats',
          type: 'STATIC',
          connect_timeout: '0.25s',
          load_assignment: endpointsOf('prometheus_stats', '127.0.0.1', adminPort),
        },
        {
          name: 'agent',
          type: 'STATIC',
          connect_timeout: '0.25s',
          load_assignment: endpointsOf('agent', '127.0.0.1', adminPort),
        },
      ],
      // Port 0 leaves a listener out: many sidecars on one machine (weft up) read stats and readiness from
      // their admin port, and an ephemeral port on every interface would only expose them.
      listeners: [
        ...(prometheusPort === 0
          ? []
          : [
              plainListener('prometheus', prometheusPort, 'stats', {
                match: { prefix: '/stats/prometheus' },
                route: { cluster: 'prometheus_stats' },
              }),
            ]),
        ...(healthPort === 0
          ? []
          : [
              plainListener('health', healthPort, 'agent', {
                match: { path: '/healthz/ready' },
                route: { cluster: 'agent', prefix_rewrite: '/ready' },
              }),
            ]),
      ],
    },
  };
}

function socketAddress(address: string, portValue: number): JsonObject {
  return { socket_address: { address, port_value: portValue } };
}

function endpointsOf(cluster: string, host: string, portValue: number): JsonObject {
  return {
    cluster_name: cluster,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, portValue) } }] }],
  };
}

function plainListener(name: string, portValue: number, statPrefix: string, route: JsonObject): JsonObject {
  return {
    name,
    address: socketAddress('0.0.0.0', portValue),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: statPrefix,
              route_config: {
                name: `${name}_routes`,
                virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [route] }],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}
