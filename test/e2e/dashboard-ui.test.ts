/**
 * The dashboard page in a real Chromium (Debian's `chromium`, installed by scripts/install-test-deps.sh,
 * driven by playwright-core): a `weft control-plane --dashboard-port` from dist/ with three sidecars — a
 * client calling echo (one request in ten fails) and a third, "broken", whose Sidecar ingress port is already
 * taken on its address, so its proxy refuses the listeners (a NACK); and a VirtualService that `analyze`
 * warns about. In the browser: the graph's edge from the client to echo is labelled with a non-zero rate;
 * clicking the echo service node opens its page, whose uPlot charts hold data and have drawn it; the proxies view shows the broken proxy's NACK with its error;
 * the configuration view shows the warning in the VirtualService's row.
 *
 * Screenshots: test-artifacts/dashboard-ui/{graph,service,workload,proxies,config}.png at the repository
 * root (git-ignored), written on every run, also when an assertion fails after the page loaded.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { request } from '../support/http.ts';
import { meshService, startEchoMesh, startSidecar } from '../support/mesh.ts';
import type { EchoMesh } from '../support/mesh.ts';
import { REPO, waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import type { ProxiesResponse } from '../../src/dashboard/types.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'dashboard-ui');
const CLIENT_IP = '127.0.0.41';
const SERVER_IP = '127.0.0.42';
const BROKEN_IP = '127.0.0.43';
const HOST = 'echo.default.svc.cluster.local';
/** The rate chart's series colour (src/dashboard/web/charts.ts COLORS.rps), as RGB. */
const RPS_RGB = [0x25, 0x63, 0xeb];

/** What the page exposes for its tests (src/dashboard/web/main.ts), as read inside the browser. */
interface PageGlobals {
  weftDashboard: {
    cy?: {
      edges(): { data(k: string): string; style(k: string): string }[];
      getElementById(id: string): {
        length: number;
        renderedPosition(): { x: number; y: number };
      };
      container(): { getBoundingClientRect(): { left: number; top: number } };
    };
    charts: Map<
      string,
      {
        data: (number | null)[][];
        ctx: {
          canvas: {
            width: number;
            height: number;
            getContext(k: '2d'): { getImageData(...a: number[]): { data: Uint8ClampedArray } };
          };
        };
      }
    >;
  };
  location: { hash: string };
  document: { querySelector(s: string): { textContent: string | null } | null };
}

/** Pixels of the rate series' colour on a chart's canvas: an empty chart draws only axes and grid. */
function seriesPixels(page: Page, chart: string): Promise<number> {
  return page.evaluate(
    ([id, rgb]) => {
      const c = (globalThis as unknown as PageGlobals).weftDashboard.charts.get(id)!.ctx.canvas;
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4)
        if (
          px[i + 3] > 200 &&
          Math.abs(px[i] - rgb[0]) < 24 &&
          Math.abs(px[i + 1] - rgb[1]) < 24 &&
          Math.abs(px[i + 2] - rgb[2]) < 24
        )
          n++;
      return n;
    },
    [chart, RPS_RGB] as const,
  );
}

