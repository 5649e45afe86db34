/** A control plane and sidecar processes with workload certificates, for mesh end-to-end tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
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
