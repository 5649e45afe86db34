/** A control plane and sidecar processes with workload certificates, for mesh end-to-end tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { WorkloadTokens } from '../../src/control/ca/workload-tokens.ts';
import { request } from './http.ts';
import { launcherNodeFlags, REPO, spawnWeftProxy, waitFor } from './proxy.ts';
import type { ProxyProcess } from './proxy.ts';
import { closedPort } from './servers.ts';

export interface MeshSidecar extends ProxyProcess {
  readonly name: string;
  readonly ip: string;
  readonly admin: number;
  /** The outbound listener's port, bound on `ip`. */
  readonly outbound: number;
}

/**
 * `weft proxy` as a sidecar in namespace default with its own bootstrap token (minted from the control
 * plane's state dir), an outbound listener on `ip`, and admin on 127.0.0.1.
 */
export async function startSidecar(o: {
  name: string;
  serviceAccount: string;
  ip: string;
  labels: string;
  xdsPort: number;
  stateDir: string;
  workDir: string;
  extraArgs?: string[];
}): Promise<MeshSidecar> {
  const tokenFile = path.join(o.workDir, `${o.name}.token`);
  fs.writeFileSync(
    tokenFile,
    WorkloadTokens.open(o.stateDir).issue({ namespace: 'default', serviceAccount: o.serviceAccount }),
  );
  const admin = await closedPort();
  const outbound = await closedPort();
  const p = spawnWeftProxy([
    ...['--xds-address', `127.0.0.1:${o.xdsPort}`, '--ca-token-file', tokenFile],
    ...['--admin-port', String(admin), '--prometheus-port', '0', '--health-port', '0'],
    ...['--type', 'sidecar', '--name', o.name, '--namespace', 'default', '--ip', o.ip],
    ...['--service-account', o.serviceAccount, '--labels', o.labels],
    ...['--metadata', `WEFT_OUTBOUND_PORT=${outbound}`, '--metadata', `WEFT_OUTBOUND_BIND=${o.ip}`],
    ...(o.extraArgs ?? []),
  ]);
  return Object.assign(p, { name: o.name, ip: o.ip, admin, outbound });
}

/**
 * An in-mesh HTTP service `host:port` served by the workloads labelled `app: NAME`, whose sidecars take it
 * on an ingress listener on that port and hand it to their application on 127.0.0.1:`appPort` (YAML).
 */