describe('the dashboard page in Chromium', { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-ui-'));
  let mesh: EchoMesh | undefined;
  let blocker: net.Server;
  let dashboard = 0;
  let browser: Browser | undefined;
  let page: Page;

  const shot = (name: string): Promise<unknown> =>
    page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }).catch(() => undefined);

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // The broken workload's ingress port, held by someone else on its address: its listener cannot bind.
    const brokenPort = await closedPort();
    blocker = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => blocker.listen(brokenPort, BROKEN_IP, r));
    mesh = await startEchoMesh({
      dir,
      host: HOST,
      clientIp: CLIENT_IP,
      serverIp: SERVER_IP,
      extraConfig: (appPort) =>
        meshService({ name: 'broken', host: 'broken.default.svc.cluster.local', port: brokenPort, appPort }) +
        // A route to a host nobody defines: `analyze` warns about it (WE0101), nothing else changes.
        `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ghost}
spec:
  hosts: [ghost.example.com]
  http: [{route: [{destination: {host: nowhere.default.svc.cluster.local}}]}]
`,
      extraSidecars: async (common) => [
        await startSidecar({
          name: 'broken',
          serviceAccount: 'broken',
          ip: BROKEN_IP,
          labels: 'app=broken,version=v1',
          ...common,
        }),
      ],
    });
    dashboard = mesh.dashboard;
    mesh.startLoad(10);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(30_000);
  });

  after(async () => {
    await browser?.close();
    await mesh?.stop();
    blocker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the graph labels the client → echo edge with a non-zero rate', async () => {
    await page.goto(`http://127.0.0.1:${dashboard}/#/`);
    try {
      // The collector needs two scrapes (5 s apart) for a rate; the page polls every 5 s.
      const label = await page.waitForFunction(
        ([source, target]) => {
          const cy = (globalThis as unknown as PageGlobals).weftDashboard.cy;
          const e = cy?.edges().find((x) => x.data('source') === source && x.data('target') === target);
          // The label cytoscape draws (style), not only the data behind it.
          const text = e?.style('label') ?? '';
          const rps = /([\d.]+) rps/.exec(text);
          return rps !== null && Number(rps[1]) > 0 ? text : false;
        },
        ['workload:default/client', `service:${HOST}`],
        { timeout: 60_000, polling: 500 },
      );
      const text = await label.jsonValue();
      // mTLS is marked in text: Debian's headless Chromium has no emoji font to draw a lock with.
      assert.match(text as string, /^mTLS · [\d.]+ rps · [\d.]+% · p99 [\d.]+ (ms|s)$/);
      // The same edge in the calls table, and among the top failing edges (one request in ten fails).
      await page.locator('#failing-body tr', { hasText: 'default/client' }).waitFor({ timeout: 15_000 });
      const failing = await page.locator('#failing-body tr').first().textContent();
      assert.match(failing ?? '', /echo\.default\.svc\.cluster\.local/);
    } finally {
      await shot('graph');
    }
  });

  it('clicking the echo service node opens its page, whose charts hold and draw data', async () => {
    const id = `service:${HOST}`;
    const at = await page.evaluate((nodeId) => {
      const cy = (globalThis as unknown as PageGlobals).weftDashboard.cy!;
      const n = cy.getElementById(nodeId);
      if (n.length === 0) return null;
      const p = n.renderedPosition();
      const box = cy.container().getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    }, id);
    assert.ok(at, `no node ${id} in the graph`);
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).location.hash === '#/service/default/echo',
      undefined,
      { timeout: 5_000 },
    );
    try {
      await page.locator('[data-chart="inbound-rate"] canvas').waitFor();
      await page.locator('[data-chart="inbound-latency"] canvas').waitFor();
      // The chart's own data (what uPlot draws from): at least two rate points above zero, and latency.
      const points = await page.waitForFunction(
        () => {
          const charts = (globalThis as unknown as PageGlobals).weftDashboard.charts;
          const rate = charts.get('inbound-rate')?.data[1] ?? [];
          const p99 = charts.get('inbound-latency')?.data[3] ?? [];
          const nonZero = rate.filter((v) => v !== null && v > 0).length;
          return nonZero >= 2 && p99.some((v) => v !== null && v > 0) ? nonZero : false;
        },
        undefined,
        { timeout: 45_000, polling: 500 },
      );
      assert.ok(((await points.jsonValue()) as number) >= 2);
      // And the canvas has the rate series' colour on it: an empty chart draws axes and grid only.
      const drawn = await waitFor(
        async () => {
          const n = await seriesPixels(page, 'inbound-rate');
          return n >= 20 ? n : undefined;
        },
        10_000,
        'the rate series on the canvas',
      );
      assert.ok(drawn !== undefined && drawn >= 20);
      const title = await page.locator('#detail h2').textContent();
      assert.equal(title, `service echo.default`);
    } finally {
      await shot('service');
    }
    // The client's workload page: outbound charts as well.
    await page.goto(`http://127.0.0.1:${dashboard}/#/workload/default/client`);
    try {
      await page.waitForFunction(
        () => {
          const rate = (globalThis as unknown as PageGlobals).weftDashboard.charts.get('outbound-rate');
          return (rate?.data[1] ?? []).some((v) => v !== null && v > 0);
        },
        undefined,
        { timeout: 15_000, polling: 500 },
      );
      assert.ok((await seriesPixels(page, 'outbound-rate')) >= 20);
      // The control: the client takes no calls, so its inbound rate chart has none of the colour.
      assert.equal(await seriesPixels(page, 'inbound-rate'), 0);
    } finally {
      await shot('workload');
    }
  });

  it('the proxies view shows the broken proxy NACKing, with its error', async () => {
    const api = await waitFor(
      async () => {
        const r = await request(dashboard, { path: '/api/proxies' });
        const p = (JSON.parse(r.body) as ProxiesResponse).proxies.find((x) => x.name === 'broken');
        return p?.state === 'NACK' ? p : undefined;
      },
      30_000,
      'the broken proxy to NACK',
    );
    assert.ok(api);
    const nacked = api.types.find((t) => t.state === 'NACK')!;
    assert.ok(nacked.error, JSON.stringify(api));
    await page.goto(`http://127.0.0.1:${dashboard}/#/proxies`);
    try {
      const row = page.locator('tr[data-proxy="broken.default"]');
      await row.waitFor();
      assert.equal(await row.locator('td.state').textContent(), 'NACK');
      const error = (await row.locator('td.error').textContent()) ?? '';
      assert.ok(error.includes(`${nacked.type}: ${nacked.error}`), error);
      assert.equal(await page.locator('tr[data-proxy="echo.default"] td.state').textContent(), 'SYNCED');
    } finally {
      await shot('proxies');
    }
  });

  it('the configuration view lists the resources in force with their diagnostics', async () => {
    await page.goto(`http://127.0.0.1:${dashboard}/#/config`);
    try {
      await page.locator('tr[data-resource="ServiceEntry/default/echo"]').waitFor();
      const rows = await page
        .locator('#config-body tr')
        .evaluateAll((trs) =>
          trs.map((tr) => (tr as unknown as { dataset: { resource: string } }).dataset.resource).sort(),
        );
      assert.deepEqual(rows, [
        'ServiceEntry/default/broken',
        'ServiceEntry/default/echo',
        'Sidecar/default/broken',
        'Sidecar/default/echo',
        'VirtualService/default/ghost',
      ]);
      // The diagnostic sits in its resource's row; the others are clean.
      const ghost = page.locator('tr[data-resource="VirtualService/default/ghost"] li.diagnostic');
      assert.equal(await ghost.count(), 1);
      const text = (await ghost.textContent()) ?? '';
      assert.match(text, /^warningWE0101 host "nowhere\.default\.svc\.cluster\.local" is not defined/);
      assert.match(text, /http\[0\]\.route\[0\]\.destination\.host/);
      assert.equal(
        await page.locator('tr[data-resource="ServiceEntry/default/echo"] li.diagnostic').count(),
        0,
      );
      assert.match(
        (await page.locator('#config-summary').textContent()) ?? '',
        /^5 resources · 0 errors · 1 warnings/,
      );
    } finally {
      await shot('config');
    }
  });
});
