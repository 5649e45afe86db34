/**
 * Generates src/api/istio/schemas.gen.json: the JSON schema of `spec` for every Istio kind and version
 * Weft accepts, derived from Istio's published CRDs (`<reference>/crds/crd-all.gen.yaml`, where
 * <reference> is $WEFT_ISTIO_REFERENCE or ../shared/reference/istio beside the repository).
 *
 * What the transformation does, and why:
 * - drops every `description` (the output is a validator input, not documentation);
 * - an object that lists `properties` rejects other fields (`additionalProperties: false`), unless the
 *   CRD says x-kubernetes-preserve-unknown-fields: Kubernetes would silently prune a misspelt field,
 *   and a misspelt field in routing config is a bug the user wants to hear about;
 * - x-kubernetes-int-or-string becomes `anyOf: integer | string`; list-type `set` becomes uniqueItems
 *   and list-type `map` a uniqueness check on the map keys;
 * - every CEL rule (x-kubernetes-validations) is translated into one of the small checks that
 *   src/config/schema.ts implements (see WeftCheck in src/api/istio/schemas.ts). A rule the table
 *   below does not know is listed in `untranslatedRules`, which a unit test requires to be empty, so
 *   a new Istio rule is noticed when the CRDs are updated.
 * Versions of a kind whose schemas are equal share one entry, and a large subschema that occurs more
 * than once in a kind (DestinationRule's trafficPolicy, connectionPool, tls ...) is stored once under
 * `$defs` and referenced: the file is smaller and the validator compiles each shared part once.
 *
 * The output is committed (CI may not have the reference files); src/api/istio/schemas.test.ts
 * regenerates it in memory and fails if it differs.
 *
 * Run: node scripts/gen-istio-schemas.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { groupOfKind, versionsOfGroup } from '../src/api/istio/kinds.ts';
import type { IstioSchemaFile, SpecSchema, WeftCheck } from '../src/api/istio/schemas.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const outputFile = path.join(repo, 'src/api/istio/schemas.gen.json');

/** The directory holding Istio's reference files (crds/, samples/). */
export function istioReferenceDir(): string {
  return process.env.WEFT_ISTIO_REFERENCE ?? path.resolve(repo, '..', 'shared', 'reference', 'istio');
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** CEL rules recognised by their exact text (whitespace collapsed). */
const exactRules: ReadonlyMap<string, WeftCheck> = new Map<string, WeftCheck>([
  ['self.size() == 0', { check: 'empty' }],
  ['self.all(key, key.size() != 0)', { check: 'keysNotEmpty' }],
  ['self.all(key, 0 < int(key) && int(key) <= 65535)', { check: 'keysArePorts' }],
  [
    'self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))',
    { check: 'keysArePortNames' },
  ],
  ['0 < self && self <= 65535', { check: 'port' }],
  ['url(self).getScheme() in ["http", "https"]', { check: 'httpUrl' }],
  [
    'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true',
    { check: 'unixAddress' },
  ],
  ['self.startsWith("unix://") ? !self.endsWith("/") : true', { check: 'unixAddress' }],
  [
    '(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true',
    { check: 'unixAddressHasNoPorts' },
  ],
  [
    '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))',
    { check: 'cidrNeedsStaticResolution' },
  ],
  [
    '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true',
    { check: 'noEndpointsWithResolutionNone' },
  ],
  [
    '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true',
    { check: 'singleEndpointWithDnsRoundRobin' },
  ],
  [
    'has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true',
    { check: 'portLevelNeedsSelector' },
  ],
  [
    '((has(self.operation) ? self.operation : "") == "UPSERT") ? (self.value != "") : true',
    { check: 'tagOverride' },
  ],
  [
    '((has(self.operation) ? self.operation : "") == "REMOVE") ? !has(self.value) : true',
    { check: 'tagOverride' },
  ],
]);

const HAS_FIELD = /has\(self\.(\w+)\)/g;
const fieldsOf = (text: string): string[] => [...text.matchAll(HAS_FIELD)].map((m) => m[1]);

/** Translates one CEL rule, or returns undefined when it has no known shape. */
export function translateCelRule(rule: string): WeftCheck | undefined {
  const text = rule.replace(/\s+/g, ' ').trim();
  const exact = exactRules.get(text);
  if (exact) return exact;
  let m = /^duration\(self\) >= duration\('(\d+)ms'\)$/.exec(text);
  if (m) return { check: 'minDuration', ms: Number(m[1]) };
  if (/^\(has\(self\.\w+\) \? 1 : 0\)( \+ \(has\(self\.\w+\) \? 1 : 0\))+ <= 1$/.test(text))
    return { check: 'atMostOne', fields: fieldsOf(text) };
  if (/^has\(self\.\w+\)( \|\| has\(self\.\w+\))+$/.test(text))
    return { check: 'anyOf', fields: fieldsOf(text) };
  m = /^\(((?:has\(self\.\w+\)(?: \|\| )?)+)\) \? \(((?:!has\(self\.\w+\)(?: && )?)+)\) : true$/.exec(text);
  if (m) return { check: 'excludes', ifAny: fieldsOf(m[1]), forbids: fieldsOf(m[2]) };
  m = /^!self\.contains\("([^"\\]*)"\)$/.exec(text);
  if (m) return { check: 'notContains', text: m[1] };
  m = /^self\.all\(key, !key\.contains\("([^"\\]*)"\)\)$/.exec(text);
  if (m) return { check: 'keysNotContain', text: m[1] };
  m = /^self != "([^"\\]*)"$/.exec(text);
  if (m) return { check: 'notEqual', value: m[1] };
  m = /^self in \[((?:"[^"\\]*"(?:, )?)*)\]$/.exec(text);
  if (m) return { check: 'oneOfValues', values: JSON.parse(`[${m[1]}]`) as string[] };
  m = /^self\.all\(l1, self\.exists_one\(l2, l1\.(\w+) == l2\.(\w+)\)\)$/.exec(text);
  if (m && m[1] === m[2]) return { check: 'uniqueBy', keys: [m[1]] };
  return undefined;
}

interface Context {
  untranslated: string[];
}

function transformSchema(node: JsonObject, where: string, ctx: Context): SpecSchema {
  const out: SpecSchema = {};
  const checks: WeftCheck[] = [];
  const addCheck = (c: WeftCheck): void => {
    if (!checks.some((x) => JSON.stringify(x) === JSON.stringify(c))) checks.push(c);
  };
  let preserveUnknown = false;
  let intOrString = false;
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case 'description':
        break;
      case 'x-kubernetes-preserve-unknown-fields':
        preserveUnknown = value === true;
        break;
      case 'x-kubernetes-int-or-string':
        intOrString = value === true;
        break;
      case 'x-kubernetes-validations':
        for (const v of Array.isArray(value) ? value : []) {
          const rule = isObject(v) && typeof v.rule === 'string' ? v.rule : JSON.stringify(v);
          const check = translateCelRule(rule);
          if (check) addCheck(check);
          else ctx.untranslated.push(`${where}: ${rule.replace(/\s+/g, ' ')}`);
        }
        break;
      case 'x-kubernetes-list-type':
        if (value === 'set') out.uniqueItems = true;
        else if (value === 'map') {
          const keys = node['x-kubernetes-list-map-keys'];
          if (Array.isArray(keys) && keys.length > 0) addCheck({ check: 'uniqueBy', keys: keys.map(String) });
        }
        break;
      case 'x-kubernetes-list-map-keys':
        break;
      case 'properties':
        if (isObject(value))
          out.properties = Object.fromEntries(
            Object.entries(value).map(([name, child]) => [
              name,
              isObject(child) ? transformSchema(child, `${where}.${name}`, ctx) : child,
            ]),
          );
        break;
      case 'items':
        out.items = isObject(value) ? transformSchema(value, `${where}[]`, ctx) : value;
        break;
      case 'additionalProperties':
        out.additionalProperties = isObject(value) ? transformSchema(value, `${where}{}`, ctx) : value;
        break;
      case 'not':
        out.not = isObject(value) ? transformSchema(value, where, ctx) : value;
        break;
      case 'oneOf':
      case 'anyOf':
      case 'allOf':
        out[key] = Array.isArray(value)
          ? value.map((sub) => (isObject(sub) ? transformSchema(sub, where, ctx) : sub))
          : value;
        break;
      default:
        if (key.startsWith('x-')) throw new Error(`${where}: unknown schema extension ${key}`);
        out[key] = value;
    }
  }
  if (out.properties !== undefined && out.additionalProperties === undefined && !preserveUnknown)
    out.additionalProperties = false;
  if (intOrString && out.anyOf === undefined) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  if (checks.length > 0) out.weftChecks = checks;
  return out;
}

