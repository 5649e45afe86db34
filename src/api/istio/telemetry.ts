/**
 * The spec of Istio's telemetry.istio.io Telemetry, after schema validation. Typed loosely below the
 * top level: Weft stores and serves it now; its behaviour is a later issue's work.
 */
import type { PolicyTargetReference, WorkloadLabelSelector } from './security.ts';

export interface ProviderRef {
  name: string;
}

export interface Telemetry {
  selector?: WorkloadLabelSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: {
    match?: { mode?: string };
    providers?: ProviderRef[];
    randomSamplingPercentage?: number | null;
    disableSpanReporting?: boolean | null;
    customTags?: Record<string, unknown>;
    [field: string]: unknown;
  }[];
  metrics?: {
    providers?: ProviderRef[];
    overrides?: Record<string, unknown>[];
    reportingInterval?: string;
  }[];
  accessLogging?: {
    match?: { mode?: string };
    providers?: ProviderRef[];
    disabled?: boolean | null;
    filter?: { expression?: string };
  }[];
}
