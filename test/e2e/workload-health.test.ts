/**
 * WorkloadEntry health end to end: with Istio's `proxy.istio.io/health-checks-enabled` annotation a
 * WorkloadEntry serves only while its `Healthy` condition is `True`. The control plane sends the others as
 * UNHEALTHY endpoints, a Weft sidecar sends them nothing and shows them in /clusters, and a condition
 * changed in the file moves traffic at the next push.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const HOST = 'health.default.svc.cluster.local';
const CLUSTER = `outbound|80||${HOST}`;

type Health = 'unchecked' | 'True' | 'False' | 'none';

function entry(name: string, port: number, health: Health): string {
  const annotations =
    health === 'unchecked' ? '' : '\n  annotations: {proxy.istio.io/health-checks-enabled: "true"}';
  const status =
    health === 'True' || health === 'False'
      ? `\nstatus: {conditions: [{type: Healthy, status: "${health}", reason: probe}]}`
      : '';
  return `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${name}${annotations}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: health}}${status}
`;
}

describe('WorkloadEntry health through a Weft sidecar', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-we-health-'));
  const ports = new Map<string, number>();
  const closers: (() => Promise<void>)[] = [];
  let cp: ControlPlane | undefined;
  let proxy: ProxyProcess | undefined;
  let outbound = 0;
  let admin = 0;

  const writeConfig = (health: Record<string, Health>): void => {
    const entries = Object.entries(health)
      .map(([name, h]) => entry(name, ports.get(name)!, h))
      .join('');
    fs.writeFileSync(
      path.join(dir, 'mesh.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: health}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: health}}
${entries}`,
    );
  };
  const servedBy = async (n: number): Promise<string[]> => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await request(outbound, { path: '/', headers: { host: HOST } });
      seen.add(r.status === 200 ? r.body : `status ${r.status}`);
    }
    return [...seen].sort();
  };
  const healthFlags = async (): Promise<Record<string, string>> => {
    const text = (await request(admin, { path: '/clusters' })).body;
    const out: Record<string, string> = {};
    for (const [name, port] of ports) {
      const m = new RegExp(
        `^${CLUSTER.replaceAll('|', '\\|')}::127\\.0\\.0\\.1:${port}::health_flags::(.*)$`,
        'm',
      ).exec(text);
      out[name] = m?.[1] ?? 'absent';
    }
    return out;
  };

  before(async () => {
    for (const name of ['plain', 'checked', 'sick']) {
      const up = await startHttpUpstream({
        handler: (req, res) => {
          req.resume();
          res.writeHead(200).end(name);
        },
      });
      ports.set(name, up.port);
      closers.push(() => up.close());
    }
    writeConfig({ plain: 'unchecked', checked: 'True', sick: 'False' });
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    outbound = await closedPort();
    admin = await closedPort();
    proxy = spawnWeftProxy([
      ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
      ...['--admin-port', String(admin), '--prometheus-port', String(await closedPort())],
      ...['--health-port', String(await closedPort())],
      ...['--type', 'sidecar', '--name', 'health-client', '--namespace', 'default', '--ip', '127.0.0.1'],
      ...['--labels', 'app=health-client', '--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
    ]);
    await waitFor(
      async () => (await request(outbound, { path: '/', headers: { host: HOST } })).status === 200,
      20_000,
      'the sidecar to route',
    );
  });

  after(async () => {
    proxy?.kill();
    await proxy?.exited;
    await cp?.stop();
    for (const close of closers) await close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends nothing to an entry whose Healthy condition is False, and shows it unhealthy', async () => {
    assert.deepEqual(await servedBy(60), ['checked', 'plain']);
    assert.deepEqual(await healthFlags(), {
      plain: 'healthy',
      checked: 'healthy',
      sick: '/failed_eds_health',
    });
  });

  it('moves traffic when the conditions change, and treats a missing condition as not healthy', async () => {
    writeConfig({ plain: 'unchecked', checked: 'none', sick: 'True' });
    await waitFor(
      async () => (await healthFlags()).checked === '/failed_eds_health',
      15_000,
      'the new endpoint health to reach the sidecar',
    );
    assert.deepEqual(await servedBy(60), ['plain', 'sick']);
    assert.deepEqual(await healthFlags(), {
      plain: 'healthy',
      checked: '/failed_eds_health',
      sick: 'healthy',
    });
  });
});
