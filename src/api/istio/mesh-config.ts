/**
 * The part of Istio's MeshConfig (mesh.istio.io, the `mesh` key of istio's ConfigMap) that Weft reads, with
 * Istio's camelCase field names, and its validation. Everything else MeshConfig defines is refused by name: a
 * field Weft does not implement must not look as if it applied.
 */

export interface ZipkinProvider {
  /** Host name of the collector service, e.g. `zipkin.istio-system.svc.cluster.local`. */
  service: string;
  port: number;
  maxTagLength?: number;
  /** Default `/api/v2/spans`. */
  path?: string;
}

export interface OpenTelemetryProvider {
  service: string;
  port: number;
  /** OTLP over HTTP (the only transport Weft exports with); path defaults to /v1/traces. */
  http: { path?: string; timeout?: string; headers?: { name: string; value: string }[] };
}

export interface EnvoyFileAccessLogProvider {
  /** Default `/dev/stdout`. */
  path?: string;
  logFormat?: { text?: string; labels?: Record<string, string> };
}

export interface ExtensionProvider {
  name: string;
  zipkin?: ZipkinProvider;
  opentelemetry?: OpenTelemetryProvider;
  envoyFileAccessLog?: EnvoyFileAccessLogProvider;
  prometheus?: Record<string, never>;
}

export interface MeshConfig {
  /** Where the built-in `envoy` access log writes; empty (the default) turns it off. */
  accessLogFile?: string;
  accessLogEncoding?: 'TEXT' | 'JSON';
  accessLogFormat?: string;
  /** Istio's legacy switch; tracing is driven by providers here (see docs). */
  enableTracing?: boolean;
  defaultConfig?: { tracing?: { sampling?: number } };
  defaultProviders?: { metrics?: string[]; tracing?: string[]; accessLogging?: string[] };
  extensionProviders?: ExtensionProvider[];
  rootNamespace?: string;
  trustDomain?: string;
  /** UPGRADE: outbound HTTP/1.1 to mesh HTTP ports goes as HTTP/2 (a DestinationRule's h2UpgradePolicy wins). */
  h2UpgradePolicy?: 'DO_NOT_UPGRADE' | 'UPGRADE';
}

/** Istio's defaults: Prometheus metrics on, no tracing, no access log, 1% sampling when tracing is on. */
export const DEFAULT_MESH_CONFIG: MeshConfig = {};

export const DEFAULT_SAMPLING_PERCENT = 1;

/** The built-in providers Istio names without an extensionProviders entry. */
export const BUILTIN_PROMETHEUS = 'prometheus';
export const BUILTIN_ENVOY_ACCESS_LOG = 'envoy';

export interface MeshConfigProblem {
  /** `extensionProviders[1].opentelemetry.grpc` */
  field: string;
  message: string;
}

type Checker = (value: unknown, path: string, problems: MeshConfigProblem[]) => void;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, field: string | number): string {
  return typeof field === 'number' ? `${path}[${field}]` : path === '' ? field : `${path}.${field}`;
}

const str: Checker = (v, p, out) => {
  if (typeof v !== 'string') out.push({ field: p, message: 'must be a string' });
};
const bool: Checker = (v, p, out) => {
  if (typeof v !== 'boolean') out.push({ field: p, message: 'must be true or false' });
};
const port: Checker = (v, p, out) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    out.push({ field: p, message: 'must be a port number (1-65535)' });
};
const positiveInt: Checker = (v, p, out) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    out.push({ field: p, message: 'must be a positive integer' });
};
const percent: Checker = (v, p, out) => {
  if (typeof v !== 'number' || !(v >= 0 && v <= 100))
    out.push({ field: p, message: 'must be a number from 0 to 100' });
};
const duration: Checker = (v, p, out) => {
  if (typeof v !== 'string' || !/^\d+(\.\d+)?(ms|s|m|h)$/.test(v))
    out.push({ field: p, message: 'must be a duration such as "5s" or "100ms"' });
};
const path: Checker = (v, p, out) => {
  if (typeof v !== 'string' || !v.startsWith('/')) out.push({ field: p, message: 'must be a path ("/...")' });
};
const stringList: Checker = (v, p, out) => {
  if (!Array.isArray(v)) out.push({ field: p, message: 'must be a list of strings' });
  else v.forEach((s, i) => str(s, join(p, i), out));
};
const stringMap: Checker = (v, p, out) => {
  if (!isObject(v)) out.push({ field: p, message: 'must be a map of strings' });
  else for (const [k, s] of Object.entries(v)) str(s, join(p, k), out);
};
function oneOf(values: readonly string[]): Checker {
  return (v, p, out) => {
    if (typeof v !== 'string' || !values.includes(v))
      out.push({ field: p, message: `must be one of ${values.join(', ')}` });
  };
}
function list(item: Checker): Checker {
  return (v, p, out) => {
    if (!Array.isArray(v)) out.push({ field: p, message: 'must be a list' });
    else v.forEach((x, i) => item(x, join(p, i), out));
  };
}

