/**
 * The dashboard served by a real `weft control-plane --dashboard-port` (from dist/), with two sidecars and
 * their apps: traffic from one workload to the other must show up in /api/graph as an edge with a non-zero
 * rate, /api/proxies must list both proxies SYNCED, and the page itself must be served.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.ts';
import { startEchoMesh } from '../support/mesh.ts';
import type { EchoMesh } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import type {
  GraphResponse,
  ProxiesResponse,
  ServiceResponse,
  WorkloadResponse,
} from '../../src/dashboard/types.ts';

const CLIENT_IP = '127.0.0.31';
const SERVER_IP = '127.0.0.32';
const HOST = 'echo.default.svc.cluster.local';

async function getJson<T>(port: number, p: string): Promise<T> {
  const r = await request(port, { path: p });
  assert.equal(r.status, 200, `${p}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

describe('the dashboard API over a live mesh', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-'));
  let mesh: EchoMesh | undefined;
  let dashboard = 0;

  before(async () => {
    // One sidecar announces its admin address (as `weft up` does); the other is found by its admin port.
    const clientAdmin = await closedPort();
    mesh = await startEchoMesh({
      dir,
      host: HOST,
      clientIp: CLIENT_IP,
      serverIp: SERVER_IP,
      clientArgs: [
        '--admin-port',
        String(clientAdmin),
        '--metadata',
        `WEFT_ADMIN_ADDRESS=127.0.0.1:${clientAdmin}`,
      ],
    });
    dashboard = mesh.dashboard;
    mesh.startLoad(10);
  });

  after(async () => {
    await mesh?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists both proxies SYNCED with their config versions', async () => {
    await waitFor(
      async () => {
        const p = await getJson<ProxiesResponse>(dashboard, '/api/proxies');
        return p.proxies.length === 2 && p.proxies.every((x) => x.state === 'SYNCED');
      },
      20_000,
      'two SYNCED proxies',
    );
    const { proxies } = await getJson<ProxiesResponse>(dashboard, '/api/proxies');
    assert.deepEqual(proxies.map((p) => p.name).sort(), ['client', 'echo']);
    for (const p of proxies) {
      assert.equal(p.type, 'sidecar');
      assert.ok(p.adminAddress?.startsWith('127.0.0.1:'), JSON.stringify(p));
      assert.deepEqual(
        p.types
          .map((t) => t.type)
          .filter((t) => ['CDS', 'LDS'].includes(t))
          .sort(),
        ['CDS', 'LDS'],
      );
      for (const t of p.types) {
        assert.equal(t.state, 'SYNCED');
        assert.notEqual(t.sentVersion, '');
        assert.equal(t.ackedVersion, t.sentVersion);
      }
    }
  });

  it('shows the call as an edge with a non-zero rate, errors and latency', async () => {
    const caller = 'workload:default/client';
    const service = `service:${HOST}`;
    let graph: GraphResponse | undefined;
    await waitFor(
      async () => {
        graph = await getJson<GraphResponse>(dashboard, '/api/graph');
        const e = graph.edges.find((x) => x.source === caller && x.target === service);
        return e !== undefined && e.rps > 0 && (e.errorPct ?? 0) > 0;
      },
      40_000,
      `an edge ${caller} → ${service} with traffic`,
    );
    const edge = graph!.edges.find((x) => x.source === caller && x.target === service)!;
    assert.equal(edge.protocol, 'http');
    assert.equal(edge.mtls, true);
    // ~20 rps sent, one in ten failing; the window may include the start of the traffic.
    assert.ok(edge.rps > 1 && edge.rps < 40, `rps ${edge.rps}`);
    assert.ok(edge.errorPct! > 2 && edge.errorPct! < 25, `errors ${edge.errorPct}%`);
    assert.ok(edge.p99Ms !== null && edge.p99Ms > 0, `p99 ${edge.p99Ms}`);
    const split = graph!.edges.find((x) => x.source === service && x.target === 'workload:default/echo');
    assert.ok(split && split.rps > 0, JSON.stringify(graph!.edges));
    const ids = graph!.nodes.map((x) => x.id);
    for (const id of [caller, service, 'workload:default/echo']) assert.ok(ids.includes(id), id);

    const w = await getJson<WorkloadResponse>(dashboard, '/api/workloads/default/client');
    assert.equal(w.outbound.timestamps.length, w.outbound.rps.length);
    assert.ok(w.outbound.rps.some((v) => v !== null && v > 0));
    const s = await getJson<ServiceResponse>(dashboard, '/api/services/default/echo');
    assert.equal(s.host, HOST);
    // No outlier detection and no rate limit here: both lists empty (their positive cases:
    // dashboard-ui-resilience.test.ts).
    assert.deepEqual(s.ejected, []);
    assert.deepEqual(s.rateLimited, []);
    assert.deepEqual(w.ejected, []);
    assert.equal((await request(dashboard, { path: '/api/services/default/nothing' })).status, 404);
  });

  it('serves the page and the Istio configuration with its diagnostics', async () => {
    const page = await request(dashboard, { path: '/' });
    assert.equal(page.status, 200);
    assert.match(page.body, /<div id="graph">/);
    const js = await request(dashboard, { path: '/main.js' });
    assert.equal(js.status, 200);
    assert.equal((await request(dashboard, { path: '/../package.json' })).status, 404);
    const config = await getJson<{ resources: { kind: string; name: string }[] }>(dashboard, '/api/config');
    assert.deepEqual(config.resources.map((r) => `${r.kind}/${r.name}`).sort(), [
      'ServiceEntry/echo',
      'Sidecar/echo',
    ]);
  });
});
