/**
 * A control plane restart must not take endpoints away: the workloads its proxies had registered are kept
 * in the state dir and restored by the next start, so a caller that reconnects before the callee's proxy
 * does is not handed an empty endpoint list (503 UH) for the callee's service.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { ControlPlaneOptions } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { meshService, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const API_HOST = 'api.default.svc.cluster.local';

describe('control plane restart', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-restart-'));
  const sidecars: MeshSidecar[] = [];
  let cp: ControlPlane | undefined;
  let app: Awaited<ReturnType<typeof startHttpUpstream>> | undefined;
  after(async () => {
    for (const s of sidecars) {
      s.child.kill('SIGCONT');
      s.kill();
    }
    await Promise.all(sidecars.map((s) => s.exited));
    await cp?.stop();
    await app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the endpoints of workloads whose proxies have not reconnected yet', async () => {
    app = await startHttpUpstream({ name: 'api' });
    const ingressPort = await closedPort();
    const configDir = path.join(dir, 'config');
    fs.mkdirSync(configDir);
    fs.writeFileSync(
      path.join(configDir, 'mesh.yaml'),
      meshService({ name: 'api', host: API_HOST, port: ingressPort, appPort: app.port }),
    );
    const stateDir = path.join(dir, 'state');
    const opts: ControlPlaneOptions = {
      configPaths: [configDir],
      xdsPort: await closedPort(),
      debugPort: 0,
      debounceMs: 20,
      stateDir,
    };
    cp = new ControlPlane(opts);
    const { xdsPort } = await cp.start();
    const common = { xdsPort, stateDir, workDir: dir };
    const api = await startSidecar({
      name: 'api',
      serviceAccount: 'api',
      ip: '127.0.0.2',
      labels: 'app=api',
      ...common,
    });
    const web = await startSidecar({
      name: 'web',
      serviceAccount: 'web',
      ip: '127.0.0.3',
      labels: 'app=web',
      ...common,
    });
    sidecars.push(api, web);
    const call = async (): Promise<number> =>
      (
        await request(web.outbound, {
          host: '127.0.0.3',
          path: '/',
          headers: { host: `${API_HOST}:${ingressPort}` },
        })
      ).status;
    await waitFor(async () => (await call()) === 200, 30_000, 'web → api');

    // The callee's proxy is held back while the control plane restarts: the caller reconnects first.
    api.child.kill('SIGSTOP');
    await cp.stop();
    cp = new ControlPlane(opts);
    await cp.start();
    const restarted = cp;
    await waitFor(
      () => restarted.ads.connectedProxies >= 1,
      15_000,
      'web reconnected to the new control plane',
    );
    await new Promise((r) => setTimeout(r, 500)); // its pushes delivered
    api.child.kill('SIGCONT');
    const statuses: number[] = [];
    const end = Date.now() + 2500;
    while (Date.now() < end) {
      statuses.push(await call());
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(statuses.length > 50, `${statuses.length} requests`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every request after the restart is answered',
    );
    await waitFor(() => restarted.ads.connectedProxies >= 2, 15_000, 'api back on the new control plane');
  });
});