/** Subschemas at least this long (as JSON) are shared through $defs when they occur more than once. */
const SHARE_MIN_CHARS = 300;

/** Moves repeated large subschemas of one kind's schema into `$defs`, referenced by `$ref`. */
export function shareRepeatedSubschemas(schema: SpecSchema): SpecSchema {
  const counts = new Map<string, number>();
  const count = (node: unknown, isRoot: boolean): void => {
    if (Array.isArray(node)) node.forEach((n) => count(n, false));
    else if (isObject(node)) {
      const text = JSON.stringify(node);
      if (!isRoot && text.length >= SHARE_MIN_CHARS) counts.set(text, (counts.get(text) ?? 0) + 1);
      Object.values(node).forEach((n) => count(n, false));
    }
  };
  count(schema, true);
  const defs: Record<string, unknown> = {};
  const defNameOf = new Map<string, string>();
  const rewrite = (node: unknown, name: string, isRoot: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => rewrite(n, name, false));
    if (!isObject(node)) return node;
    const text = JSON.stringify(node);
    if (!isRoot && (counts.get(text) ?? 0) > 1) {
      let defName = defNameOf.get(text);
      if (defName === undefined) {
        defName = name;
        for (let i = 2; defName in defs; i++) defName = `${name}${i}`;
        defNameOf.set(text, defName);
        defs[defName] = null; // reserve the name before descending
        defs[defName] = rewriteChildren(node, name);
      }
      return { $ref: `#/$defs/${defName}` };
    }
    return rewriteChildren(node, name);
  };
  const rewriteChildren = (node: JsonObject, name: string): JsonObject => {
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === 'properties' && isObject(value))
        out[key] = Object.fromEntries(
          Object.entries(value).map(([prop, child]) => [prop, rewrite(child, prop, false) as Json]),
        );
      else out[key] = rewrite(value, key === 'items' ? `${name}Item` : name, false) as Json;
    }
    return out;
  };
  const root = rewrite(schema, 'spec', true) as SpecSchema;
  return Object.keys(defs).length > 0 ? { ...root, $defs: defs } : root;
}

