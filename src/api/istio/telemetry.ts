/**
 * The spec of Istio's telemetry.istio.io Telemetry, after schema validation (the CRD schema has already
 * checked enums, ranges and which fields exist).
 */
import type { PolicyTargetReference, WorkloadLabelSelector } from './security.ts';

export interface ProviderRef {
  name: string;
}

/** CLIENT: the workload's outbound side (and gateways); SERVER: its inbound side. */
export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

export interface WorkloadModeSelector {
  mode?: WorkloadMode;
}

export type IstioMetric =
  | 'ALL_METRICS'
  | 'REQUEST_COUNT'
  | 'REQUEST_DURATION'
  | 'REQUEST_SIZE'
  | 'RESPONSE_SIZE'
  | 'TCP_OPENED_CONNECTIONS'
  | 'TCP_CLOSED_CONNECTIONS'
  | 'TCP_SENT_BYTES'
  | 'TCP_RECEIVED_BYTES'
  | 'GRPC_REQUEST_MESSAGES'
  | 'GRPC_RESPONSE_MESSAGES';

export interface MetricSelector {
  metric?: IstioMetric;
  customMetric?: string;
  mode?: WorkloadMode;
}

export interface TagOverride {
  operation?: 'UPSERT' | 'REMOVE';
  /** A CEL expression (the proxy evaluates the subset it supports). */
  value?: string;
}

export interface MetricsOverrides {
  match?: MetricSelector;
  disabled?: boolean | null;
  tagOverrides?: Record<string, TagOverride>;
}

export interface Metrics {
  providers?: ProviderRef[];
  overrides?: MetricsOverrides[];
  reportingInterval?: string;
}

export interface CustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
  formatter?: { value: string };
}

export interface Tracing {
  match?: WorkloadModeSelector;
  providers?: ProviderRef[];
  randomSamplingPercentage?: number | null;
  disableSpanReporting?: boolean | null;
  customTags?: Record<string, CustomTag>;
  useRequestIdForTraceSampling?: boolean | null;
  enableIstioTags?: boolean | null;
  disableContextPropagation?: boolean | null;
}

export interface AccessLogging {
  match?: WorkloadModeSelector;
  providers?: ProviderRef[];
  disabled?: boolean | null;
  filter?: { expression?: string };
}

export interface Telemetry {
  selector?: WorkloadLabelSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Tracing[];
  metrics?: Metrics[];
  accessLogging?: AccessLogging[];
}
