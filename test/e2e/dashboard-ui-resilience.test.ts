/**
 * The service pages' resilience tables over real proxies: a `weft control-plane --dashboard-port` from dist/
 * with five sidecars.
 *
 * - Ejected endpoints: `frontend` calls `catalog`, served by `catalog-good` and `catalog-flaky` (whose app
 *   always answers 503), under a DestinationRule with outlier detection (consecutive5xxErrors 1, interval
 *   1s, baseEjectionTime 30s). The frontend's proxy ejects the flaky endpoint; /api/services/default/catalog
 *   must list it, with its workload and the frontend as the client that ejects it, and the good one not.
 * - Rate-limited clients: `frontend` (20 requests a second) and `polite` (one every 2 s) call `limited`, whose
 *   sidecar limits each client, told apart by a header, to bursts of 2 then 1 a second (a RateLimitPolicy):
 *   /api/services/default/limited must list the frontend with its 429s, and not the polite client.
 * - Then the catalog and limited pages in Chromium show those rows (and the empty states where there is
 *   nothing), and the graph's edge labels say "mTLS" in text. Screenshots:
 *   test-artifacts/dashboard-ui/{resilience-catalog,resilience-limited,resilience-graph}.png.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { request } from '../support/http.ts';
import { callThrough, startDashboardControlPlane, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { REPO, waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import type { GraphResponse, ServiceResponse, WorkloadResponse } from '../../src/dashboard/types.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'dashboard-ui');
const IP = {
  frontend: '127.0.0.51',
  good: '127.0.0.52',
  flaky: '127.0.0.53',
  limited: '127.0.0.54',
  polite: '127.0.0.55',
};
const CATALOG = 'catalog.default.svc.cluster.local';
const LIMITED = 'limited.default.svc.cluster.local';

async function getJson<T>(port: number, p: string): Promise<T> {
  const r = await request(port, { path: p });
  assert.equal(r.status, 200, `${p}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

async function app(status: number): Promise<http.Server> {
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(String(status));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

const portOf = (s: http.Server): number => (s.address() as net.AddressInfo).port;

function meshYaml(o: {
  catalogPort: number;
  limitedPort: number;
  good: number;
  flaky: number;
  ok: number;
}): string {
  const entry = (name: string, host: string, port: number): string => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ${name}}}
`;
  const sidecar = (name: string, labels: string, port: number, appPort: number): string => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}}
spec:
  workloadSelector: {labels: {${labels}}}
  ingress:
  - port: {number: ${port}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${appPort}
`;
  return [
    entry('catalog', CATALOG, o.catalogPort),
    sidecar('catalog-good', 'app: catalog, version: good', o.catalogPort, o.good),
    sidecar('catalog-flaky', 'app: catalog, version: flaky', o.catalogPort, o.flaky),
    `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: catalog}
spec:
  host: ${CATALOG}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}
`,
    entry('limited', LIMITED, o.limitedPort),
    sidecar('limited', 'app: limited', o.limitedPort, o.ok),
    `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limited-per-client}
spec:
  selector: {matchLabels: {app: limited}}
  local:
    perClient: {key: {header: x-client}, maxTokens: 2, tokensPerFill: 1, fillInterval: 1s}
`,
  ].join('---\n');
}

describe('the dashboard: ejected endpoints and rate-limited clients', { timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-res-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  const sidecars: Record<string, MeshSidecar> = {};
  const apps: http.Server[] = [];
  const timers: NodeJS.Timeout[] = [];
  let cp: ChildProcess;
  let dashboard: number;
  let catalogPort: number;
  let limitedPort: number;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const statuses = { frontend: new Map<number, number>(), polite: new Map<number, number>() };

  const shot = (name: string): Promise<unknown> =>
    page?.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }).catch(() => undefined) ??
    Promise.resolve();

  const call = (from: MeshSidecar, host: string, port: number, client?: string): Promise<number> =>
    callThrough(from, host, port, '/', client ? { 'x-client': client } : {});

  before(async () => {
    fs.mkdirSync(configDir);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const [good, flaky, ok] = [await app(200), await app(503), await app(200)];
    apps.push(good, flaky, ok);
    catalogPort = await closedPort();
    limitedPort = await closedPort();
    fs.writeFileSync(
      path.join(configDir, 'mesh.yaml'),
      meshYaml({ catalogPort, limitedPort, good: portOf(good), flaky: portOf(flaky), ok: portOf(ok) }),
    );
    const xdsPort = await closedPort();
    dashboard = await closedPort();
    cp = await startDashboardControlPlane({ configDir, stateDir, xdsPort, dashboardPort: dashboard });
    const common = { xdsPort, stateDir, workDir: dir };
    const start = async (name: string, ip: string, labels: string): Promise<void> => {
      sidecars[name] = await startSidecar({ name, serviceAccount: name, ip, labels, ...common });
    };
    await Promise.all([
      start('frontend', IP.frontend, 'app=frontend,version=v1'),
      start('catalog-good', IP.good, 'app=catalog,version=good'),
      start('catalog-flaky', IP.flaky, 'app=catalog,version=flaky'),
      start('limited', IP.limited, 'app=limited,version=v1'),
      start('polite', IP.polite, 'app=polite,version=v1'),
    ]);
    const { frontend, polite } = sidecars;
    await waitFor(
      async () => (await call(frontend, CATALOG, catalogPort)) === 200,
      60_000,
      'a request to the catalog',
    );
    await waitFor(
      async () => (await call(polite, LIMITED, limitedPort, 'polite')) === 200,
      60_000,
      'a request to the limited service',
    );
    const count = (m: Map<number, number>, s: number): void => void m.set(s, (m.get(s) ?? 0) + 1);
    timers.push(
      setInterval(() => void call(frontend, CATALOG, catalogPort), 100),
      setInterval(
        () => void call(frontend, LIMITED, limitedPort, 'frontend').then((s) => count(statuses.frontend, s)),
        50,
      ),
      setInterval(
        () => void call(polite, LIMITED, limitedPort, 'polite').then((s) => count(statuses.polite, s)),
        2000,
      ),
    );
  });

  after(async () => {
    for (const t of timers) clearInterval(t);
    await browser?.close();
    const all = Object.values(sidecars);
    for (const s of all) s.kill();
    await Promise.all(all.map((s) => s.exited));
    if (cp && cp.exitCode === null) {
      const exited = new Promise((r) => cp.once('exit', r));
      cp.kill('SIGTERM');
      await exited;
    }
    for (const a of apps) a.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the flaky catalog endpoint as ejected by the frontend', async () => {
    const flakyEndpoint = `${IP.flaky}:${catalogPort}`;
    const s = await waitFor(
      async () => {
        const r = await request(dashboard, { path: '/api/services/default/catalog' });
        if (r.status !== 200) return undefined;
        const body = JSON.parse(r.body) as ServiceResponse;
        return body.ejected.some((e) => e.endpoint === flakyEndpoint) ? body : undefined;
      },
      40_000,
      'the flaky catalog endpoint ejected',
    );
    assert.ok(s);
    // With consecutive5xxErrors: 1 a single transient 5xx of the good replica under a loaded CI machine
    // ejects it too for a while (seen once): only the flaky one must be there, and exactly so.
    const flakyEntry = s.ejected.find((e) => e.endpoint === flakyEndpoint)!;
    assert.deepEqual(
      { ...flakyEntry, since: typeof flakyEntry.since },
      {
        service: CATALOG,
        endpoint: flakyEndpoint,
        workload: 'workload:default/catalog-flaky',
        ejectedBy: ['frontend.default'],
        since: 'number',
      },
    );
    assert.ok(flakyEntry.since <= Date.now() && flakyEntry.since > Date.now() - 120_000);
    // The proxy's own view agrees: its /clusters flags that host.
    const clusters = (await request(sidecars.frontend.admin, { path: '/clusters' })).body;
    assert.match(
      clusters,
      new RegExp(`::${flakyEndpoint.replaceAll('.', '\\.')}::health_flags::/failed_outlier_check`),
    );
    // The flaky workload's page lists it too; the good one's does not.
    const flaky = await getJson<WorkloadResponse>(dashboard, '/api/workloads/default/catalog-flaky');
    assert.deepEqual(
      flaky.ejected.map((e) => e.endpoint),
      [flakyEndpoint],
    );
    const good = await getJson<WorkloadResponse>(dashboard, '/api/workloads/default/catalog-good');
    assert.ok(!good.ejected.some((e) => e.endpoint === flakyEndpoint), JSON.stringify(good.ejected));
    // Nobody ejects anything of the limited service.
    const limited = await waitFor(
      async () => {
        const r = await request(dashboard, { path: '/api/services/default/limited' });
        return r.status === 200 ? (JSON.parse(r.body) as ServiceResponse) : undefined;
      },
      30_000,
      'the limited service',
    );
    assert.deepEqual(limited?.ejected, []);
  });

  it('lists the frontend as rate limited on the limited service, and not the polite client', async () => {
    const s = await waitFor(
      async () => {
        const body = await getJson<ServiceResponse>(dashboard, '/api/services/default/limited');
        const polite = body.edges.find((e) => e.source === 'workload:default/polite');
        // Both callers known, and the frontend limited in the window.
        return body.rateLimited.some((x) => x.rps > 0) && polite !== undefined ? body : undefined;
      },
      40_000,
      'a rate-limited caller of the limited service',
    );
    assert.ok(s);
    assert.deepEqual(
      s.rateLimited.map((x) => x.source),
      ['workload:default/frontend'],
    );
    const f = s.rateLimited[0];
    // 20 requests a second against 1 a second: most are refused.
    assert.ok(f.rps > 5 && f.rps < 25, `429/s ${f.rps}`);
    assert.ok(f.total >= f.rps, `total ${f.total}`);
    // What the clients themselves saw.
    assert.ok((statuses.frontend.get(429) ?? 0) > 0, JSON.stringify([...statuses.frontend]));
    assert.equal(statuses.polite.get(429) ?? 0, 0, JSON.stringify([...statuses.polite]));
    assert.ok((statuses.polite.get(200) ?? 0) > 0);
    // The catalog limits nobody.
    const catalog = await getJson<ServiceResponse>(dashboard, '/api/services/default/catalog');
    assert.deepEqual(catalog.rateLimited, []);
  });

  it('names both workloads on the 429s the limited sidecar answers itself, in both reporters', async () => {
    // Metadata exchange runs before the rate limit filter, and a local reply passes back through it: the
    // limited sidecar knows its caller, and the caller learns who answered.
    const limited429 = (text: string, reporter: string): string[] =>
      text
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('istio_requests_total{') &&
            l.includes(`reporter="${reporter}"`) &&
            l.includes('response_code="429"'),
        );
    const server = limited429(
      (await request(sidecars.limited.admin, { path: '/stats/prometheus' })).body,
      'destination',
    );
    assert.ok(server.length > 0, 'the limited sidecar reported 429s');
    for (const l of server) {
      assert.match(l, /source_workload="frontend"/, l);
      assert.match(l, /destination_workload="limited"/, l);
      assert.match(l, /response_flags="RL"/, l);
    }
    const client = limited429(
      (await request(sidecars.frontend.admin, { path: '/stats/prometheus' })).body,
      'source',
    );
    assert.ok(client.length > 0, 'the frontend sidecar reported 429s');
    for (const l of client) assert.match(l, /destination_workload="limited"/, l);
  });

  it('shows both tables in Chromium, and the mTLS mark as text', async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    page.setDefaultTimeout(30_000);

    await page.goto(`http://127.0.0.1:${dashboard}/#/service/default/catalog`);
    try {
      const row = page.locator(`#ejected-body tr[data-ejected="${IP.flaky}:${catalogPort}"]`);
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      assert.equal(cells[0], `${IP.flaky}:${catalogPort}`);
      assert.equal(cells[1], 'default/catalog-flaky');
      assert.equal(cells[2], 'frontend.default');
      assert.match(cells[3], /^\d+ (s|min \d+ s) \(since /);
      // The workload cell links to the workload's page.
      assert.equal(await row.locator('td a').getAttribute('href'), '#/workload/default/catalog-flaky');
      assert.equal(await page.locator('#ejected-body tr').count(), 1);
      assert.equal(await page.locator('#ejected-empty').textContent(), '');
      assert.equal(await page.locator('#limited-body tr').count(), 0);
      assert.equal(await page.locator('#limited-empty').textContent(), 'no client rate-limited');
    } finally {
      await shot('resilience-catalog');
    }

    await page.goto(`http://127.0.0.1:${dashboard}/#/service/default/limited`);
    try {
      const row = page.locator('#limited-body tr[data-limited="workload:default/frontend"]');
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      assert.equal(cells[0], 'default/frontend');
      assert.ok(Number(cells[1]) > 0, cells[1]);
      assert.ok(Number(cells[2]) > 0, cells[2]);
      assert.equal(await page.locator('#limited-body tr').count(), 1);
      assert.equal(await page.locator('#ejected-empty').textContent(), 'no endpoint ejected');
    } finally {
      await shot('resilience-limited');
    }

    await page.goto(`http://127.0.0.1:${dashboard}/#/`);
    try {
      const graph = await getJson<GraphResponse>(dashboard, '/api/graph');
      const edge = graph.edges.find(
        (e) => e.source === 'workload:default/polite' && e.target === `service:${LIMITED}`,
      );
      assert.equal(edge?.mtls, true, JSON.stringify(edge));
      const label = await page.waitForFunction(
        (id) => {
          const cy = (
            globalThis as unknown as {
              weftDashboard: {
                cy?: { getElementById(i: string): { length: number; style(k: string): string } };
              };
            }
          ).weftDashboard.cy;
          const e = cy?.getElementById(id);
          return e && e.length > 0 ? e.style('label') : false;
        },
        edge.id,
        { polling: 500 },
      );
      const text = (await label.jsonValue()) as string;
      assert.match(text, /^mTLS · [\d.]+ rps · /);
      // Nothing outside what a font without emoji draws: ASCII plus the middle dot and the en dash.
      assert.doesNotMatch(text, /[^\x20-\x7e\u00b7\u2013]/u);
    } finally {
      await shot('resilience-graph');
    }
  });
});
