/**
 * `weft.yaml`: the mesh `weft up` runs (workloads, their commands and ports, the gateway, the control plane's
 * ports). Parsed and checked completely before anything starts; every problem names the file, the path and
 * the field (`weft.yaml: workloads[2].ports[0].port: must be 1-65535`). Pure: text in, a defaulted model out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';

export const MESH_FILE_NAME = 'weft.yaml';

export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';

export interface MeshPort {
  readonly port: number;
  readonly name: string;
  readonly protocol: PortProtocol;
}

export type MeshMode = 'explicit' | 'transparent';

export type MeshCommand = { readonly argv: readonly string[] } | { readonly shell: string };

export interface MeshWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly service: string;
  readonly serviceAccount: string;
  /** Includes `app` (the service) and `version` (v1 unless given). */
  readonly labels: Readonly<Record<string, string>>;
  readonly locality?: string;
  readonly command: MeshCommand;
  /** Absolute. */
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly replicas: number;
  readonly ports: readonly MeshPort[];
  /** An HTTP path to GET on the app's first port; else the port must accept a TCP connection. */
  readonly readiness: { readonly httpGet?: string };
}

export interface MeshGateway {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly number[];
  /** region[/zone[/subzone]]: where the gateway runs, for locality routing and cross-zone accounting. */
  readonly locality?: string;
}

export interface ControlPlanePorts {
  /** 0: pick a free port. */
  readonly xdsPort: number;
  readonly debugPort: number;
  readonly dashboardPort: number;
}

export interface MeshFile {
  /** The mesh directory (absolute). */
  readonly dir: string;
  readonly name: string;
  /** How apps' outbound traffic reaches their sidecars: proxy variables, or iptables capture (Linux, root). */
  readonly mode: MeshMode;
  readonly trustDomain: string;
  readonly controlPlane: ControlPlanePorts;
  readonly gateway?: MeshGateway;
  readonly workloads: readonly MeshWorkload[];
}

export class MeshFileError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'MeshFileError';
    this.problems = problems;
  }
}

/** Loopback addresses 127.0.0.10 .. 127.0.0.254 are handed out to instances. */
export const MAX_INSTANCES = 245;

const DNS_LABEL = {
  type: 'string',
  pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
  title: 'a DNS label (lowercase letters, digits and "-", at most 63, starting and ending alphanumeric)',
} as const;
const PORT = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const PORT_OR_ZERO = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const LOCALITY = {
  type: 'string',
  pattern: '^[^/\\s]+(/[^/\\s]+){0,2}$',
  title: 'region[/zone[/subzone]]',
} as const;

const LABELS = {
  type: 'object',
  propertyNames: {
    type: 'string',
    pattern: '^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$',
    title: 'a label key ([prefix/]name, name at most 63 letters, digits, "-", "_" or ".")',
  },
  additionalProperties: {
    type: 'string',
    pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$',
    title: 'a label value (at most 63 letters, digits, "-", "_" or ".")',
  },
} as const;

const SCHEMA = {
  type: 'object',
  required: ['workloads'],
  additionalProperties: false,
  properties: {
    mesh: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 1 },
        mode: { enum: ['explicit', 'transparent'] },
        trustDomain: {
          type: 'string',
          pattern: '^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$',
          title: 'a domain name',
        },
        controlPlane: {
          type: 'object',
          additionalProperties: false,
          properties: { xdsPort: PORT_OR_ZERO, debugPort: PORT_OR_ZERO, dashboardPort: PORT_OR_ZERO },
        },
      },
    },
    gateway: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: DNS_LABEL,
        namespace: DNS_LABEL,
        labels: LABELS,
        ports: { type: 'array', items: PORT, uniqueItems: true },
        locality: LOCALITY,
      },
    },
    workloads: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'command'],
        additionalProperties: false,
        properties: {
          name: DNS_LABEL,
          namespace: DNS_LABEL,
          service: DNS_LABEL,
          serviceAccount: DNS_LABEL,
          labels: LABELS,
          locality: LOCALITY,
          command: {
            type: ['string', 'array'],
            minLength: 1,
            minItems: 1,
            items: { type: 'string', minLength: 1 },
          },
          cwd: { type: 'string', minLength: 1 },
          env: {
            type: 'object',
            propertyNames: {
              type: 'string',
              pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
              title: 'an environment variable name',
            },
            additionalProperties: { type: ['string', 'number', 'boolean'] },
          },
          replicas: { type: 'integer', minimum: 1, maximum: MAX_INSTANCES },
          ports: {
            type: 'array',
            items: {
              type: 'object',
              required: ['port'],
              additionalProperties: false,
              properties: {
                port: PORT,
                name: DNS_LABEL,
                protocol: { enum: ['HTTP', 'HTTP2', 'GRPC', 'TCP'] },
              },
            },
          },
          readiness: {
            type: 'object',
            additionalProperties: false,
            properties: {
              httpGet: { type: 'string', pattern: '^/', title: 'a path starting with "/"' },
            },
          },
        },
      },
    },
  },
} as const;

