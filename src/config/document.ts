/**
 * One YAML document → one Istio resource, or diagnostics saying why not. Checks what Kubernetes' API
 * server would (apiVersion and kind served, metadata, no unknown top-level fields, the spec against
 * the CRD schema) and applies Istio's defaults: namespace `default`, short host names qualified.
 */
import { groupOfKind, isIstioKind, versionsOfGroup } from '../api/istio/kinds.ts';
import { istioSchemas, schemaKeyFor } from '../api/istio/schemas.ts';
import { resourceName } from '../api/istio/resource.ts';
import type {
  IstioCondition,
  IstioKind,
  IstioMetadata,
  IstioResource,
  ResourceSource,
} from '../api/istio/resource.ts';
import { Codes, codeOf } from './codes.ts';
import type { DiagnosticCode } from './codes.ts';
import { formatFieldPath } from './diagnostic.ts';
import type { Diagnostic, PathSegment } from './diagnostic.ts';
import { DEFAULT_DOMAIN_SUFFIX, qualifySpecNames } from './hosts.ts';
import { validateSpec } from './schema.ts';

export const DEFAULT_NAMESPACE = 'default';

/** The identity of a resource: kind, namespace and name (apiVersion does not matter, as in Kubernetes). */
export function resourceKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export interface DocumentOutcome {
  /** Set when kind, namespace and name could be read, even if the resource is invalid. */
  key?: string;
  /** Set when the document is a valid resource of a kind Weft loads. */
  resource?: IstioResource;
  /** The document is valid but of a kind Weft does not load (a Kubernetes Deployment, say). */
  skipped?: boolean;
  diagnostics: Diagnostic[];
}

export interface DocumentContext {
  source: ResourceSource;
  /** The 1-based line of a field of the document, or of its closest existing parent. */
  lineOf(path: readonly PathSegment[]): number;
  domainSuffix?: string;
}

const TOP_LEVEL_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
// Kubernetes object names: DNS-1123 subdomain; namespaces: DNS-1123 label.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// API groups whose kinds users may expect Weft to take, so skipping one is worth a warning, not a note.
const MESH_GROUPS = /(^|\.)istio\.io$|^gateway\.networking\.k8s\.io$/;

/**
 * `status.conditions` entries with a string `type` and `status`. Status is written by controllers (for a
 * WorkloadEntry, its health), has no schema in Istio's CRDs, and a malformed one must not cost the resource.
 */
function conditionsOf(status: unknown): { conditions?: IstioCondition[] } {
  if (!isRecord(status) || !Array.isArray(status.conditions)) return {};
  const conditions: IstioCondition[] = [];
  for (const c of status.conditions as unknown[]) {
    if (!isRecord(c) || typeof c.type !== 'string' || typeof c.status !== 'string') continue;
    conditions.push({
      type: c.type,
      status: c.status,
      ...(typeof c.reason === 'string' ? { reason: c.reason } : {}),
      ...(typeof c.message === 'string' ? { message: c.message } : {}),
    });
  }
  return conditions.length > 0 ? { conditions } : {};
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function stringMap(
  value: unknown,
  field: PathSegment[],
  problem: (field: PathSegment[], message: string) => void,
): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    problem(field, 'must be a map of strings');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
    else problem([...field, k], `must be a string, got ${JSON.stringify(v)}`);
  }
  return out;
}

