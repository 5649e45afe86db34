/**
 * Weft's own Grafana dashboards (deploy/grafana/) against a real Prometheus scraping a real control plane
 * (with its CA), a `weft proxy` sidecar connected to it, and a static proxy with the resilience and rate-limit
 * features configured: every panel's query parses and returns data once its template variables are
 * substituted, every variable's label_values() finds values, and every metric a panel names is one Weft
 * exports.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { setLogLevel } from '../../src/core/logger.ts';
import { bootstrapDoc, HTTP2_PROTOCOL_OPTIONS, httpListener, staticCluster } from '../support/bootstrap.ts';
import { request } from '../support/http.ts';
import { meshService, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { startPrometheus } from '../support/prometheus.ts';
import type { RunningPrometheus } from '../support/prometheus.ts';
import { REPO, startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startScriptedRls } from '../support/rls-server.ts';
import type { ScriptedRls } from '../support/rls-server.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

setLogLevel('error');

interface Target {
  readonly expr: string;
  readonly refId: string;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { type: string; uid: string };
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly targets?: readonly Target[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: string | { query: string };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly templating: { list: readonly Variable[] };
  readonly panels: readonly Panel[];
}

const DASHBOARDS = ['weft-control-plane.json', 'weft-proxy-resources.json'];

function load(file: string): Dashboard {
  return JSON.parse(fs.readFileSync(path.join(REPO, 'deploy/grafana', file), 'utf8')) as Dashboard;
}

/** Grafana's substitution, for a query sent to Prometheus directly: every variable means "all". */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replace(/\$(\w+)/g, '.*');
}

/** Metric names a query selects: each is written with a label matcher, `name{...}`. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]);
}

const TYPE_LOCAL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const TYPE_GLOBAL = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

/** A proxy with what the resources dashboard watches configured: limits, ejection, retries, rate limits. */
function resilientProxy(upPort: number, rlsPort: number): Record<string, unknown> {
  return bootstrapDoc(
    [
      httpListener({
        routes: [
          {
            match: { prefix: '/' },
            route: {
              cluster: 'backend',
              retry_policy: { retry_on: '5xx', num_retries: 1 },
              rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'all' } }] }],
            },
          },
        ],
        hcm: {
          http_filters: [
            {
              name: 'envoy.filters.http.local_ratelimit',
              typed_config: {
                '@type': TYPE_LOCAL,
                stat_prefix: 'http_local_rate_limiter',
                filter_enabled: ALL,
                filter_enforced: ALL,
                token_bucket: { max_tokens: 1000, tokens_per_fill: 1000, fill_interval: '1s' },
              },
            },
            {
              name: 'envoy.filters.http.ratelimit',
              typed_config: {
                '@type': TYPE_GLOBAL,
                domain: 'weft',
                rate_limit_service: {
                  grpc_service: { envoy_grpc: { cluster_name: 'rls' } },
                  transport_api_version: 'V3',
                },
              },
            },
            {
              name: 'envoy.filters.http.router',
              typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
            },
          ],
        },
      }),
    ],
    [
      staticCluster('backend', [{ port: upPort }], {
        outlier_detection: { consecutive_5xx: 5 },
        circuit_breakers: { thresholds: [{ max_connections: 100, max_retries: 3 }] },
      }),
      staticCluster('rls', [{ port: rlsPort }], HTTP2_PROTOCOL_OPTIONS),
    ],
  );
}