/** The generated file's content, from the text of crd-all.gen.yaml. Pure: the unit test calls it too. */
export function generateIstioSchemas(crdYaml: string): IstioSchemaFile {
  const ctx: Context = { untranslated: [] };
  const result: IstioSchemaFile = { kinds: {}, schemas: {}, specRequired: [], untranslatedRules: [] };
  const wanted = new Set(
    Object.entries(groupOfKind)
      // Weft's own kinds (weft.dev) have hand-written schemas in src/api/weft/schemas.json.
      .filter(([, group]) => group.endsWith('istio.io'))
      .flatMap(([kind, group]) =>
        (versionsOfGroup[group] ?? []).map((version) => `${group}/${version}/${kind}`),
      ),
  );
  for (const doc of parseAllDocuments(crdYaml)) {
    if (doc.errors.length > 0) throw new Error(`CRD file does not parse: ${doc.errors[0].message}`);
    const crd: unknown = doc.toJS();
    if (!isObject(crd) || crd.kind !== 'CustomResourceDefinition' || !isObject(crd.spec)) continue;
    const { group, names, versions } = crd.spec;
    if (typeof group !== 'string' || !isObject(names) || !Array.isArray(versions)) continue;
    if (typeof names.kind !== 'string') continue;
    const kind = names.kind;
    for (const version of versions) {
      if (!isObject(version) || !isObject(version.schema) || typeof version.name !== 'string') continue;
      const id = `${group}/${version.name}/${kind}`;
      if (!wanted.has(id)) continue;
      const root = version.schema.openAPIV3Schema;
      if (!isObject(root) || !isObject(root.properties) || !isObject(root.properties.spec))
        throw new Error(`${id}: CRD has no spec schema`);
      const schema = shareRepeatedSubschemas(transformSchema(root.properties.spec, `${kind}.spec`, ctx));
      const text = JSON.stringify(schema);
      let key = Object.keys(result.schemas).find(
        (k) => k.split('.')[0] === kind && JSON.stringify(result.schemas[k]) === text,
      );
      if (key === undefined) {
        key = kind in result.schemas ? `${kind}.${version.name}` : kind;
        result.schemas[key] = schema;
      }
      result.kinds[id] = key;
      if (
        Array.isArray(root.required) &&
        root.required.includes('spec') &&
        !result.specRequired.includes(kind)
      )
        result.specRequired.push(kind);
      wanted.delete(id);
    }
  }
  if (wanted.size > 0) throw new Error(`CRD file lacks ${[...wanted].join(', ')}`);
  result.untranslatedRules = [...new Set(ctx.untranslated)];
  return result;
}

async function main(): Promise<void> {
  const crdFile = path.join(istioReferenceDir(), 'crds', 'crd-all.gen.yaml');
  const generated = generateIstioSchemas(fs.readFileSync(crdFile, 'utf8'));
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(outputFile)) ?? {};
  const text = await prettier.format(JSON.stringify(generated), { ...options, filepath: outputFile });
  fs.writeFileSync(outputFile, text);
  const count = Object.keys(generated.kinds).length;
  console.log(
    `wrote ${path.relative(repo, outputFile)}: ${count} kind versions, ${Object.keys(generated.schemas).length} distinct schemas, ${text.length} bytes`,
  );
  for (const rule of generated.untranslatedRules) console.warn(`untranslated CEL rule: ${rule}`);
}

if (import.meta.main) await main();
