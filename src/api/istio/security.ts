/**
 * Specs of Istio's security.istio.io kinds, after schema validation. Typed loosely below the top
 * level: Weft stores and serves these now; enforcing them is a later issue's work.
 */

export interface WorkloadLabelSelector {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export type MutualTlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthentication {
  selector?: WorkloadLabelSelector;
  mtls?: { mode?: MutualTlsMode };
  /** Port number (as a string key) → mode for that port; needs a selector. */
  portLevelMtls?: Record<string, { mode?: MutualTlsMode }>;
}

export interface AuthorizationPolicy {
  selector?: WorkloadLabelSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  rules?: AuthorizationRule[];
  action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  provider?: { name?: string };
}

export interface AuthorizationRule {
  from?: { source?: Record<string, string[] | undefined> }[];
  to?: { operation?: Record<string, string[] | undefined> }[];
  when?: { key: string; values?: string[]; notValues?: string[] }[];
}

export interface RequestAuthentication {
  selector?: WorkloadLabelSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JWTRule[];
}

export interface JWTRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders?: { name: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header?: string; claim?: string }[];
  timeout?: string;
  [field: string]: unknown;
}
