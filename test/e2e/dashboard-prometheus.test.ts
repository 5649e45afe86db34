/**
 * The dashboard reading its golden signals from a real Prometheus (`weft control-plane
 * --dashboard-prometheus-url`): Debian's `prometheus` scrapes two sidecars' /stats/prometheus every second
 * while a client calls echo (~20 requests a second, one in ten failing). The graph, service and workload
 * answers must come from Prometheus (`source.kind` prometheus, no error) with a non-zero edge rate; once
 * Prometheus is stopped, the same answers must say why and carry the built-in collector's numbers instead
 * (status 200, never 500), and its rate must be close to what Prometheus said.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.ts';
import { startEchoMesh } from '../support/mesh.ts';
import type { EchoMesh } from '../support/mesh.ts';
import { startPrometheus } from '../support/prometheus.ts';
import type { RunningPrometheus } from '../support/prometheus.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import type {
  GraphEdge,
  GraphResponse,
  ServiceResponse,
  WorkloadResponse,
} from '../../src/dashboard/types.ts';

const CLIENT_IP = '127.0.0.61';
const SERVER_IP = '127.0.0.62';
const HOST = 'echo.default.svc.cluster.local';
const CALLER = 'workload:default/client';
const SERVICE = `service:${HOST}`;

async function getJson<T>(port: number, p: string): Promise<T> {
  const r = await request(port, { path: p });
  assert.equal(r.status, 200, `${p}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

const callEdge = (g: GraphResponse): GraphEdge | undefined =>
  g.edges.find((e) => e.kind === 'call' && e.source === CALLER && e.target === SERVICE);

describe('the dashboard over a Prometheus', { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-prom-'));
  let mesh: EchoMesh | undefined;
  let prom: RunningPrometheus | undefined;
  let promPort: number;
  let dashboard = 0;
  /** The call edge's rate as Prometheus gave it. */
  let promRps = 0;
  let loadStarted = 0;

  before(async () => {
    // Prometheus's port is chosen now: the control plane is told it before Prometheus runs.
    promPort = await closedPort();
    mesh = await startEchoMesh({
      dir,
      host: HOST,
      clientIp: CLIENT_IP,
      serverIp: SERVER_IP,
      controlPlaneArgs: ['--dashboard-prometheus-url', `http://127.0.0.1:${promPort}`],
    });
    dashboard = mesh.dashboard;
    loadStarted = Date.now();
    mesh.startLoad(10);
    prom = await startPrometheus({
      port: promPort,
      scrapeIntervalS: 1,
      targets: mesh.sidecars.map((s) => ({
        address: `127.0.0.1:${s.admin}`,
        metricsPath: '/stats/prometheus',
        job: 'weft',
      })),
    });
    await prom.waitForScrapes(3);
  });

  after(async () => {
    await prom?.close();
    await mesh?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('takes the graph, the service and the workload from Prometheus', async (t) => {
    const g = await waitFor(
      async () => {
        const x = await getJson<GraphResponse>(dashboard, '/api/graph');
        const e = callEdge(x);
        // A full rate window of traffic (60 s) is not needed: a non-zero rate with errors and latency is.
        return e && e.rps > 0 && (e.errorPct ?? 0) > 0 && e.p99Ms !== null ? x : undefined;
      },
      60_000,
      `an edge ${CALLER} → ${SERVICE} from Prometheus`,
    );
    assert.ok(g);
    assert.deepEqual(g.source, { kind: 'prometheus', url: `http://127.0.0.1:${promPort}` });
    const e = callEdge(g)!;
    assert.equal(e.id, `call|${CALLER}>${SERVICE}|http`);
    assert.equal(e.protocol, 'http');
    assert.equal(e.mtls, true);
    assert.ok(e.errorPct! > 2 && e.errorPct! < 25, `errors ${e.errorPct}%`);
    const split = g.edges.find(
      (x) => x.kind === 'split' && x.source === SERVICE && x.target === 'workload:default/echo',
    );
    assert.ok(split && split.rps > 0, JSON.stringify(g.edges));
    // The control plane's knowledge stays in: both proxied workloads are nodes.
    assert.ok(g.nodes.find((n) => n.id === CALLER)?.proxied);

    // Once the load has filled Prometheus's rate window (60 s, plus a few scrapes), its rate is the load's.
    await new Promise((r) => setTimeout(r, Math.max(0, loadStarted + 65_000 - Date.now())));
    const asked = performance.now();
    promRps = callEdge(await getJson<GraphResponse>(dashboard, '/api/graph'))?.rps ?? 0;
    t.diagnostic(`/api/graph from Prometheus answered in ${(performance.now() - asked).toFixed(1)} ms`);
    assert.ok(promRps > 10, `rps ${promRps}`);
    assert.ok(promRps < 30, `rps ${promRps}`);
    // The series: a rate window's worth of scrapes before the latest step holds a value.
    const s = await waitFor(
      async () => {
        const x = await getJson<ServiceResponse>(dashboard, '/api/services/default/echo');
        return x.inbound.rps.some((v) => v !== null && v > 0) ? x : undefined;
      },
      30_000,
      'a non-zero inbound rate in the service series',
    );
    assert.ok(s);
    assert.equal(s.source?.kind, 'prometheus');
    assert.equal(s.source?.error, undefined);
    assert.equal(s.host, HOST);
    assert.equal(s.inbound.timestamps.length, s.inbound.rps.length);
    assert.ok(s.inbound.p99Ms.some((v) => v !== null && v > 0));
    // Ejections and rate limits stay the control plane's (none here).
    assert.deepEqual(s.ejected, []);
    assert.deepEqual(s.rateLimited, []);
    const w = await getJson<WorkloadResponse>(dashboard, '/api/workloads/default/client');
    assert.equal(w.source?.kind, 'prometheus');
    assert.ok(w.outbound.rps.some((v) => v !== null && v > 0));
    assert.ok(
      w.inbound.rps.every((v) => v === null || v === 0),
      'the client takes no calls',
    );
    assert.equal((await request(dashboard, { path: '/api/services/default/nothing' })).status, 404);
  });

  it('says when Prometheus is unreachable and answers from the collector', async (t) => {
    await prom!.close();
    prom = undefined;
    const g = await waitFor(
      async () => {
        const x = await getJson<GraphResponse>(dashboard, '/api/graph');
        return x.source?.error !== undefined ? x : undefined;
      },
      10_000,
      'the graph to report the unreachable Prometheus',
    );
    assert.ok(g);
    assert.equal(g.source?.kind, 'prometheus');
    assert.match(g.source?.error ?? '', /fetch failed|ECONNREFUSED/);
    const e = callEdge(g);
    assert.ok(e && e.rps > 0, JSON.stringify(g.edges));
    t.diagnostic(`call edge: collector ${e.rps.toFixed(2)} rps, Prometheus ${promRps.toFixed(2)} rps`);
    // The two sources agree on the steady load within a third.
    assert.ok(
      Math.abs(e.rps - promRps) / promRps < 0.34,
      `collector ${e.rps} rps, Prometheus ${promRps} rps`,
    );
    const s = await getJson<ServiceResponse>(dashboard, '/api/services/default/echo');
    assert.match(s.source?.error ?? '', /fetch failed|ECONNREFUSED/);
    assert.ok(s.inbound.rps.some((v) => v !== null && v > 0));
    const w = await getJson<WorkloadResponse>(dashboard, '/api/workloads/default/client');
    assert.ok(w.source?.error);
    assert.ok(w.outbound.rps.some((v) => v !== null && v > 0));
  });
});
