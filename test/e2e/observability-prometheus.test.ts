/**
 * Istio's own Grafana dashboards, unchanged, over Weft's metrics: a control plane, three workloads with their
 * sidecars (HTTP with injected 503s, gRPC with non-OK statuses, TCP), steady traffic among them, and a real
 * Prometheus scraping every sidecar. Every PromQL query of Istio's service, workload and mesh dashboards is
 * sent to Prometheus with its template variables resolved as Grafana resolves them; each query that applies to
 * this traffic must return data, and the headline panels must show the generated rates, error ratios and
 * plausible latencies.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import { startPrometheus } from '../support/prometheus.ts';
import type { RunningPrometheus } from '../support/prometheus.ts';
import { loadDashboard, panelQueries, resolveVariables, substitute } from '../support/grafana-dashboards.ts';
import type { Dashboard } from '../support/grafana-dashboards.ts';

const DASHBOARDS = path.resolve(import.meta.dirname, '../../../shared/reference/istio/dashboards');
const FRONTEND_IP = '127.0.0.21';
const REVIEWS_IP = '127.0.0.22';
const RATINGS_IP = '127.0.0.23';
const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const DB = 'db.default.svc.cluster.local';

/** Generated load: requests (or TCP connections) per second, and which share fails. */
const HTTP_RPS = 20;
const HTTP_FAIL_EVERY = 5; // every 5th reviews request gets a 503: success ratio 0.8
const GRPC_RPS = 10;
const GRPC_FAIL_EVERY = 4; // every 4th ratings call ends NOT_FOUND (HTTP 200)
const TCP_BYTES_PER_S = 2000;

interface Ports {
  reviews: number;
  reviewsApp: number;
  grpc: number;
  grpcApp: number;
  db: number;
  dbApp: number;
}

