/**
 * The run plan of `weft up`: from the mesh file and a source of free ports, every address, every command
 * line, every app environment and the Istio resources the control plane must read. Pure, so what `weft up`
 * will do can be checked without starting anything.
 *
 * Explicit mode: each app listens on a private port on 127.0.0.1 and reaches the mesh through HTTP_PROXY /
 * grpc_proxy pointing at its sidecar. Transparent mode: each app runs in its own network namespace, listens
 * on its declared ports there, resolves service names to VIPs (240.240.0.0/16, as Istio auto-allocates) from
 * the namespace's /etc/hosts and connects to them directly; iptables hands those connections to its sidecar.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import type { MeshCommand, MeshFile, MeshWorkload, PortProtocol } from './mesh-file.ts';
import { hostsFile, planNetworks } from './netns.ts';
import type { InstanceNetwork, RunNetworks } from './netns.ts';

export const INSTANCE_LABEL = 'weft.io/instance';
/** Instances get 127.0.0.10, .11, ... in weft.yaml order, unless `weft up --first-ip` says where to begin. */
export const DEFAULT_FIRST_IP = '127.0.0.10';

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((n, o) => n * 256 + o, 0);
}

const intToIpv4 = (n: number): string =>
  [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** The loopback IP of the n-th instance (0-based, in weft.yaml order, replicas in turn), counting up from `first`. */
export function instanceIp(n: number, first: string = DEFAULT_FIRST_IP): string {
  const base = ipv4ToInt(first);
  if (base === undefined) throw new Error(`not an IPv4 address: ${first}`);
  return intToIpv4(base + n);
}

/**
 * Why `first` cannot be the first of `count` instance IPs, or undefined if it can. They must all be loopback
 * addresses (127.0.0.0/8, bindable without root on Linux) and none may be 127.0.0.1, where the apps, the
 * gateway and the control plane listen, nor the range's network or broadcast address.
 */
export function firstIpProblem(first: string, count: number): string | undefined {
  const base = ipv4ToInt(first);
  if (base === undefined) return `not an IPv4 address: ${JSON.stringify(first)}`;
  const lo = ipv4ToInt('127.0.0.0')!;
  const hi = ipv4ToInt('127.255.255.255')!;
  const last = base + Math.max(count, 1) - 1;
  if (base < lo || base > hi) return `${first} is not a loopback address (127.0.0.0/8)`;
  if (last >= hi) return `${count} instances from ${first} run past the end of 127.0.0.0/8`;
  const reserved = ipv4ToInt('127.0.0.1')!;
  if (base <= reserved)
    return `${first}..${intToIpv4(last)} would include 127.0.0.0 or 127.0.0.1 (the apps' and gateway's address)`;
  return undefined;
}

export interface RunPaths {
  readonly weftDir: string;
  readonly generatedDir: string;
  readonly stateDir: string;
  readonly logsDir: string;
  readonly tokensDir: string;
  readonly runFile: string;
}

export interface InstancePort {
  /** The service port (the sidecar's inbound listener on the instance IP). */
  readonly service: number;
  /** The app's own port on 127.0.0.1. */
  readonly private: number;
  readonly name: string;
  readonly protocol: PortProtocol;
}

export type Readiness =
  | { readonly kind: 'http'; readonly host: string; readonly port: number; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'none' };

export interface InstancePlan {
  readonly workload: string;
  readonly instance: string;
  readonly namespace: string;
  readonly service: string;
  readonly serviceAccount: string;
  readonly ip: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly InstancePort[];
  readonly outbound: number;
  readonly admin: number;
  readonly tokenFile: string;
  /** `weft` arguments of the sidecar. */
  readonly sidecarArgs: readonly string[];
  readonly app: { readonly command: MeshCommand; readonly cwd: string; readonly env: Record<string, string> };
  readonly readiness: Readiness;
  readonly appLog: string;
  readonly sidecarLog: string;
  /** Transparent mode: the instance's network namespace (the app runs in it). */
  readonly network?: InstanceNetwork;
}

export interface GatewayPlan {
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly number[];
  readonly admin: number;
  readonly tokenFile: string;
  readonly serviceAccount: string;
  readonly args: readonly string[];
  readonly log: string;
}

export interface ControlPlanePlan {
  readonly xdsPort: number;
  readonly debugPort: number;
  readonly dashboardPort: number;
  readonly args: readonly string[];
  readonly log: string;
}

export interface RunPlan {
  readonly mesh: MeshFile;
  readonly paths: RunPaths;
  readonly controlPlane: ControlPlanePlan;
  readonly gateway?: GatewayPlan;
  readonly instances: readonly InstancePlan[];
  /** Files (names inside paths.generatedDir) and their YAML. */
  readonly generated: readonly { readonly file: string; readonly yaml: string }[];
  /** Transparent mode: the namespaces and capture rules to create, and the /etc/hosts every app sees. */
  readonly transparent?: { readonly networks: RunNetworks; readonly hosts: string };
}

export interface PlanOptions {
  /** A distinct free port per call. */
  readonly allocatePort: () => number;
  /** Whether `weft control-plane` has --dashboard-port (else the dashboard is not started). */
  readonly dashboard: boolean;
  /** The first instance's loopback IP (default DEFAULT_FIRST_IP); check it with firstIpProblem first. */
  readonly firstIp?: string;
  /** Transparent mode, with the run's id and /24 (see netns.ts); else explicit. */
  readonly transparent?: { readonly runId: string; readonly subnetIndex: number };
}

export function runPaths(dir: string): RunPaths {
  const weftDir = path.join(dir, '.weft');
  return {
    weftDir,
    generatedDir: path.join(weftDir, 'generated'),
    stateDir: path.join(weftDir, 'state'),
    logsDir: path.join(weftDir, 'logs'),
    tokensDir: path.join(weftDir, 'tokens'),
    runFile: path.join(weftDir, 'run.json'),
  };
}

export function serviceHost(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.cluster.local`;
}

const labelList = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

function appEnv(
  w: MeshWorkload,
  instance: string,
  ports: readonly InstancePort[],
  outbound: number | undefined,
): Record<string, string> {
  const env: Record<string, string> = { ...w.env };
  if (ports.length > 0) env.PORT = String(ports[0].private);
  // Where the app should listen: only its sidecar reaches it, on loopback or, in its own namespace, on eth0.
  env.HOST = outbound === undefined ? '0.0.0.0' : '127.0.0.1';
  for (const p of ports) env[`WEFT_PORT_${p.service}`] = String(p.private);
  if (outbound !== undefined) {
    const proxy = `http://127.0.0.1:${outbound}`;
    for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'grpc_proxy']) env[k] = proxy;
    env.NO_PROXY = env.no_proxy = 'localhost,127.0.0.1';
    env.NODE_USE_ENV_PROXY = '1';
  }
  env.WEFT_WORKLOAD = w.name;
  env.WEFT_NAMESPACE = w.namespace;
  env.WEFT_INSTANCE = instance;
  env.WEFT_SERVICE = w.service;
  return env;
}