let validator: (((data: unknown) => boolean) & { errors?: ErrorObject[] | null }) | undefined;

function validate(data: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true }).compile(
    SCHEMA,
  );
  return validator(data) ? [] : (validator.errors ?? []);
}

/** `/workloads/2/ports/0/port` → `workloads[2].ports[0].port`. */
function fieldPath(pointer: string, extra?: string): string {
  const segments = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segments.push(extra);
  let out = '';
  for (const s of segments) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out;
}

function describeType(type: unknown): string {
  const names = (Array.isArray(type) ? type : [type]).map((t) =>
    t === 'array' ? 'a list' : t === 'object' ? 'a map' : t === 'integer' ? 'an integer' : `a ${String(t)}`,
  );
  return names.join(' or ');
}

function problemOf(e: ErrorObject): { field: string; message: string } {
  const parent = (e.parentSchema ?? {}) as { minimum?: number; maximum?: number; title?: string };
  const got = e.data === undefined ? '' : `, got ${JSON.stringify(e.data)}`;
  switch (e.keyword) {
    case 'required':
      return {
        field: fieldPath(e.instancePath, (e.params as { missingProperty: string }).missingProperty),
        message: 'required',
      };
    case 'additionalProperties':
      return {
        field: fieldPath(e.instancePath, (e.params as { additionalProperty: string }).additionalProperty),
        message: 'unknown field',
      };
    case 'propertyNames':
      return {
        field: fieldPath(e.instancePath, (e.params as { propertyName: string }).propertyName),
        message: 'invalid name',
      };
    case 'type':
      return { field: fieldPath(e.instancePath), message: `must be ${describeType(e.schema)}${got}` };
    case 'minimum':
    case 'maximum':
      return {
        field: fieldPath(e.instancePath),
        message:
          parent.minimum !== undefined && parent.maximum !== undefined
            ? `must be ${parent.minimum}-${parent.maximum}${got}`
            : `must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(e.schema)}${got}`,
      };
    case 'pattern':
      return {
        field: fieldPath(e.instancePath),
        message: `must be ${parent.title ?? `like /${String(e.schema)}/`}${got}`,
      };
    case 'enum':
      return {
        field: fieldPath(e.instancePath),
        message: `must be one of ${(e.schema as unknown[]).join(', ')}${got}`,
      };
    case 'minItems':
      return { field: fieldPath(e.instancePath), message: `must list at least ${String(e.schema)}` };
    case 'minLength':
      return { field: fieldPath(e.instancePath), message: 'must not be empty' };
    case 'uniqueItems': {
      const { i } = e.params as { i: number };
      return {
        field: fieldPath(e.instancePath),
        message: `lists ${JSON.stringify((e.data as unknown[])[i])} twice`,
      };
    }
    default:
      return { field: fieldPath(e.instancePath), message: e.message ?? e.keyword };
  }
}

/** The variables `weft up` sets for every app; weft.yaml may not override them. */
const RESERVED_ENV = new Set([
  'PORT',
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'grpc_proxy',
  'NO_PROXY',
  'no_proxy',
  'NODE_USE_ENV_PROXY',
  'WEFT_WORKLOAD',
  'WEFT_NAMESPACE',
  'WEFT_INSTANCE',
  'WEFT_SERVICE',
]);

export function isReservedEnv(name: string): boolean {
  return RESERVED_ENV.has(name) || name.startsWith('WEFT_PORT_');
}