function meshYaml(p: Ports): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [${REVIEWS}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${p.reviews}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
# No retries: Istio's default policy would retry the app's 503s, and the caller would see fewer than the app sends.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [${REVIEWS}]
  http:
  - route: [{destination: {host: ${REVIEWS}}}]
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [${RATINGS}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${p.grpc}, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [${DB}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${p.db}, name: tcp, protocol: TCP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews}
spec:
  workloadSelector: {labels: {app: reviews}}
  ingress:
  - port: {number: ${p.reviews}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${p.reviewsApp}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings}
spec:
  workloadSelector: {labels: {app: ratings}}
  ingress:
  - port: {number: ${p.grpc}, name: grpc, protocol: GRPC}
    defaultEndpoint: 127.0.0.1:${p.grpcApp}
  - port: {number: ${p.db}, name: tcp, protocol: TCP}
    defaultEndpoint: 127.0.0.1:${p.dbApp}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend}
spec:
  workloadSelector: {labels: {app: frontend}}
  egress:
  - port: {number: ${p.db}, name: tcp, protocol: TCP}
    hosts: [./${DB}]
  - hosts: ['./*']
`;
}

const RATINGS_CHECK = {
  path: '/weft.test.Ratings/Check',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer): Buffer => b,
  requestDeserialize: (b: Buffer): Buffer => b,
  responseSerialize: (b: Buffer): Buffer => b,
  responseDeserialize: (b: Buffer): Buffer => b,
} as const;

/** Runs `fn` `perSecond` times a second until stopped; counts what it started. */
function steady(
  perSecond: number,
  fn: (n: number) => Promise<unknown>,
): { stop(): Promise<void>; sent(): number } {
  let n = 0;
  const inflight = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    const p = fn(n++).catch(() => undefined);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }, 1000 / perSecond);
  return {
    sent: () => n,
    async stop() {
      clearInterval(timer);
      await Promise.all(inflight);
    },
  };
}

describe("Istio's dashboards over Weft's metrics, with a real Prometheus", { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-observability-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  let cp: ControlPlane;
  const sidecars: MeshSidecar[] = [];
  let reviewsApp: http.Server;
  let grpcApp: grpc.Server;
  let dbApp: net.Server;
  let grpcClient: grpc.Client;
  let prom: RunningPrometheus;
  let ports: Ports;
  const load: { stop(): Promise<void>; sent(): number }[] = [];

  before(async () => {
    fs.mkdirSync(configDir);
    let seen = 0;
    reviewsApp = http.createServer((req, res) => {
      const n = ++seen;
      req.resume();
      setTimeout(() => {
        res.writeHead(n % HTTP_FAIL_EVERY === 0 ? 503 : 200, { 'content-type': 'text/plain' });
        res.end('reviews '.repeat(20));
      }, 10);
    });
    await new Promise<void>((r) => reviewsApp.listen(0, '127.0.0.1', r));
    let calls = 0;
    grpcApp = new grpc.Server();
    grpcApp.addService(
      { Check: RATINGS_CHECK },
      {
        Check: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
          const n = ++calls;
          if (n % GRPC_FAIL_EVERY === 0) cb({ code: grpc.status.NOT_FOUND, details: 'no rating' });
          else cb(null, Buffer.from('5 stars'));
        },
      },
    );
    const grpcAppPort = await new Promise<number>((resolve, reject) =>
      grpcApp.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    dbApp = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => dbApp.listen(0, '127.0.0.1', r));
    ports = {
      reviews: await closedPort(),
      reviewsApp: (reviewsApp.address() as net.AddressInfo).port,
      grpc: await closedPort(),
      grpcApp: grpcAppPort,
      db: await closedPort(),
      dbApp: (dbApp.address() as net.AddressInfo).port,
    };
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), meshYaml(ports));
    cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20, stateDir });
    const xdsPort = (await cp.start()).xdsPort;
    for (const [name, ip] of [
      ['frontend', FRONTEND_IP],
      ['reviews', REVIEWS_IP],
      ['ratings', RATINGS_IP],
    ] as const)
      sidecars.push(
        await startSidecar({
          name,
          serviceAccount: name,
          ip,
          labels: `app=${name},version=v1`,
          xdsPort,
          stateDir,
          workDir: dir,
        }),
      );
    const frontend = sidecars[0];
    const viaFrontend = (): Promise<number> =>
      request(frontend.outbound, {
        host: FRONTEND_IP,
        path: '/reviews/1',
        headers: { host: `${REVIEWS}:${ports.reviews}` },
      }).then((r) => r.status);
    await waitFor(
      async () => (await viaFrontend().catch(() => 0)) !== 0 && (await viaFrontend()) !== 404,
      30_000,
    );
    grpcClient = new grpc.Client(`${FRONTEND_IP}:${frontend.outbound}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': `${RATINGS}:${ports.grpc}`,
    });
    const check = (): Promise<number> =>
      new Promise((resolve) =>
        grpcClient.makeUnaryRequest(
          RATINGS_CHECK.path,
          RATINGS_CHECK.requestSerialize,
          RATINGS_CHECK.responseDeserialize,
          Buffer.from('product 1'),
          { deadline: Date.now() + 5000 },
          (err) => resolve(err ? (err.code ?? -1) : 0),
        ),
      );
    await waitFor(
      async () => [0, grpc.status.NOT_FOUND].includes(await check()),
      30_000,
      'gRPC via the mesh',
    );
    const tcpOnce = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const s = net.connect(ports.db, FRONTEND_IP);
        let got = 0;
        s.on('connect', () => s.write(Buffer.alloc(TCP_BYTES_PER_S, 'x')));
        s.on('data', (b: Buffer) => {
          got += b.length;
          if (got >= TCP_BYTES_PER_S) s.end();
        });
        s.on('close', () => resolve());
        s.on('error', reject);
      });
    await waitFor(
      async () =>
        await tcpOnce()
          .then(() => true)
          .catch(() => false),
      30_000,
      'TCP via the mesh',
    );

    prom = await startPrometheus({
      scrapeIntervalS: 1,
      targets: sidecars.map((s) => ({
        address: `127.0.0.1:${s.admin}`,
        metricsPath: '/stats/prometheus',
        job: 'weft-sidecars',
        labels: { pod: s.name, namespace: 'default' },
      })),
    });
    load.push(steady(HTTP_RPS, viaFrontend), steady(GRPC_RPS, check), steady(1, tcpOnce));
    // Rates need a few scrapes of steady traffic behind them.
    await new Promise((r) => setTimeout(r, 8000));
    await prom.waitForScrapes(8);
  });

  after(async () => {
    await Promise.all(load.map((l) => l.stop()));
    grpcClient?.close();
    await prom?.close();
    for (const s of sidecars) s.kill();
    await Promise.all(sidecars.map((s) => s.exited));
    await cp?.stop();
    reviewsApp?.close();
    grpcApp?.forceShutdown();
    dbApp?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const builtins = { __rate_interval: '5s', __interval: '1s', __range: '1m' };

  /**
   * Runs every panel query of a dashboard; returns the results by panel title, and fails for a query that
   * applies to the traffic but returns nothing (`applies` decides, with the variables resolved).
   */
  async function runDashboard(
    d: Dashboard,
    chosen: Record<string, string[]>,
    applies: (expr: string) => boolean,
  ): Promise<Map<string, { expr: string; values: number[] }[]>> {
    const { vars } = await resolveVariables(d, (e) => prom.query(e), chosen, builtins);
    const out = new Map<string, { expr: string; values: number[] }[]>();
    const empty: string[] = [];
    for (const q of panelQueries(d)) {
      const expr = substitute(q.raw, vars);
      const samples = await prom.query(expr);
      const values = samples.map((s) => s.value).filter((v) => Number.isFinite(v));
      out.set(q.panel, [...(out.get(q.panel) ?? []), { expr, values }]);
      if (applies(expr) && values.length === 0) empty.push(`${q.panel} [${q.refId}]: ${expr}`);
    }
    assert.deepEqual(empty, [], `${d.title}: queries that apply to this traffic returned no data`);
    return out;
  }

  /**
   * Whether a query can have data here. All traffic between sidecars is mutual TLS: the destination reporter
   * labels it mutual_tls, the source reporter `unknown` (as Istio does); each service speaks one protocol.
   */
  const appliesTo =
    (kind: 'http' | 'tcp' | 'any') =>
    (expr: string): boolean => {
      const tcp = /istio_tcp_/.test(expr);
      const http = /istio_request|istio_response/.test(expr);
      if (kind === 'http' && tcp && !http) return false;
      if (kind === 'tcp' && http && !tcp) return false;
      const eq = /reporter="(\w+)"/.exec(expr);
      const re = /reporter=~"([^"]*)"/.exec(expr);
      const reporters = new Set(
        eq ? [eq[1]] : re ? re[1].replace(/[()]/g, '').split('|') : ['source', 'destination'],
      );
      if (/connection_security_policy="mutual_tls"/.test(expr) && !reporters.has('destination')) return false;
      if (/connection_security_policy!="mutual_tls"/.test(expr) && !reporters.has('source')) return false;
      // Every peer here has a SPIFFE identity.
      if (/_principal!~"spiffe/.test(expr)) return false;
      return true;
    };

  /** The first value of a panel's `i`-th query, which must have data. */
  const panelValue = (
    results: Map<string, { expr: string; values: number[] }[]>,
    panel: string,
    i = 0,
  ): number => {
    const q = results.get(panel)?.[i];
    assert.ok(q !== undefined, `no panel ${panel}`);
    assert.ok(q.values.length > 0, `${panel}: no data for ${q.expr}`);
    return q.values[0];
  };

  const near = (actual: number, expected: number, tolerance: number, what: string): void =>
    assert.ok(
      Math.abs(actual - expected) <= expected * tolerance,
      `${what}: ${actual} is not within ${tolerance * 100}% of ${expected}`,
    );

  it('the service dashboard shows each service: rates, success ratio, latency, TCP bytes', async () => {
    const d = loadDashboard(path.join(DASHBOARDS, 'istio-service-dashboard.json'));
    const reviews = await runDashboard(d, { service: [REVIEWS] }, appliesTo('http'));
    near(panelValue(reviews, 'Client Request Volume'), HTTP_RPS, 0.3, 'reviews rps');
    near(panelValue(reviews, 'Server Request Volume'), HTTP_RPS, 0.3, 'reviews rps, server side');
    const success = panelValue(reviews, 'Client Success Rate (non-5xx responses)');
    near(success, 1 - 1 / HTTP_FAIL_EVERY, 0.12, 'reviews success ratio');
    const [p50, p90, p99] = [0, 1, 2].map((i) => panelValue(reviews, 'Client Request Duration', i));
    assert.ok(p50 >= 0.005 && p50 < 0.5, `p50 ${p50}s: the app takes 10 ms`);
    assert.ok(p50 <= p90 && p90 <= p99, `quantiles ordered: ${p50} ${p90} ${p99}`);

    const ratings = await runDashboard(d, { service: [RATINGS] }, appliesTo('http'));
    near(panelValue(ratings, 'Client Request Volume'), GRPC_RPS, 0.3, 'ratings rps');
    // gRPC errors travel in trailers with HTTP 200: non-5xx, so the dashboard's success rate stays 1.
    assert.equal(panelValue(ratings, 'Client Success Rate (non-5xx responses)'), 1);

    const db = await runDashboard(d, { service: [DB] }, appliesTo('tcp'));
    near(panelValue(db, 'TCP Received Bytes'), TCP_BYTES_PER_S, 0.5, 'db bytes received per second');
    // Over mTLS TCP the caller learns the server's workload in-band (istio-peer-exchange).
    const tcpPeers = await prom.query(
      `sum by (destination_workload, destination_canonical_service) (istio_tcp_connections_opened_total{reporter="source",destination_service="${DB}"})`,
    );
    assert.deepEqual(
      tcpPeers.map((s) => s.metric),
      [{ destination_workload: 'ratings', destination_canonical_service: 'ratings' }],
    );
  });

  it('gRPC statuses and both reporters are labelled as Istio labels them', async () => {
    const byStatus = await prom.query(
      `sum by (grpc_response_status) (rate(istio_requests_total{reporter="destination",destination_service="${RATINGS}"}[10s]))`,
    );
    const rate = (s: string): number => byStatus.find((x) => x.metric.grpc_response_status === s)?.value ?? 0;
    near(rate('5'), GRPC_RPS / GRPC_FAIL_EVERY, 0.35, 'NOT_FOUND calls per second');
    near(rate('0'), GRPC_RPS * (1 - 1 / GRPC_FAIL_EVERY), 0.3, 'OK calls per second');
    for (const reporter of ['source', 'destination']) {
      const series = await prom.query(
        `sum by (source_workload, destination_workload, request_protocol, connection_security_policy) (istio_requests_total{reporter="${reporter}",destination_service="${RATINGS}"})`,
      );
      assert.equal(series.length, 1, JSON.stringify(series));
      assert.deepEqual(series[0].metric, {
        source_workload: 'frontend',
        destination_workload: 'ratings',
        request_protocol: 'grpc',
        connection_security_policy: reporter === 'destination' ? 'mutual_tls' : 'unknown',
      });
    }
  });

  it('the workload dashboard shows inbound and outbound traffic per workload', async () => {
    const d = loadDashboard(path.join(DASHBOARDS, 'istio-workload-dashboard.json'));
    // reviews calls no one: its outbound panels (source_workload=~"reviews") stay empty, as in Istio.
    const reviews = await runDashboard(
      d,
      { namespace: ['default'], workload: ['reviews'] },
      (e) => !/source_workload=~"reviews"/.test(e) && appliesTo('http')(e),
    );
    near(panelValue(reviews, 'Incoming Request Volume'), HTTP_RPS, 0.3, 'reviews incoming rps');
    near(
      panelValue(reviews, 'Incoming Success Rate (non-5xx responses)'),
      1 - 1 / HTTP_FAIL_EVERY,
      0.12,
      'reviews incoming success ratio',
    );
    // frontend only calls out (HTTP, gRPC and TCP); nothing comes in.
    const frontend = await runDashboard(
      d,
      { namespace: ['default'], workload: ['frontend'] },
      (e) => /source_workload=~"frontend"/.test(e) && appliesTo('any')(e),
    );
    const outgoing = frontend.get('Outgoing Requests By Destination And Response Code')![0];
    near(
      outgoing.values.reduce((a, b) => a + b, 0),
      HTTP_RPS + GRPC_RPS,
      0.3,
      'outgoing requests per second, all destinations and codes',
    );
  });

  it('the mesh dashboard shows the whole mesh from the source reporter', async () => {
    const d = loadDashboard(path.join(DASHBOARDS, 'istio-mesh-dashboard.gen.json'));
    const mesh = await runDashboard(d, {}, () => true);
    near(panelValue(mesh, 'Traffic Volume'), HTTP_RPS + GRPC_RPS, 0.3, 'mesh rps');
    const expectedSuccess = (HTTP_RPS * (1 - 1 / HTTP_FAIL_EVERY) + GRPC_RPS) / (HTTP_RPS + GRPC_RPS);
    near(panelValue(mesh, 'Success Rate'), expectedSuccess, 0.1, 'mesh success ratio');
    near(panelValue(mesh, '5xxs'), HTTP_RPS / HTTP_FAIL_EVERY, 0.4, 'mesh 5xx per second');
    assert.equal(panelValue(mesh, '4xxs'), 0);
  });
});