describe('Weft Grafana dashboards against a real Prometheus', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-grafana-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  let cp: ControlPlane;
  let sidecar: MeshSidecar;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let rls: ScriptedRls;
  let proxy: RunningProxy;
  let prom: RunningPrometheus;
  let exported: Set<string>;

  before(async () => {
    fs.mkdirSync(configDir);
    const port = await closedPort();
    const api = meshService({ name: 'api', host: 'api.default.svc.cluster.local', port, appPort: 1 });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), api);
    cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20, stateDir });
    const ports = await cp.start();
    sidecar = await startSidecar({
      name: 'api',
      serviceAccount: 'api',
      ip: '127.0.0.2',
      labels: 'app=api',
      xdsPort: ports.xdsPort,
      stateDir,
      workDir: dir,
    });
    up = await startHttpUpstream({ name: 'up' });
    rls = await startScriptedRls(() => ({ overall_code: 'OK' }));
    proxy = await startProxy(resilientProxy(up.port, rls.port));
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${sidecar.admin}/ready`).catch(() => null))?.status === 200,
      30_000,
      'the sidecar ready',
    );
    // A configuration change, so the control plane pushes (push latency and convergence are observed).
    const web = meshService({ name: 'web', host: 'web.default.svc.cluster.local', port: 18080, appPort: 1 });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), `${api}\n---\n${web}`);
    for (let i = 0; i < 3; i++) assert.equal((await request(proxy.port(), { path: '/' })).status, 200);
    prom = await startPrometheus({
      targets: [
        { address: `127.0.0.1:${ports.debugPort}`, metricsPath: '/metrics', job: 'weft-control-plane' },
        { address: `127.0.0.1:${sidecar.admin}`, metricsPath: '/stats/prometheus', job: 'weft-proxy' },
        { address: `127.0.0.1:${proxy.adminPort}`, metricsPath: '/stats/prometheus', job: 'weft-proxy' },
      ],
    });
    await prom.waitForScrapes(3);
    const names = await fetch(`http://127.0.0.1:${prom.port}/api/v1/label/__name__/values`);
    exported = new Set(((await names.json()) as { data: string[] }).data);
  });

  after(async () => {
    await prom?.close();
    sidecar?.kill('SIGKILL');
    await sidecar?.exited;
    await proxy?.stop();
    await cp?.stop();
    await up?.close();
    await rls?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const file of DASHBOARDS) {
    describe(file, () => {
      const d = load(file);

      it('is a Grafana dashboard with a Prometheus datasource variable and job/instance variables', () => {
        assert.ok(d.schemaVersion >= 39, `schemaVersion ${d.schemaVersion}`);
        assert.match(d.uid, /^weft-/);
        const vars = new Map(d.templating.list.map((v) => [v.name, v]));
        assert.equal(vars.get('datasource')?.type, 'datasource');
        assert.equal(vars.get('datasource')?.query, 'prometheus');
        for (const name of ['job', 'instance']) assert.equal(vars.get(name)?.type, 'query', name);
        const ids = d.panels.map((p) => p.id);
        assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
        for (const p of d.panels) {
          if (p.type === 'row') continue;
          assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
          assert.ok(p.targets && p.targets.length > 0, p.title);
          assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
          for (const t of p.targets)
            assert.match(
              t.expr,
              /job=~"\$job",instance=~"\$instance"/,
              `${p.title}: selects by job and instance`,
            );
        }
      });

      it('has template variables whose label_values() find values in the scrape', async () => {
        for (const v of d.templating.list) {
          if (v.type !== 'query') continue;
          const q = typeof v.query === 'string' ? v.query : v.query.query;
          const m = /^label_values\((.+), (\w+)\)$/.exec(q);
          assert.ok(m, `${v.name}: ${q}`);
          const values = await prom.query(`count by (${m[2]}) (${substitute(m[1])})`);
          assert.ok(values.length > 0, `${v.name}: no values for ${q}`);
        }
      });

      it('has panel queries that Prometheus accepts and that return data', async () => {
        for (const p of d.panels)
          for (const t of p.targets ?? []) {
            const result = await prom.query(substitute(t.expr));
            assert.ok(result.length > 0, `${p.title} (${t.refId}): no data for ${t.expr}`);
          }
      });

      it('names only metrics Weft exports', () => {
        const used = new Set(d.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))));
        assert.ok(used.size >= 10, `${used.size} metrics`);
        const missing = [...used].filter((n) => !exported.has(n));
        assert.deepEqual(missing, [], 'metrics no scrape had');
      });
    });
  }

  it('tells a PromQL syntax error apart (the check above can fail)', async () => {
    await assert.rejects(prom.query('sum(rate(weft_xds_pushes_total[1m])'), /PromQL error/);
  });
});