/** Checks one parsed document (`value` is its plain JS value) and builds the resource. Never throws on bad input. */
export function checkDocument(value: unknown, ctx: DocumentContext): DocumentOutcome {
  const { file, line } = ctx.source;
  const at = (code: DiagnosticCode, message: string, extra: Partial<Diagnostic> = {}): Diagnostic => ({
    ...codeOf(code),
    message,
    file,
    line,
    ...extra,
  });
  if (!isRecord(value))
    return {
      diagnostics: [
        at(
          Codes.NotAResource,
          `document is ${Array.isArray(value) ? 'a list' : `a ${typeof value} (${JSON.stringify(value).slice(0, 40)})`}, not a resource`,
        ),
      ],
    };
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || apiVersion === '' || kind === '')
    return {
      diagnostics: [at(Codes.NotAResource, 'document has no apiVersion and kind: not a Kubernetes resource')],
    };

  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (!isIstioKind(kind) || groupOfKind[kind] !== group) {
    const meshGroup = MESH_GROUPS.test(group);
    return {
      skipped: true,
      diagnostics: [
        at(
          meshGroup ? Codes.UnsupportedIstioKind : Codes.SkippedKind,
          meshGroup
            ? `${kind} (${apiVersion}) is not supported by Weft; ignored`
            : `${kind} (${apiVersion}) is not an Istio resource; skipped`,
        ),
      ],
    };
  }
  const istioKind: IstioKind = kind;
  const diagnostics: Diagnostic[] = [];

  // Metadata: name and namespace first, so that later diagnostics can name the resource.
  const metaProblems: [PathSegment[], string][] = [];
  const problem = (field: PathSegment[], message: string): void => void metaProblems.push([field, message]);
  const meta = value.metadata;
  let name: string | undefined;
  let namespace = DEFAULT_NAMESPACE;
  let labels: Record<string, string> = {};
  let annotations: Record<string, string> = {};
  if (!isRecord(meta))
    problem(['metadata'], meta === undefined ? 'required field is missing' : 'must be an object');
  else {
    if (typeof meta.name !== 'string' || meta.name === '')
      problem(['metadata', 'name'], 'required field is missing');
    else if (meta.name.length > 253 || !DNS1123_SUBDOMAIN.test(meta.name))
      problem(
        ['metadata', 'name'],
        `invalid name ${JSON.stringify(meta.name)}: lower-case letters, digits, '-' and '.'`,
      );
    else name = meta.name;
    if (meta.namespace !== undefined && meta.namespace !== null) {
      if (
        typeof meta.namespace !== 'string' ||
        meta.namespace.length > 63 ||
        !DNS1123_LABEL.test(meta.namespace)
      ) {
        problem(
          ['metadata', 'namespace'],
          `invalid namespace ${JSON.stringify(meta.namespace)}: lower-case letters, digits and '-'`,
        );
        name = undefined;
      } else namespace = meta.namespace;
    }
    labels = stringMap(meta.labels, ['metadata', 'labels'], problem);
    annotations = stringMap(meta.annotations, ['metadata', 'annotations'], problem);
  }
  const key = name === undefined ? undefined : resourceKey(istioKind, namespace, name);
  const resource =
    name === undefined ? undefined : resourceName({ kind: istioKind, metadata: { namespace, name } });
  for (const [path, message] of metaProblems)
    diagnostics.push(
      at(Codes.InvalidMetadata, message, { field: formatFieldPath(path), resource, line: ctx.lineOf(path) }),
    );

  const schemaKey = schemaKeyFor(apiVersion, istioKind);
  if (schemaKey === undefined) {
    const accepted = (versionsOfGroup[group] ?? []).map((v) => `${group}/${v}`).join(', ');
    diagnostics.push(
      at(
        Codes.UnsupportedApiVersion,
        `apiVersion ${apiVersion} is not accepted for ${istioKind} (accepted: ${accepted})`,
        {
          resource,
          field: 'apiVersion',
          line: ctx.lineOf(['apiVersion']),
        },
      ),
    );
    return { key, diagnostics };
  }

  const schemaDiag = (path: PathSegment[], message: string): Diagnostic =>
    at(Codes.SchemaValidation, message, { resource, field: formatFieldPath(path), line: ctx.lineOf(path) });
  for (const field of Object.keys(value))
    if (!TOP_LEVEL_FIELDS.has(field)) diagnostics.push(schemaDiag([field], 'unknown field'));
  let spec = value.spec;
  if ((spec === undefined || spec === null) && istioSchemas.specRequired.includes(istioKind))
    diagnostics.push(schemaDiag(['spec'], 'required field is missing'));
  else {
    spec ??= {};
    for (const issue of validateSpec(schemaKey, spec))
      diagnostics.push(schemaDiag(['spec', ...issue.path], issue.message));
  }

  if (diagnostics.length > 0 || name === undefined) return { key, diagnostics };
  const metadata: IstioMetadata = { name, namespace, labels, annotations };
  return {
    key,
    diagnostics,
    resource: deepFreeze({
      apiVersion,
      kind: istioKind,
      metadata,
      spec: qualifySpecNames(istioKind, spec, namespace, ctx.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX),
      source: { ...ctx.source },
      ...conditionsOf(value.status),
    }),
  };
}
