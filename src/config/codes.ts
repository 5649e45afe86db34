/**
 * The catalogue of configuration diagnostics. Codes are stable: tools and CI scripts match on them.
 * Istio's analyzer code where Istio has the same check (so `istioctl analyze` users recognise it),
 * otherwise WE0xxx: WE00xx for loading, WE01xx for semantic checks, WE02xx for Weft support.
 * docs/analyze-codes.md lists every one; a unit test keeps the two in step.
 */
import type { Diagnostic, Severity } from './diagnostic.ts';

export interface DiagnosticCode {
  code: string;
  severity: Severity;
  /** Short name, as in Istio's message list. */
  name: string;
}

function code(code: string, severity: Severity, name: string): DiagnosticCode {
  return { code, severity, name };
}

export const Codes = {
  // Loading
  FileUnreadable: code('WE0001', 'error', 'FileUnreadable'),
  YamlSyntax: code('WE0002', 'error', 'YamlSyntax'),
  NotAResource: code('WE0003', 'error', 'NotAResource'),
  SkippedKind: code('WE0004', 'info', 'NotAnIstioResource'),
  UnsupportedApiVersion: code('WE0005', 'error', 'UnsupportedApiVersion'),
  UnsupportedIstioKind: code('WE0006', 'warning', 'UnsupportedIstioKind'),
  InvalidMetadata: code('WE0007', 'error', 'InvalidMetadata'),
  DuplicateResource: code('WE0008', 'error', 'DuplicateResource'),
  KeptLastValidResource: code('WE0009', 'error', 'KeptLastValidResource'),
  KeptLastValidFile: code('WE0010', 'error', 'KeptLastValidFile'),
  SchemaValidation: code('IST0106', 'error', 'SchemaValidationError'),
  // Semantic checks
  ReferencedResourceNotFound: code('IST0101', 'error', 'ReferencedResourceNotFound'),
  ConflictingMeshGatewayHosts: code('IST0109', 'error', 'ConflictingMeshGatewayVirtualServiceHosts'),
  MultipleSidecarsWithoutSelector: code('IST0111', 'error', 'MultipleSidecarsWithoutWorkloadSelectors'),
  NoMatchingWorkloads: code('IST0127', 'warning', 'NoMatchingWorkloadsFound'),
  UnknownHost: code('WE0101', 'warning', 'DestinationHostNotFound'),
  ConflictingGatewayHosts: code('WE0102', 'warning', 'ConflictingGatewayVirtualServiceHosts'),
  InvalidWeights: code('WE0103', 'error', 'InvalidRouteWeights'),
  WeightsNot100: code('WE0104', 'warning', 'RouteWeightsNotSumming100'),
  MultipleNamespaceWidePeerAuthentications: code(
    'WE0105',
    'error',
    'MultipleNamespaceWidePeerAuthentications',
  ),
  ConflictingPeerAuthentications: code('WE0106', 'error', 'ConflictingPeerAuthentications'),
  SubsetSelectsNoWorkload: code('WE0107', 'info', 'SubsetSelectsNoWorkload'),
  UnknownAnnotationValue: code('WE0108', 'warning', 'UnknownWeftAnnotationValue'),
  InvalidRateLimitService: code('WE0109', 'error', 'InvalidRateLimitService'),
  InvalidTelemetry: code('WE0110', 'error', 'InvalidTelemetry'),
  // Weft support
  UnsupportedField: code('WE0200', 'warning', 'FieldNotSupportedByWeft'),
  NotEnforcedKind: code('WE0201', 'warning', 'KindNotEnforcedByWeft'),
} as const satisfies Record<string, DiagnosticCode>;

export type CodeName = keyof typeof Codes;

/** The code and severity fields of a diagnostic (without the name, which only the docs show). */
export function codeOf(c: DiagnosticCode): Pick<Diagnostic, 'code' | 'severity'> {
  return { code: c.code, severity: c.severity };
}
