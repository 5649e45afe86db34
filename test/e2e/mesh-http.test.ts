/**
 * The whole loop with Weft's own parts: `weft proxy` processes identify themselves Istio-style to the control
 * plane, get their listeners/routes/clusters/endpoints over ADS, and route HTTP as the Istio resources in a
 * watched directory say — through a sidecar's outbound listener and through an ingress gateway. Config
 * changes under load lose no request; an invalid edit changes nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const HOST = 'web.default.svc.cluster.local';

function mesh(ports: { v1: number; v2: number; gateway: number }, split: { v1: number; v2: number }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v1}
spec: {address: 127.0.0.1, ports: {http: ${ports.v1}}, labels: {app: web, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v2}
spec: {address: 127.0.0.1, ports: {http: ${ports.v2}}, labels: {app: web, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: web, subset: v2}}]
  - route:
    - {destination: {host: web, subset: v1}, weight: ${split.v1}}
    - {destination: {host: web, subset: v2}, weight: ${split.v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${ports.gateway}, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: istio-system}
spec:
  hosts: [shop.example.com]
  gateways: [ingress]
  http:
  - match: [{uri: {prefix: /web/}}]
    rewrite: {uri: /}
    route: [{destination: {host: ${HOST}, subset: v2}}]
`;
}

describe('Weft proxies driven by the Weft control plane', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-'));
  const file = path.join(dir, 'mesh.yaml');
  let cp: ControlPlane;
  let debugPort = 0;
  const upstreams: Awaited<ReturnType<typeof startHttpUpstream>>[] = [];
  const proxies: ProxyProcess[] = [];
  let ports: { v1: number; v2: number; gateway: number };
  let outbound = 0;

  const viaSidecar = (headers: http.OutgoingHttpHeaders = {}, agent?: http.Agent): Promise<Reply> =>
    request(outbound, { headers: { host: HOST, ...headers }, agent });
  const nameOf = (r: Reply): string => String(r.headers['x-upstream']);

  before(async () => {
    const [v1, v2] = await Promise.all([
      startHttpUpstream({ name: 'v1' }),
      startHttpUpstream({ name: 'v2' }),
    ]);
    upstreams.push(v1, v2);
    ports = { v1: v1.port, v2: v2.port, gateway: await closedPort() };
    fs.writeFileSync(file, mesh(ports, { v1: 80, v2: 20 }));
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    debugPort = started.debugPort;
    outbound = await closedPort();
    const common = async (): Promise<string[]> => [
      '--xds-address',
      `127.0.0.1:${started.xdsPort}`,
      '--admin-port',
      String(await closedPort()),
      '--prometheus-port',
      String(await closedPort()),
      '--health-port',
      String(await closedPort()),
    ];
    proxies.push(
      spawnWeftProxy([
        ...(await common()),
        ...['--type', 'sidecar', '--name', 'client-1', '--namespace', 'default', '--ip', '127.0.0.1'],
        ...['--labels', 'app=client', '--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
      ]),
      spawnWeftProxy([
        ...(await common()),
        ...['--type', 'router', '--name', 'ingress-1', '--namespace', 'istio-system', '--ip', '127.0.0.1'],
        ...['--labels', 'istio=ingressgateway', '--metadata', 'WEFT_GATEWAY_BIND=127.0.0.1'],
      ]),
    );
    await waitFor(async () => (await viaSidecar()).status === 200, 20_000, 'the sidecar to route');
    await waitFor(
      async () =>
        (await request(ports.gateway, { path: '/web/x', headers: { host: 'shop.example.com' } })).status ===
        200,
      20_000,
      'the gateway to route',
    );
  });

  after(async () => {
    for (const p of proxies) p.kill();
    await Promise.all(proxies.map((p) => p.exited));
    await cp?.stop();
    await Promise.all(upstreams.map((u) => u.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('both proxies show as SYNCED in the control plane', async () => {
    const syncz = JSON.parse((await request(debugPort, { path: '/debug/syncz' })).body) as {
      proxy?: string;
      node?: { id: string };
      types?: Record<string, { state: string }>;
    }[];
    const text = JSON.stringify(syncz);
    assert.match(text, /sidecar~127\.0\.0\.1~client-1\.default~default\.svc\.cluster\.local/);
    assert.match(text, /router~127\.0\.0\.1~ingress-1\.istio-system~istio-system\.svc\.cluster\.local/);
    assert.doesNotMatch(text, /"NACK"/);
  });

  it('the sidecar follows a header-match route', async () => {
    for (let i = 0; i < 20; i++) assert.equal(nameOf(await viaSidecar({ 'x-version': 'v2' })), 'v2');
  });

  it('the sidecar splits traffic 80/20 between subsets', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const counts: Record<string, number> = {};
    const n = 400;
    for (let i = 0; i < n; i++) {
      const r = await viaSidecar({}, agent);
      assert.equal(r.status, 200);
      counts[nameOf(r)] = (counts[nameOf(r)] ?? 0) + 1;
    }
    agent.destroy();
    // Binomial(400, 0.8): standard deviation 2%; [70%, 90%] is five of them either side.
    assert.ok((counts.v1 ?? 0) / n > 0.7 && (counts.v1 ?? 0) / n < 0.9, JSON.stringify(counts));
  });

  it('the gateway routes by host and path, with the rewrite', async () => {
    const r = await request(ports.gateway, { path: '/web/hello', headers: { host: 'shop.example.com' } });
    assert.equal(r.status, 200);
    assert.equal(nameOf(r), 'v2');
    assert.equal((JSON.parse(r.body) as { url: string }).url, '/hello');
    assert.equal(
      (await request(ports.gateway, { path: '/web/hello', headers: { host: 'other.example.com' } })).status,
      404,
    );
  });

  it('an invalid edit is reported and changes nothing; proxies keep serving', async () => {
    const before = cp.ads.stats().pushRequests;
    fs.writeFileSync(file, mesh(ports, { v1: 80, v2: 20 }).replace('weight: 80', 'weight: eighty'));
    await waitFor(
      () => cp.diagnostics.some((d) => d.severity === 'error' && d.file === file),
      10_000,
      'a diagnostic',
    );
    const error = cp.diagnostics.find((d) => d.severity === 'error')!;
    assert.match(
      `${error.resource} ${error.field}`,
      /VirtualService default\/web spec\.http\[1\]\.route\[0\]\.weight/,
    );
    assert.equal(cp.ads.stats().pushRequests, before, 'no push for an edit that changes no valid resource');
    for (let i = 0; i < 10; i++) assert.equal((await viaSidecar()).status, 200);
  });

  it('moves all traffic to v2 under load without failing a request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    let failures = 0;
    let sent = 0;
    let stop = false;
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        sent++;
        const r = await viaSidecar({}, agent).catch(() => ({ status: 0, headers: {}, body: '' }));
        if (r.status !== 200) failures++;
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(file, mesh(ports, { v1: 0, v2: 100 }));
    const twentyV2 = async (): Promise<boolean> => {
      for (let i = 0; i < 20; i++) if (nameOf(await viaSidecar({}, agent)) !== 'v2') return false;
      return true;
    };
    await waitFor(twentyV2, 20_000, 'all traffic on v2');
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    assert.equal(failures, 0, `${failures} of ${sent} requests failed during the change`);
    assert.ok(sent > 50, `only ${sent} requests sent`);
  });
});
