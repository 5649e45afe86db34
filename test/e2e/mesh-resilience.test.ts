/**
 * The resilience scenarios of the control-plane issue, with Weft's own proxies: a sidecar configured by the Weft
 * control plane from Istio VirtualServices retries a failing upstream, injects an abort and a delay, and does
 * not retry where the configuration says not to. The upstream counts what reaches it, so an injected abort is
 * shown not to reach it and a retry is shown to be another attempt.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const HOST = 'api.default.svc.cluster.local';

function mesh(port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api]
  http:
  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: api}}]
  - match: [{headers: {x-fault: {exact: delay}}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: api}}]
  - match: [{uri: {prefix: /no-retry/}}]
    retries: {attempts: 0}
    route: [{destination: {host: api}}]
  - route: [{destination: {host: api}}]
    retries: {attempts: 3, retryOn: 5xx}
`;
}

describe('Weft sidecar resilience from VirtualServices', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-resilience-'));
  let cp: ControlPlane;
  let proxy: ProxyProcess | undefined;
  let outbound = 0;
  /** Attempts per path; the upstream fails each path's first `failures` attempts with 503. */
  const attempts = new Map<string, number>();
  const failures = 2;
  let upstream: Awaited<ReturnType<typeof startHttpUpstream>>;

  const call = (p: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> =>
    request(outbound, { path: p, headers: { host: HOST, ...headers } });

  before(async () => {
    upstream = await startHttpUpstream({
      handler: (req, res) => {
        const key = req.url ?? '';
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if (key.includes('/flaky/') && n <= failures) {
          res.writeHead(503).end('not yet');
          return;
        }
        res.writeHead(200, { 'x-attempt': String(n) }).end('ok');
      },
    });
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(upstream.port));
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    outbound = await closedPort();
    proxy = spawnWeftProxy([
      ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
      ...['--admin-port', String(await closedPort()), '--prometheus-port', String(await closedPort())],
      ...['--health-port', String(await closedPort())],
      ...['--type', 'sidecar', '--name', 'client-1', '--namespace', 'default', '--ip', '127.0.0.1'],
      ...['--labels', 'app=client', '--metadata', `WEFT_OUTBOUND_PORT=${outbound}`],
    ]);
    await waitFor(async () => (await call('/ready')).status === 200, 20_000, 'the sidecar to route');
  });

  after(async () => {
    proxy?.kill();
    await proxy?.exited;
    await cp?.stop();
    await upstream?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('retries a 503 until the upstream answers, within the attempts the VirtualService allows', async () => {
    const r = await call('/flaky/1');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-attempt'], String(failures + 1));
    assert.equal(attempts.get('/flaky/1'), failures + 1);
  });

  it('does not retry where the VirtualService sets attempts: 0', async () => {
    const r = await call('/no-retry/flaky/2');
    assert.equal(r.status, 503);
    assert.equal(attempts.get('/no-retry/flaky/2'), 1);
  });

  it('injects an abort without reaching the upstream', async () => {
    const r = await call('/aborted', { 'x-fault': 'abort' });
    assert.equal(r.status, 418);
    assert.equal(attempts.get('/aborted'), undefined);
  });

  it('injects a delay, then forwards the request', async () => {
    const started = performance.now();
    const r = await call('/delayed', { 'x-fault': 'delay' });
    const elapsed = performance.now() - started;
    assert.equal(r.status, 200);
    assert.equal(attempts.get('/delayed'), 1);
    // A lower bound only: the request cannot have been answered before the injected delay.
    assert.ok(elapsed >= 290, `answered after ${elapsed.toFixed(0)} ms`);
  });
});