export function buildPlan(mesh: MeshFile, opts: PlanOptions): RunPlan {
  const paths = runPaths(mesh.dir);
  const port = (fixed: number): number => (fixed === 0 ? opts.allocatePort() : fixed);
  const xdsPort = port(mesh.controlPlane.xdsPort);
  const debugPort = port(mesh.controlPlane.debugPort);
  const dashboardPort = opts.dashboard ? port(mesh.controlPlane.dashboardPort) : 0;
  const xdsAddress = `127.0.0.1:${xdsPort}`;
  const controlPlane: ControlPlanePlan = {
    xdsPort,
    debugPort,
    dashboardPort,
    args: [
      'control-plane',
      ...['--config', mesh.dir, '--config', paths.generatedDir, '--state-dir', paths.stateDir],
      ...['--xds-port', String(xdsPort), '--debug-port', String(debugPort)],
      ...(opts.dashboard ? ['--dashboard-port', String(dashboardPort)] : []),
      ...['--trust-domain', mesh.trustDomain],
    ],
    log: path.join(paths.logsDir, 'control-plane.log'),
  };

  // Logs are named by instance; the namespace joins the name only where two namespaces share a workload name.
  const nameCount = new Map<string, number>();
  for (const w of mesh.workloads) nameCount.set(w.name, (nameCount.get(w.name) ?? 0) + 1);

  // Ports first, in weft.yaml order; in transparent mode an app keeps its declared ports in its namespace.
  const allocated = mesh.workloads.flatMap((w) =>
    Array.from({ length: w.replicas }, (_, i) => ({
      w,
      i,
      ports: w.ports.map((p) => ({
        service: p.port,
        private: opts.transparent ? p.port : opts.allocatePort(),
        name: p.name,
        protocol: p.protocol,
      })),
      outbound: opts.allocatePort(),
      admin: opts.allocatePort(),
    })),
  );
  const networks = opts.transparent
    ? planNetworks(
        opts.transparent.runId,
        opts.transparent.subnetIndex,
        allocated.map((a) => a.outbound),
      )
    : undefined;

  const instances: InstancePlan[] = [];
  for (const { w, i, ports, outbound, admin } of allocated) {
    const instance = `${w.name}-${i}`;
    const fileBase = (nameCount.get(w.name) ?? 0) > 1 ? `${instance}.${w.namespace}` : instance;
    const network = networks?.instances[instances.length];
    const ip = instanceIp(instances.length, opts.firstIp);
    const appHost = network?.appIp ?? '127.0.0.1';
    const labels = { ...w.labels, [INSTANCE_LABEL]: instance };
    const tokenFile = path.join(paths.tokensDir, `${fileBase}.token`);
    instances.push({
      workload: w.name,
      instance,
      namespace: w.namespace,
      service: w.service,
      serviceAccount: w.serviceAccount,
      ip,
      labels,
      ports,
      outbound,
      admin,
      tokenFile,
      sidecarArgs: [
        'proxy',
        ...['--xds-address', xdsAddress, '--ca-token-file', tokenFile],
        ...['--type', 'sidecar', '--name', instance, '--namespace', w.namespace, '--ip', ip],
        ...['--workload-name', w.name, '--service-account', w.serviceAccount],
        ...['--labels', labelList(labels)],
        ...(w.locality !== undefined ? ['--locality', w.locality] : []),
        ...['--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
        ...['--metadata', `WEFT_OUTBOUND_BIND=${network?.hostIp ?? '127.0.0.1'}`],
        ...(network ? ['--interception-mode', 'REDIRECT'] : []),
        ...['--metadata', `WEFT_ADMIN_ADDRESS=127.0.0.1:${admin}`],
        ...['--admin-port', String(admin), '--prometheus-port', '0', '--health-port', '0'],
      ],
      app: {
        command: w.command,
        cwd: w.cwd,
        env: appEnv(w, instance, ports, network ? undefined : outbound),
      },
      readiness:
        ports.length === 0
          ? { kind: 'none' }
          : w.readiness.httpGet !== undefined
            ? { kind: 'http', host: appHost, port: ports[0].private, path: w.readiness.httpGet }
            : { kind: 'tcp', host: appHost, port: ports[0].private },
      appLog: path.join(paths.logsDir, `${fileBase}.app.log`),
      sidecarLog: path.join(paths.logsDir, `${fileBase}.sidecar.log`),
      ...(network ? { network } : {}),
    });
  }

  let gateway: GatewayPlan | undefined;
  if (mesh.gateway) {
    const g = mesh.gateway;
    const admin = opts.allocatePort();
    const tokenFile = path.join(paths.tokensDir, `${g.name}.token`);
    gateway = {
      name: g.name,
      namespace: g.namespace,
      ports: g.ports,
      admin,
      tokenFile,
      serviceAccount: g.name,
      args: [
        'proxy',
        ...['--xds-address', xdsAddress, '--ca-token-file', tokenFile],
        ...['--type', 'router', '--name', g.name, '--namespace', g.namespace, '--ip', '127.0.0.1'],
        ...['--service-account', g.name, '--labels', labelList(g.labels)],
        ...(g.locality !== undefined ? ['--locality', g.locality] : []),
        ...[
          '--metadata',
          'WEFT_GATEWAY_BIND=127.0.0.1',
          '--metadata',
          `WEFT_ADMIN_ADDRESS=127.0.0.1:${admin}`,
        ],
        ...['--admin-port', String(admin), '--prometheus-port', '0', '--health-port', '0'],
      ],
      log: path.join(paths.logsDir, 'gateway.log'),
    };
  }

  const vips = networks ? serviceVips(instances) : undefined;
  return {
    mesh,
    paths,
    controlPlane,
    ...(gateway ? { gateway } : {}),
    instances,
    generated: [{ file: 'weft-up.yaml', yaml: generatedYaml(mesh, instances, vips) }],
    ...(networks && vips ? { transparent: { networks, hosts: hostsFile(hostEntries(vips)) } } : {}),
  };
}

/**
 * The instance with its app moved to new private ports: the app's PORT / WEFT_PORT_* and its readiness
 * probe follow, and so does its Sidecar's defaultEndpoint once the resources are generated again. How
 * `weft restart` starts a new app beside the old one.
 */
export function withPrivatePorts(inst: InstancePlan, privatePorts: readonly number[]): InstancePlan {
  if (privatePorts.length !== inst.ports.length)
    throw new Error(`${inst.instance}: ${privatePorts.length} ports for ${inst.ports.length}`);
  const ports = inst.ports.map((p, i) => ({ ...p, private: privatePorts[i] }));
  const env = { ...inst.app.env };
  if (ports.length > 0) env.PORT = String(ports[0].private);
  for (const p of ports) env[`WEFT_PORT_${p.service}`] = String(p.private);
  const readiness: Readiness =
    inst.readiness.kind === 'none' ? inst.readiness : { ...inst.readiness, port: ports[0].private };
  return { ...inst, ports, app: { ...inst.app, env }, readiness };
}

/** A VIP per service with ports, in weft.yaml order: 240.240.0.1, .2, ... (Istio auto-allocates from 240.240/16). */
export function serviceVips(instances: readonly InstancePlan[]): Map<string, string> {
  const vips = new Map<string, string>();
  for (const inst of instances) {
    const key = `${inst.namespace}/${inst.service}`;
    if (inst.ports.length === 0 || vips.has(key)) continue;
    const n = vips.size + 1;
    vips.set(key, `240.240.${Math.floor(n / 256)}.${n % 256}`);
  }
  return vips;
}

/**
 * The names apps resolve: every service's FQDN, `name.namespace` and `name.namespace.svc`, and the bare name
 * where no other namespace has a service of that name (a pod's search path would pick its own namespace's;
 * one /etc/hosts serves every namespace here).
 */
function hostEntries(vips: ReadonlyMap<string, string>): { ip: string; names: string[] }[] {
  const byName = new Map<string, number>();
  for (const key of vips.keys()) {
    const name = key.split('/')[1];
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  return [...vips].map(([key, ip]) => {
    const [namespace, name] = key.split('/');
    return {
      ip,
      names: [
        serviceHost(name, namespace),
        `${name}.${namespace}.svc`,
        `${name}.${namespace}`,
        ...(byName.get(name) === 1 ? [name] : []),
      ],
    };
  });
}

/**
 * The Istio resources that describe the mesh file's services: a ServiceEntry per service (its workloads are
 * the sidecars that register with `app: <service>`), and a Sidecar per instance whose ingress hands each
 * service port to the app's private port.
 */
export function generatedYaml(
  mesh: MeshFile,
  instances: readonly InstancePlan[],
  vips?: ReadonlyMap<string, string>,
): string {
  const docs: unknown[] = [];
  const services = new Map<
    string,
    { service: string; namespace: string; ports: Map<number, InstancePort> }
  >();
  for (const inst of instances) {
    const key = `${inst.namespace}/${inst.service}`;
    let s = services.get(key);
    if (!s) services.set(key, (s = { service: inst.service, namespace: inst.namespace, ports: new Map() }));
    for (const p of inst.ports) if (!s.ports.has(p.service)) s.ports.set(p.service, p);
  }
  for (const s of services.values()) {
    if (s.ports.size === 0) continue;
    docs.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: s.service, namespace: s.namespace },
      spec: {
        hosts: [serviceHost(s.service, s.namespace)],
        ...(vips?.has(`${s.namespace}/${s.service}`)
          ? { addresses: [vips.get(`${s.namespace}/${s.service}`)] }
          : {}),
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [...s.ports.values()].map((p) => ({ number: p.service, name: p.name, protocol: p.protocol })),
        workloadSelector: { labels: { app: s.service } },
      },
    });
  }
  for (const inst of instances) {
    if (inst.ports.length === 0) continue;
    docs.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: inst.instance, namespace: inst.namespace },
      spec: {
        workloadSelector: { labels: { [INSTANCE_LABEL]: inst.instance } },
        ingress: inst.ports.map((p) => ({
          port: { number: p.service, name: p.name, protocol: p.protocol },
          defaultEndpoint: `${inst.network?.appIp ?? '127.0.0.1'}:${p.private}`,
        })),
      },
    });
  }
  const header = `# Written by weft up from ${mesh.name}'s weft.yaml on every start; edits are lost.\n`;
  return header + docs.map((d) => stringify(d)).join('---\n');
}