/** Istio's rule: a port named `<protocol>[-<suffix>]` has that protocol. */
export function protocolFromName(name: string | undefined): PortProtocol | undefined {
  const m = name === undefined ? null : /^(http2|http|grpc|tcp)(?:-|$)/i.exec(name);
  return m ? (m[1].toUpperCase() as PortProtocol) : undefined;
}

interface RawPort {
  port: number;
  name?: string;
  protocol?: PortProtocol;
}
interface RawWorkload {
  name: string;
  namespace?: string;
  service?: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
  locality?: string;
  command: string | string[];
  cwd?: string;
  env?: Record<string, string | number | boolean>;
  replicas?: number;
  ports?: RawPort[];
  readiness?: { httpGet?: string };
}
interface RawMesh {
  mesh?: {
    name?: string;
    mode?: 'explicit' | 'transparent';
    trustDomain?: string;
    controlPlane?: Partial<ControlPlanePorts>;
  };
  gateway?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    ports?: number[];
    locality?: string;
  };
  workloads: RawWorkload[];
}

/**
 * Parses `weft.yaml` text. `file` is how messages name it; `dir` is the mesh directory (names the mesh by
 * default, and `cwd`s are relative to it). Throws MeshFileError with every problem found.
 */
export function parseMeshFile(text: string, file: string, dir: string): MeshFile {
  const fail = (problems: string[]): never => {
    throw new MeshFileError(problems.map((p) => `${file}: ${p}`));
  };
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) fail(doc.errors.map((e) => `invalid YAML: ${e.message.split('\n')[0]}`));
  const data: unknown = doc.toJS() ?? {};
  const errors = validate(data);
  if (errors.length > 0) {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const e of errors) {
      const { field, message } = problemOf(e);
      // A value of the wrong type also fails its other rules; its first problem says enough.
      if (seen.has(field)) continue;
      seen.add(field);
      problems.push(field === '' ? message : `${field}: ${message}`);
    }
    fail(problems);
  }
  return build(data as RawMesh, dir, fail);
}

