// The benchmark's mesh: a configuration directory of Istio resources (ServiceEntry + WorkloadEntry, with a
// share of DestinationRules and VirtualServices) and the proxies that will connect to it. Deterministic: the
// same sizes always give the same files, so runs compare.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface MeshSize {
  readonly services: number;
  readonly endpoints: number;
  readonly namespaces: number;
  readonly proxies: number;
  /** Share of proxies that use delta xDS instead of state of the world. */
  readonly deltaShare: number;
}

export interface ProxySpec {
  readonly index: number;
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly delta: boolean;
}

export interface WorkloadSpec {
  readonly name: string;
  readonly namespace: string;
  readonly service: string;
  readonly address: string;
  readonly version: 'v1' | 'v2';
  readonly locality: string;
  readonly file: string;
}

export interface ServiceSpec {
  readonly name: string;
  readonly namespace: string;
  readonly host: string;
  readonly grpcPort: boolean;
  readonly destinationRule: boolean;
  readonly virtualService: boolean;
}

export interface GeneratedMesh {
  readonly dir: string;
  readonly services: readonly ServiceSpec[];
  readonly workloads: readonly WorkloadSpec[];
  readonly proxies: readonly ProxySpec[];
  readonly files: number;
  /** Clusters a sidecar sees (one per service port plus one per subset and port). */
  readonly clustersPerProxy: number;
}

export const LOCALITIES = ['region-1/zone-a', 'region-1/zone-b', 'region-2/zone-c'] as const;

/** Every 5th service has a DestinationRule with subsets v1/v2, every 10th also a VirtualService; every 10th (offset) a gRPC port. */
const DR_EVERY = 5;
const VS_EVERY = 10;
const GRPC_EVERY = 10;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** 10.A.B.C from a counter, starting at 10.0.1.0 so no address ends in .0.0. */
function ipOf(base: number, n: number): string {
  const v = n + 256;
  return `${base}.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`;
}

/** How many endpoints each service gets: the average, ±0..2 in cancelling pairs, so the total is exact. */
export function endpointCounts(services: number, endpoints: number): number[] {
  const base = Math.floor(endpoints / services);
  const extra = endpoints - base * services;
  const counts: number[] = [];
  for (let s = 0; s < services; s++) {
    const d = base >= 3 && (s | 1) < services ? (s >> 1) % 3 : 0;
    counts.push(base + (s < extra ? 1 : 0) + (s % 2 === 0 ? d : -d));
  }
  return counts;
}

export function serviceSpecs(size: MeshSize): ServiceSpec[] {
  const width = String(size.services).length;
  const out: ServiceSpec[] = [];
  for (let s = 0; s < size.services; s++) {
    const name = `svc-${pad(s, width)}`;
    const namespace = `ns-${s % size.namespaces}`;
    out.push({
      name,
      namespace,
      host: `${name}.${namespace}.svc.cluster.local`,
      grpcPort: s % GRPC_EVERY === 3,
      destinationRule: s % DR_EVERY === 0,
      virtualService: s % VS_EVERY === 0,
    });
  }
  return out;
}

export function workloadFile(dir: string, w: { namespace: string; name: string }): string {
  return path.join(dir, w.namespace, 'workloads', `${w.name}.yaml`);
}

export function workloadYaml(w: WorkloadSpec): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${w.name}
  namespace: ${w.namespace}
spec:
  address: ${w.address}
  labels:
    app: ${w.service}
    version: ${w.version}
  locality: ${w.locality}
  serviceAccount: ${w.service}
`;
}

function serviceYaml(s: ServiceSpec): string {
  const docs: string[] = [];
  const grpc = s.grpcPort ? '\n  - number: 9090\n    name: grpc\n    protocol: GRPC' : '';
  docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${s.name}
  namespace: ${s.namespace}
spec:
  hosts:
  - ${s.host}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 8080
    name: http
    protocol: HTTP${grpc}
  workloadSelector:
    labels:
      app: ${s.name}
`);
  if (s.destinationRule) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${s.name}
  namespace: ${s.namespace}