/** An object with these fields (`required` listed), every other field refused (`refused`: why, if known). */
function object(
  fields: Record<string, Checker>,
  required: readonly string[] = [],
  refused: Record<string, string> = {},
): Checker {
  return (v, p, out) => {
    if (!isObject(v)) {
      out.push({ field: p, message: 'must be an object' });
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) continue;
      const check = fields[k];
      if (check) check(x, join(p, k), out);
      else
        out.push({
          field: join(p, k),
          message: refused[k] ?? 'is not a MeshConfig field Weft supports (not supported by Weft)',
        });
    }
    for (const k of required)
      if (v[k] === undefined || v[k] === null) out.push({ field: join(p, k), message: 'is required' });
  };
}

const zipkin = object({ service: str, port, maxTagLength: positiveInt, path }, ['service', 'port']);

const opentelemetry = object(
  {
    service: str,
    port,
    http: object(
      {
        path,
        timeout: duration,
        headers: list(object({ name: str, value: str }, ['name', 'value'])),
      },
      [],
    ),
  },
  ['service', 'port', 'http'],
  { grpc: 'is not supported by Weft: OTLP over HTTP only (set `http`)' },
);

const envoyFileAccessLog = object({
  path: str,
  logFormat: object({ text: str, labels: stringMap }),
});

const PROVIDER_KINDS = ['zipkin', 'opentelemetry', 'envoyFileAccessLog', 'prometheus'] as const;

const extensionProvider: Checker = (v, p, out) => {
  object(
    {
      name: str,
      zipkin,
      opentelemetry,
      envoyFileAccessLog,
      prometheus: object({}),
    },
    ['name'],
  )(v, p, out);
  if (!isObject(v)) return;
  const kinds = PROVIDER_KINDS.filter((k) => v[k] !== undefined && v[k] !== null);
  if (kinds.length !== 1 && Object.keys(v).every((k) => k === 'name' || PROVIDER_KINDS.includes(k as never)))
    out.push({
      field: p,
      message: `must set exactly one of ${PROVIDER_KINDS.join(', ')} (Weft supports these provider kinds)`,
    });
};

const meshConfig = object({
  accessLogFile: str,
  accessLogEncoding: oneOf(['TEXT', 'JSON']),
  accessLogFormat: str,
  enableTracing: bool,
  defaultConfig: object({ tracing: object({ sampling: percent }) }),
  defaultProviders: object({ metrics: stringList, tracing: stringList, accessLogging: stringList }),
  extensionProviders: list(extensionProvider),
  rootNamespace: str,
  trustDomain: str,
  h2UpgradePolicy: oneOf(['DO_NOT_UPGRADE', 'UPGRADE']),
});

/** Checks a parsed MeshConfig document; on no problems, `config` is it, typed. */
export function validateMeshConfig(value: unknown): { config?: MeshConfig; problems: MeshConfigProblem[] } {
  const problems: MeshConfigProblem[] = [];
  if (value === null || value === undefined) return { config: {}, problems };
  meshConfig(value, '', problems);
  if (problems.length === 0 && isObject(value)) {
    const providers = (value.extensionProviders ?? []) as ExtensionProvider[];
    const seen = new Set<string>();
    providers.forEach((x, i) => {
      if (seen.has(x.name))
        problems.push({ field: `extensionProviders[${i}].name`, message: `duplicate provider "${x.name}"` });
      seen.add(x.name);
    });
    const known = new Set([...seen, BUILTIN_PROMETHEUS, BUILTIN_ENVOY_ACCESS_LOG]);
    const defaults = (value.defaultProviders ?? {}) as Record<string, string[] | undefined>;
    for (const [kind, names] of Object.entries(defaults))
      (names ?? []).forEach((n, i) => {
        if (!known.has(n))
          problems.push({
            field: `defaultProviders.${kind}[${i}]`,
            message: `names no extensionProviders entry ("${n}")`,
          });
      });
    if (value.accessLogEncoding === 'JSON' && typeof value.accessLogFormat === 'string') {
      try {
        const parsed: unknown = JSON.parse(value.accessLogFormat);
        if (!isObject(parsed)) throw new Error('not an object');
      } catch {
        problems.push({
          field: 'accessLogFormat',
          message: 'with accessLogEncoding JSON, must be a JSON object of labels to format strings',
        });
      }
    }
  }
  return problems.length === 0 ? { config: value, problems } : { problems };
}