function build(raw: RawMesh, dir: string, fail: (problems: string[]) => never): MeshFile {
  const problems: string[] = [];
  const cp: ControlPlanePorts = {
    xdsPort: raw.mesh?.controlPlane?.xdsPort ?? 15010,
    debugPort: raw.mesh?.controlPlane?.debugPort ?? 15014,
    dashboardPort: raw.mesh?.controlPlane?.dashboardPort ?? 15000,
  };
  const fixedPorts = new Map<number, string>();
  for (const key of ['xdsPort', 'debugPort', 'dashboardPort'] as const) {
    const p = cp[key];
    if (p === 0) continue;
    const other = fixedPorts.get(p);
    if (other !== undefined) problems.push(`mesh.controlPlane.${key}: ${p} is already ${other}`);
    else fixedPorts.set(p, `mesh.controlPlane.${key}`);
  }
  let gateway: MeshGateway | undefined;
  if (raw.gateway) {
    gateway = {
      name: raw.gateway.name ?? 'ingressgateway',
      namespace: raw.gateway.namespace ?? 'istio-system',
      labels: raw.gateway.labels ?? { istio: 'ingressgateway' },
      ports: raw.gateway.ports ?? [],
      ...(raw.gateway.locality !== undefined ? { locality: raw.gateway.locality } : {}),
    };
    gateway.ports.forEach((p, i) => {
      const other = fixedPorts.get(p);
      if (other !== undefined) problems.push(`gateway.ports[${i}]: ${p} is already ${other}`);
    });
  }

  const workloads: MeshWorkload[] = [];
  const names = new Map<string, number>();
  /** `namespace/service` → port number → protocol and where it was declared first. */
  const servicePorts = new Map<string, Map<number, { protocol: PortProtocol; at: string }>>();
  let instances = 0;
  raw.workloads.forEach((w, i) => {
    const at = `workloads[${i}]`;
    const namespace = w.namespace ?? 'default';
    const key = `${namespace}/${w.name}`;
    const first = names.get(key);
    if (first !== undefined)
      problems.push(
        `${at}.name: ${JSON.stringify(w.name)} is already workloads[${first}] in namespace ${namespace}`,
      );
    else names.set(key, i);
    const service = w.service ?? w.labels?.app ?? w.name;
    if (w.labels?.app !== undefined && w.labels.app !== service)
      problems.push(
        `${at}.labels.app: ${JSON.stringify(w.labels.app)} differs from service ${JSON.stringify(service)} ` +
          '(a service selects its workloads by their app label)',
      );
    const ports: MeshPort[] = [];
    const seenPorts = new Map<number, number>();
    const seenNames = new Map<string, number>();
    (w.ports ?? []).forEach((p, j) => {
      const pat = `${at}.ports[${j}]`;
      const protocol = p.protocol ?? protocolFromName(p.name);
      if (protocol === undefined) {
        problems.push(
          `${pat}.protocol: required (${p.name === undefined ? 'the port has no name' : `the name ${JSON.stringify(p.name)} has no protocol prefix`}; prefixes: http, http2, grpc, tcp)`,
        );
        return;
      }
      const name = p.name ?? `${protocol.toLowerCase()}-${p.port}`;
      const dupPort = seenPorts.get(p.port);
      if (dupPort !== undefined) problems.push(`${pat}.port: ${p.port} is already ${at}.ports[${dupPort}]`);
      seenPorts.set(p.port, j);
      const dupName = seenNames.get(name);
      if (dupName !== undefined)
        problems.push(`${pat}.name: ${JSON.stringify(name)} is already ${at}.ports[${dupName}]`);
      seenNames.set(name, j);
      const svcKey = `${namespace}/${service}`;
      let known = servicePorts.get(svcKey);
      if (!known)
        servicePorts.set(svcKey, (known = new Map<number, { protocol: PortProtocol; at: string }>()));
      const prior = known.get(p.port);
      if (prior && prior.protocol !== protocol)
        problems.push(
          `${pat}.protocol: ${protocol} differs from ${prior.protocol} at ${prior.at} (same service ${service}, port ${p.port})`,
        );
      else if (!prior) known.set(p.port, { protocol, at: pat });
      ports.push({ port: p.port, name, protocol });
    });
    if (w.readiness?.httpGet !== undefined && ports.length === 0)
      problems.push(`${at}.readiness.httpGet: the workload has no ports to probe`);
    const replicas = w.replicas ?? 1;
    instances += replicas;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(w.env ?? {})) {
      if (isReservedEnv(k))
        problems.push(`${at}.env.${k}: set by weft up (see the app's environment in docs); remove it`);
      env[k] = String(v);
    }
    workloads.push({
      name: w.name,
      namespace,
      service,
      serviceAccount: w.serviceAccount ?? service,
      labels: { ...w.labels, app: service, version: w.labels?.version ?? 'v1' },
      ...(w.locality !== undefined ? { locality: w.locality } : {}),
      command: typeof w.command === 'string' ? { shell: w.command } : { argv: w.command },
      cwd: path.resolve(dir, w.cwd ?? '.'),
      env,
      replicas,
      ports,
      readiness: w.readiness ?? {},
    });
  });
  if (instances > MAX_INSTANCES)
    problems.push(`workloads: ${instances} instances in all (replicas summed); at most ${MAX_INSTANCES}`);
  if (problems.length > 0) fail(problems);
  return {
    dir,
    name: raw.mesh?.name ?? path.basename(dir),
    mode: raw.mesh?.mode ?? 'explicit',
    trustDomain: raw.mesh?.trustDomain ?? 'cluster.local',
    controlPlane: cp,
    ...(gateway ? { gateway } : {}),
    workloads,
  };
}

/** Reads DIR/weft.yaml; `shownDir` is how messages name the directory (as the user typed it). */
export function loadMeshFile(dir: string, shownDir = dir): MeshFile {
  const file = path.join(dir, MESH_FILE_NAME);
  const shown = path.join(shownDir, MESH_FILE_NAME);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MeshFileError([
      code === 'ENOENT'
        ? `${shown}: not found (weft up reads the mesh from DIR/${MESH_FILE_NAME})`
        : `${shown}: cannot read: ${(err as Error).message}`,
    ]);
  }
  return parseMeshFile(text, shown, path.resolve(dir));
}
