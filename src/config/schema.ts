/**
 * Validates Istio specs against the schemas generated from Istio's CRDs (src/api/istio/schemas.gen.json),
 * with Ajv, and turns Ajv's errors into one plain message per problem, each naming the field.
 *
 * Validators are compiled lazily, once per kind, on first use (DestinationRule's takes ~0.2 s).
 */
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { istioSchemas } from '../api/istio/schemas.ts';
import type { WeftCheck } from '../api/istio/schemas.ts';
import type { PathSegment } from './diagnostic.ts';
import { parseIstioDurationMs } from './duration.ts';

export interface SchemaIssue {
  /** The field, relative to `spec`. */
  path: PathSegment[];
  message: string;
}

type ValidateFn = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFn>();

interface CheckFailure {
  message: string;
  /** Below the checked value, when the problem is in one of its keys or items. */
  subPath?: PathSegment[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const has = (obj: Record<string, unknown>, field: string): boolean =>
  obj[field] !== undefined && obj[field] !== null;

const PORT_NAME = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

function isPort(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 65535;
}

/** Runs one translated CEL rule. Rules apply only to values of the type they are written for. */
function runCheck(c: WeftCheck, data: unknown): CheckFailure[] {
  switch (c.check) {
    case 'minDuration': {
      if (typeof data !== 'string') return [];
      const ms = parseIstioDurationMs(data);
      if (ms === undefined)
        return [
          { message: `invalid duration ${JSON.stringify(data)} (expected e.g. "1.5s", "100ms", "1m")` },
        ];
      return ms < c.ms ? [{ message: `must be at least ${c.ms}ms, got ${JSON.stringify(data)}` }] : [];
    }
    case 'atMostOne': {
      if (!isRecord(data)) return [];
      const set = c.fields.filter((f) => has(data, f));
      return set.length > 1
        ? [{ message: `only one of ${c.fields.join(', ')} may be set (found ${set.join(', ')})` }]
        : [];
    }
    case 'anyOf':
      return isRecord(data) && !c.fields.some((f) => has(data, f))
        ? [{ message: `one of ${c.fields.join(', ')} is required` }]
        : [];
    case 'excludes': {
      if (!isRecord(data) || !c.ifAny.some((f) => has(data, f))) return [];
      const clash = c.forbids.filter((f) => has(data, f));
      return clash.length > 0
        ? [{ message: `${c.ifAny.join(' or ')} cannot be set together with ${clash.join(', ')}` }]
        : [];
    }
    case 'notContains':
      return typeof data === 'string' && data.includes(c.text)
        ? [{ message: `must not contain ${JSON.stringify(c.text)}` }]
        : [];
    case 'notEqual':
      return data === c.value ? [{ message: `must not be ${JSON.stringify(c.value)}` }] : [];
    case 'empty':
      return typeof data === 'string' && data !== '' ? [{ message: 'must be empty' }] : [];
    case 'oneOfValues':
      return typeof data === 'string' && !c.values.includes(data)
        ? [{ message: `must be one of ${c.values.filter((v) => v !== '').join(', ')}` }]
        : [];
    case 'keysNotContain':
      return isRecord(data)
        ? Object.keys(data)
            .filter((k) => k.includes(c.text))
            .map((k) => ({ message: `key must not contain ${JSON.stringify(c.text)}`, subPath: [k] }))
        : [];
    case 'keysNotEmpty':
      return isRecord(data) && Object.hasOwn(data, '') ? [{ message: 'keys must not be empty' }] : [];
    case 'keysArePorts':
      return isRecord(data)
        ? Object.keys(data)
            .filter((k) => !/^\d+$/.test(k) || !isPort(Number(k)))
            .map((k) => ({ message: 'key must be a port number 1-65535', subPath: [k] }))
        : [];
    case 'keysArePortNames':
      return isRecord(data)
        ? Object.keys(data)
            .filter((k) => k.length >= 63 || !PORT_NAME.test(k))
            .map((k) => ({
              message:
                'invalid port name (letters, digits and "-", not starting or ending with "-", under 63 characters)',
              subPath: [k],
            }))
        : [];
    case 'port':
      return typeof data === 'number' && !isPort(data) ? [{ message: 'must be a port number 1-65535' }] : [];
    case 'uniqueBy': {
      if (!Array.isArray(data)) return [];
      const seen = new Map<string, number>();
      const failures: CheckFailure[] = [];
      data.forEach((item, i) => {
        if (!isRecord(item)) return;
        const key = JSON.stringify(c.keys.map((k) => item[k]));
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else
          failures.push({
            message: `duplicate ${c.keys.map((k) => `${k} ${JSON.stringify(item[k])}`).join(', ')} (also in item ${first})`,
            subPath: [i],
          });
      });
      return failures;
    }
    case 'httpUrl': {
      if (typeof data !== 'string') return [];
      const protocol = URL.canParse(data) ? new URL(data).protocol : '';
      return protocol === 'http:' || protocol === 'https:'
        ? []
        : [{ message: 'must be an http:// or https:// URL' }];
    }
    case 'unixAddress': {
      if (typeof data !== 'string' || !data.startsWith('unix://')) return [];
      const first = data.charAt(7);
      if (first !== '/' && first !== '@')
        return [{ message: 'a unix:// address must be an absolute path or an abstract socket (@name)' }];
      return data.endsWith('/') ? [{ message: 'a unix:// address must not be a directory' }] : [];
    }
    case 'unixAddressHasNoPorts':
      return isRecord(data) &&
        typeof data.address === 'string' &&
        data.address.startsWith('unix://') &&
        has(data, 'ports')
        ? [{ message: 'an endpoint with a unix:// address takes no ports', subPath: ['ports'] }]
        : [];
    case 'cidrNeedsStaticResolution': {
      if (!isRecord(data) || !Array.isArray(data.addresses)) return [];
      const resolution = has(data, 'resolution') ? data.resolution : 'NONE';
      const cidr = data.addresses.some((a) => typeof a === 'string' && a.includes('/'));
      return cidr && resolution !== 'STATIC' && resolution !== 'NONE'
        ? [
            {
              message: 'CIDR addresses are allowed only with resolution NONE or STATIC',
              subPath: ['addresses'],
            },
          ]
        : [];
    }
    case 'noEndpointsWithResolutionNone': {
      if (!isRecord(data)) return [];
      const resolution = has(data, 'resolution') ? data.resolution : 'NONE';
      return resolution === 'NONE' && has(data, 'endpoints')
        ? [{ message: 'resolution NONE (the default) takes no endpoints', subPath: ['endpoints'] }]
        : [];
    }
    case 'singleEndpointWithDnsRoundRobin':
      return isRecord(data) &&
        data.resolution === 'DNS_ROUND_ROBIN' &&
        Array.isArray(data.endpoints) &&
        data.endpoints.length > 1
        ? [{ message: 'resolution DNS_ROUND_ROBIN takes at most one endpoint', subPath: ['endpoints'] }]
        : [];
    case 'portLevelNeedsSelector': {
      if (!isRecord(data) || !has(data, 'portLevelMtls')) return [];
      const labels =
        isRecord(data.selector) && isRecord(data.selector.matchLabels) ? data.selector.matchLabels : {};
      return Object.keys(labels).length === 0
        ? [{ message: 'portLevelMtls needs a selector with matchLabels', subPath: ['portLevelMtls'] }]
        : [];
    }
    case 'tagOverride': {
      if (!isRecord(data)) return [];
      if (data.operation === 'UPSERT' && (typeof data.value !== 'string' || data.value === ''))
        return [{ message: 'operation UPSERT needs a value', subPath: ['value'] }];
      if (data.operation === 'REMOVE' && has(data, 'value'))
        return [{ message: 'operation REMOVE takes no value', subPath: ['value'] }];
      return [];
    }
  }
}

function getAjv(): Ajv {
  if (ajv) return ajv;
  // strictRequired stays off: Istio's "at most one of" pattern names fields in `required` inside oneOf branches.
  const instance = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false });
  instance.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  instance.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  instance.addFormat('byte', { type: 'string', validate: (s: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) });
  const weftChecks = (checks: WeftCheck[], data: unknown): boolean => {
    const failures = checks.flatMap((c) => runCheck(c, data));
    validateWeftChecks.errors = failures.map((f) => ({
      keyword: 'weftChecks',
      message: f.message,
      params: { subPath: f.subPath ?? [] },
    }));
    return failures.length === 0;
  };
  const validateWeftChecks: typeof weftChecks & { errors?: Partial<ErrorObject>[] } = weftChecks;
  instance.addKeyword({
    keyword: 'weftChecks',
    schemaType: 'array',
    errors: true,
    validate: validateWeftChecks,
  });
  ajv = instance;
  return instance;
}