export function meshService(o: { name: string; host: string; port: number; appPort: number }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${o.name}}
spec:
  hosts: [${o.host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${o.port}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ${o.name}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${o.name}}
spec:
  workloadSelector: {labels: {app: ${o.name}}}
  ingress:
  - port: {number: ${o.port}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${o.appPort}
`;
}

/**
 * A request through a sidecar's outbound listener to `host:port` (by Host header, as an app behind it sends
 * it): its status, or 0 when the request failed.
 */
export function callThrough(
  from: MeshSidecar,
  host: string,
  port: number,
  path = '/',
  headers: Record<string, string> = {},
): Promise<number> {
  return request(from.outbound, {
    host: from.ip,
    path,
    headers: { host: `${host}:${port}`, ...headers },
  }).then(
    (r) => r.status,
    () => 0,
  );
}

/** One stat of a proxy's admin (0 when absent). */
export async function adminStat(proxy: { admin: number }, key: string): Promise<number> {
  const r = await request(proxy.admin, { path: '/stats?format=json' });
  const stats = (JSON.parse(r.body) as { stats: { name: string; value?: number }[] }).stats;
  return stats.find((s) => s.name === key)?.value ?? 0;
}

/** `weft control-plane` from dist/ with the dashboard on `dashboardPort`, returned once the dashboard answers. */
export async function startDashboardControlPlane(o: {
  configDir: string;
  stateDir: string;
  xdsPort: number;
  dashboardPort: number;
  extraArgs?: readonly string[];
}): Promise<ChildProcess> {
  const debugPort = await closedPort();
  const cp = spawn(
    process.execPath,
    [
      ...launcherNodeFlags(),
      path.join(REPO, 'dist/cli/main.js'),
      'control-plane',
      ...['--config', o.configDir, '--state-dir', o.stateDir],
      ...['--xds-port', String(o.xdsPort), '--debug-port', String(debugPort)],
      ...['--dashboard-port', String(o.dashboardPort)],
      ...(o.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  await waitFor(
    async () =>
      (await request(o.dashboardPort, { path: '/api/proxies' }).catch(() => ({ status: 0 }))).status === 200,
    20_000,
    'the dashboard to listen',
  );
  return cp;
}

export interface EchoMesh {
  readonly dir: string;
  readonly dashboard: number;
  readonly servicePort: number;
  /** The application behind echo's sidecar (127.0.0.1, any port). */
  readonly appPort: number;
  /** client, echo, then any extra sidecars, in that order. */
  readonly sidecars: MeshSidecar[];
  readonly cp: ChildProcess;
  /** A request from client to echo through the client's sidecar: its status (0 when it failed). */
  call(path?: string): Promise<number>;
  /** Steady calls every 50 ms; every `failEvery`-th to /fail, which echo answers 503 (0: never). */
  startLoad(failEvery?: number): void;
  stop(): Promise<void>;
}

/**
 * The dashboard tests' mesh: a control plane with its dashboard, and two sidecars, `client` calling `echo`
 * (`host` on a free port; the app answers `body`, and 503 on /fail), once a first call went through. Extra
 * YAML, control-plane arguments and sidecars shape it per test.
 */
export async function startEchoMesh(o: {
  dir: string;
  host: string;
  clientIp: string;
  serverIp: string;
  body?: string;
  clientArgs?: string[];
  echoArgs?: string[];
  controlPlaneArgs?: string[];
  /** More YAML for the config dir, given echo's app port. */
  extraConfig?: (appPort: number) => string;
  /** More sidecars, started after client and echo. */
  extraSidecars?: (common: { xdsPort: number; stateDir: string; workDir: string }) => Promise<MeshSidecar[]>;
}): Promise<EchoMesh> {
  const configDir = path.join(o.dir, 'config');
  const stateDir = path.join(o.dir, 'state');
  fs.mkdirSync(configDir, { recursive: true });
  const app = http.createServer((req, res) => {
    req.resume();
    res.writeHead(req.url === '/fail' ? 503 : 200, { 'content-type': 'text/plain' });
    res.end(o.body ?? 'echo');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  const servicePort = await closedPort();
  fs.writeFileSync(
    path.join(configDir, 'mesh.yaml'),
    meshService({ name: 'echo', host: o.host, port: servicePort, appPort }) +
      (o.extraConfig ? `---\n${o.extraConfig(appPort)}` : ''),
  );
  const xdsPort = await closedPort();
  const dashboard = await closedPort();
  const cp = await startDashboardControlPlane({
    configDir,
    stateDir,
    xdsPort,
    dashboardPort: dashboard,
    ...(o.controlPlaneArgs ? { extraArgs: o.controlPlaneArgs } : {}),
  });
  const common = { xdsPort, stateDir, workDir: o.dir };
  const sidecars: MeshSidecar[] = [];
  let load: NodeJS.Timeout | undefined;
  const mesh: EchoMesh = {
    dir: o.dir,
    dashboard,
    servicePort,
    appPort,
    sidecars,
    cp,
    call: (p = '/') => callThrough(sidecars[0], o.host, servicePort, p),
    startLoad(failEvery = 0) {
      let n = 0;
      load = setInterval(() => void mesh.call(failEvery > 0 && ++n % failEvery === 0 ? '/fail' : '/'), 50);
    },
    async stop() {
      clearInterval(load);
      for (const s of sidecars) s.kill();
      await Promise.all(sidecars.map((s) => s.exited));
      if (cp.exitCode === null) {
        const exited = new Promise((r) => cp.once('exit', r));
        cp.kill('SIGTERM');
        await exited;
      }
      app.close();
    },
  };
  try {
    sidecars.push(
      await startSidecar({
        name: 'client',
        serviceAccount: 'client',
        ip: o.clientIp,
        labels: 'app=client,version=v1',
        ...(o.clientArgs ? { extraArgs: o.clientArgs } : {}),
        ...common,
      }),
      await startSidecar({
        name: 'echo',
        serviceAccount: 'echo',
        ip: o.serverIp,
        labels: 'app=echo,version=v1',
        ...(o.echoArgs ? { extraArgs: o.echoArgs } : {}),
        ...common,
      }),
      ...(o.extraSidecars ? await o.extraSidecars(common) : []),
    );
    await waitFor(async () => (await mesh.call()) === 200, 30_000, 'a request through the mesh');
  } catch (e) {
    await mesh.stop();
    throw e;
  }
  return mesh;
}