spec:
  host: ${s.name}
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    connectionPool:
      tcp:
        maxConnections: 100
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`);
  }
  if (s.virtualService) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${s.name}
  namespace: ${s.namespace}
spec:
  hosts:
  - ${s.name}
  http:
  - match:
    - headers:
        x-canary:
          exact: "1"
    route:
    - destination:
        host: ${s.name}
        subset: v2
  - route:
    - destination:
        host: ${s.name}
        subset: v1
      weight: 90
    - destination:
        host: ${s.name}
        subset: v2
      weight: 10
    timeout: 5s
`);
  }
  return docs.join('---\n');
}

export function proxySpecs(size: MeshSize): ProxySpec[] {
  const out: ProxySpec[] = [];
  const width = String(size.proxies).length;
  const deltaEvery = size.deltaShare > 0 ? Math.max(1, Math.round(1 / size.deltaShare)) : 0;
  for (let i = 0; i < size.proxies; i++) {
    const namespace = `ns-${i % size.namespaces}`;
    const name = `load-${pad(i, width)}`;
    // Addresses outside the WorkloadEntries' range: each proxy registers itself as a workload (Istio's
    // auto-registration) that no ServiceEntry selects, so the endpoint count stays as configured.
    const ip = ipOf(11, i);
    out.push({
      index: i,
      id: `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`,
      namespace,
      name,
      ip,
      labels: { app: 'load-client', instance: name },
      delta: deltaEvery > 0 && i % deltaEvery === deltaEvery - 1,
    });
  }
  return out;
}

/** Writes the configuration directory (which must be empty or absent) and describes what it holds. */
export function generateMesh(dir: string, size: MeshSize): GeneratedMesh {
  const services = serviceSpecs(size);
  const counts = endpointCounts(size.services, size.endpoints);
  const workloads: WorkloadSpec[] = [];
  let n = 0;
  let files = 0;
  for (let ns = 0; ns < size.namespaces; ns++) {
    mkdirSync(path.join(dir, `ns-${ns}`, 'services'), { recursive: true });
    mkdirSync(path.join(dir, `ns-${ns}`, 'workloads'), { recursive: true });
  }
  let clustersPerProxy = 0;
  services.forEach((s, i) => {
    writeFileSync(path.join(dir, s.namespace, 'services', `${s.name}.yaml`), serviceYaml(s));
    files++;
    const ports = s.grpcPort ? 2 : 1;
    clustersPerProxy += ports * (s.destinationRule ? 3 : 1);
    for (let k = 0; k < counts[i]; k++) {
      const name = `${s.name}-${k}`;
      const w: WorkloadSpec = {
        name,
        namespace: s.namespace,
        service: s.name,
        address: ipOf(10, n),
        version: k % 2 === 0 ? 'v1' : 'v2',
        locality: LOCALITIES[n % LOCALITIES.length],
        file: workloadFile(dir, { namespace: s.namespace, name }),
      };
      n++;
      writeFileSync(w.file, workloadYaml(w));
      files++;
      workloads.push(w);
    }
  });
  return { dir, services, workloads, proxies: proxySpecs(size), files, clustersPerProxy };
}

/**
 * Rewrites one WorkloadEntry with a new address, the way an editor or a GitOps sync would: a new file
 * renamed over the old one (an atomic replace; the watcher sees the rename).
 */
export function rewriteWorkload(w: WorkloadSpec, address: string): WorkloadSpec {
  const next = { ...w, address };
  const tmp = path.join(path.dirname(w.file), `.${path.basename(w.file)}.tmp`);
  writeFileSync(tmp, workloadYaml(next));
  renameSync(tmp, w.file);
  return next;
}

/** The address change number `i` writes: outside every generated range, unique per change. */
export function changeAddress(i: number): string {
  return ipOf(12, i);
}