function validatorFor(schemaKey: string): ValidateFn {
  let fn = compiled.get(schemaKey);
  if (!fn) {
    const schema = istioSchemas.schemas[schemaKey];
    if (!schema) throw new Error(`no Istio schema ${schemaKey}`);
    fn = getAjv().compile(schema);
    compiled.set(schemaKey, fn);
  }
  return fn;
}

/** JSON pointer → path segments; array positions become numbers (decided by walking the data). */
function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const out: PathSegment[] = [];
  let node = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      const i = Number(key);
      out.push(i);
      node = node[i];
    } else {
      out.push(key);
      node = isRecord(node) ? node[key] : undefined;
    }
  }
  return out;
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let node = data;
  for (const s of path)
    node = Array.isArray(node) || isRecord(node) ? (node as Record<PathSegment, unknown>)[s] : undefined;
  return node;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`;
}

/** Edit distance counting a swap of two neighbouring letters as one edit ("weigth" → "weight" is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The known field closest to a misspelt one, when it is close enough to be a likely typo. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 4)) ? best : undefined;
}

/** Fields named by the `required` lists of a oneOf's branches: Istio's "at most one of" pattern. */
function oneOfFieldNames(branches: unknown): string[] {
  const names: string[] = [];
  for (const b of Array.isArray(branches) ? branches : [])
    if (isRecord(b) && Array.isArray(b.required)) names.push(...b.required.map(String));
  return names;
}

function toIssue(e: ErrorObject, spec: unknown): SchemaIssue {
  const path = pointerToPath(e.instancePath, spec);
  const params = e.params as Record<string, unknown>;
  const parent: Record<string, unknown> = isRecord(e.parentSchema) ? e.parentSchema : {};
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = isRecord(parent.properties) ? Object.keys(parent.properties) : [];
      const guess = closestName(field, known);
      return {
        path: [...path, field],
        message: `unknown field${guess ? ` (did you mean "${guess}"?)` : ''}`,
      };
    }
    case 'required':
      return { path: [...path, String(params.missingProperty)], message: 'required field is missing' };
    case 'type':
      return { path, message: `must be ${String(params.type)}, got ${describe(valueAt(spec, path))}` };
    case 'enum': {
      const allowed = Array.isArray(params.allowedValues) ? params.allowedValues.map(String) : [];
      return {
        path,
        message: `must be one of ${allowed.join(', ')}; got ${describe(valueAt(spec, path))}`,
      };
    }
    case 'oneOf': {
      const names = oneOfFieldNames(parent.oneOf);
      const value = valueAt(spec, path);
      const set = isRecord(value) ? names.filter((n) => value[n] !== undefined) : [];
      return names.length > 0
        ? { path, message: `only one of ${names.join(', ')} may be set (found ${set.join(', ')})` }
        : { path, message: e.message ?? 'invalid' };
    }
    case 'anyOf':
      return { path, message: `must be an integer or a string, got ${describe(valueAt(spec, path))}` };
    case 'format':
      return {
        path,
        message:
          params.format === 'int32'
            ? 'must be a 32-bit integer'
            : params.format === 'byte'
              ? 'must be base64'
              : `must be a ${String(params.format)}`,
      };
    case 'weftChecks':
      return {
        path: [...path, ...(Array.isArray(params.subPath) ? (params.subPath as PathSegment[]) : [])],
        message: e.message ?? 'invalid',
      };
    default:
      return { path, message: e.message ?? 'invalid' };
  }
}

/** Errors raised inside oneOf/anyOf/not branches only explain why a branch did not match; the combinator's own error says it better. */
function isBranchDetail(e: ErrorObject): boolean {
  return /\/(oneOf|anyOf|allOf)\/\d+\/|\/not\//.test(e.schemaPath);
}

/** Validates a spec against the schema `schemaKey` (from schemaKeyFor); returns its problems, none when valid. */
export function validateSpec(schemaKey: string, spec: unknown): SchemaIssue[] {
  const validate = validatorFor(schemaKey);
  if (validate(spec)) return [];
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    if (isBranchDetail(e)) continue;
    const issue = toIssue(e, spec);
    const key = JSON.stringify(issue);
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}
