/**
 * The JSON schemas of Istio resource specs, generated from Istio's published CRDs by
 * scripts/gen-istio-schemas.ts into schemas.gen.json (committed: CI may not have the CRD file).
 *
 * The schemas are the CRDs' openAPIV3Schema of `spec` without descriptions, made strict (an object that
 * lists its properties rejects any other field), with Kubernetes' x-kubernetes-* extensions replaced by
 * plain JSON Schema or by `weftChecks`: the CRDs' CEL rules, each translated into one of the small
 * checks below (src/config/schema.ts implements them).
 */
import schemaFile from './schemas.gen.json' with { type: 'json' };
import weftSchemaFile from '../weft/schemas.json' with { type: 'json' };
import type { IstioKind } from './resource.ts';

/** One CEL rule of a CRD, as a check Weft implements without a CEL interpreter. */
export type WeftCheck =
  /** A Go duration string ("1.5s", "1m30s", "100ms") of at least `ms` milliseconds. */
  | { check: 'minDuration'; ms: number }
  /** At most one of these fields is set. */
  | { check: 'atMostOne'; fields: string[] }
  /** At least one of these fields is set. */
  | { check: 'anyOf'; fields: string[] }
  /** When any of `ifAny` is set, none of `forbids` may be. */
  | { check: 'excludes'; ifAny: string[]; forbids: string[] }
  /** A string without this substring. */
  | { check: 'notContains'; text: string }
  /** A string other than this value. */
  | { check: 'notEqual'; value: string }
  /** An empty string. */
  | { check: 'empty' }
  /** One of these strings. */
  | { check: 'oneOfValues'; values: string[] }
  /** A map whose keys do not contain this substring. */
  | { check: 'keysNotContain'; text: string }
  /** A map whose keys are not empty. */
  | { check: 'keysNotEmpty' }
  /** A map whose keys are port numbers 1-65535. */
  | { check: 'keysArePorts' }
  /** A map whose keys are valid port names (alphanumeric and '-', not starting or ending with '-', < 63 chars). */
  | { check: 'keysArePortNames' }
  /** A number in 1-65535. */
  | { check: 'port' }
  /** A list whose items are unique by these fields together. */
  | { check: 'uniqueBy'; keys: string[] }
  /** An http:// or https:// URL. */
  | { check: 'httpUrl' }
  /** A `unix://` address is an absolute path or an abstract socket, and not a directory. */
  | { check: 'unixAddress' }
  /** An object whose `address` is a `unix://` socket has no `ports`. */
  | { check: 'unixAddressHasNoPorts' }
  /** ServiceEntry: CIDR addresses only with resolution NONE or STATIC. */
  | { check: 'cidrNeedsStaticResolution' }
  /** ServiceEntry: resolution NONE (the default) takes no endpoints. */
  | { check: 'noEndpointsWithResolutionNone' }
  /** ServiceEntry: resolution DNS_ROUND_ROBIN takes at most one endpoint. */
  | { check: 'singleEndpointWithDnsRoundRobin' }
  /** PeerAuthentication: portLevelMtls needs a non-empty selector.matchLabels. */
  | { check: 'portLevelNeedsSelector' }
  /** Telemetry tag override: UPSERT needs a non-empty value, REMOVE takes none. */
  | { check: 'tagOverride' };

/** A JSON Schema object as stored in schemas.gen.json (draft-07 keywords plus `nullable` and `weftChecks`). */
export type SpecSchema = { [keyword: string]: unknown };

export interface IstioSchemaFile {
  /** "group/version/Kind" → key in `schemas`. Versions whose schemas are equal share one entry. */
  kinds: Record<string, string>;
  schemas: Record<string, SpecSchema>;
  /** Kinds whose CRD requires `spec` (ServiceEntry, WorkloadEntry, WorkloadGroup). */
  specRequired: string[];
  /** CEL rules the generator could not translate: "key path: rule". Kept empty; the schema test says so. */
  untranslatedRules: string[];
}

/** Istio's CRD schemas plus Weft's own kinds (hand-written in ../weft/schemas.json, in the same form). */
export const istioSchemas: IstioSchemaFile = mergeSchemaFiles(schemaFile, weftSchemaFile);

function mergeSchemaFiles(a: IstioSchemaFile, b: IstioSchemaFile): IstioSchemaFile {
  return {
    kinds: { ...a.kinds, ...b.kinds },
    schemas: { ...a.schemas, ...b.schemas },
    specRequired: [...a.specRequired, ...b.specRequired],
    untranslatedRules: [...a.untranslatedRules, ...b.untranslatedRules],
  };
}

/** The schema key for an apiVersion ("networking.istio.io/v1") and kind, or undefined when Weft does not accept that pair. */
export function schemaKeyFor(apiVersion: string, kind: IstioKind): string | undefined {
  return istioSchemas.kinds[`${apiVersion}/${kind}`];
}
