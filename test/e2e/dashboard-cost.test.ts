/**
 * The dashboard's Cost view in a real Chromium (as dashboard-ui.test.ts drives it): `weft control-plane
 * --dashboard-port` from dist/, a client sidecar in region1/zone-a calling echo, whose only replica's
 * sidecar is in region1/zone-b. Every byte crosses a zone: the Cost tab (`#/cost`) shows the edge with
 * cross-zone bytes per second, a non-zero monthly cost, and a uniform counterfactual no cheaper (all of
 * echo's endpoints are in zone-b); the page's own `?zone=` reaches /api/cost and doubles the estimate.
 *
 * Screenshot: test-artifacts/dashboard-cost/cost.png at the repository root (git-ignored).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { request } from '../support/http.ts';
import { startEchoMesh } from '../support/mesh.ts';
import type { EchoMesh } from '../support/mesh.ts';
import { REPO } from '../support/proxy.ts';
import type { CostResponse } from '../../src/dashboard/types.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'dashboard-cost');
const CLIENT_IP = '127.0.0.71';
const SERVER_IP = '127.0.0.72';
const HOST = 'echo.default.svc.cluster.local';

interface PageGlobals {
  document: {
    querySelectorAll(s: string): ArrayLike<{ textContent: string | null }>;
    querySelector(s: string): { textContent: string | null } | null;
  };
}

/** The cells of the Cost table's row for an edge, as the page shows them. */
function costRow(page: Page, edge: string): Promise<string[] | null> {
  return page.evaluate((key) => {
    const rows = (globalThis as unknown as PageGlobals).document.querySelectorAll(
      `#cost-body tr[data-cost-edge="${key}"] td`,
    );
    if (rows.length === 0) return null;
    return Array.from(rows, (td) => td.textContent ?? '');
  }, edge);
}

describe('the dashboard Cost view in Chromium', { timeout: 180_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-cost-'));
  let mesh: EchoMesh | undefined;
  let dashboard = 0;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    mesh = await startEchoMesh({
      dir,
      host: HOST,
      clientIp: CLIENT_IP,
      serverIp: SERVER_IP,
      body: 'e'.repeat(2000),
      clientArgs: ['--locality', 'region1/zone-a'],
      echoArgs: ['--locality', 'region1/zone-b'],
    });
    dashboard = mesh.dashboard;
    mesh.startLoad();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(30_000);
  });

  after(async () => {
    await browser?.close();
    await mesh?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the cross-zone edge, its monthly cost and the uniform estimate; ?zone= reprices it', async () => {
    const edge = `default/client>${HOST}`;
    await page.goto(`http://127.0.0.1:${dashboard}/#/cost`);
    try {
      // Two scrapes (5 s apart) before the first bytes count; the page polls every 5 s.
      await page.waitForFunction(
        (key) =>
          (globalThis as unknown as PageGlobals).document.querySelector(
            `#cost-body tr[data-cost-edge="${key}"]`,
          ) !== null,
        edge,
        { timeout: 40_000 },
      );
      const cells = (await costRow(page, edge))!;
      const [source, service, inZone, crossZone, , bytesInZone, , month, uniform] = cells;
      assert.equal(source, 'default/client');
      assert.equal(service, HOST);
      assert.equal(inZone, '0 B/s', cells.join(' | '));
      assert.match(crossZone, /^[\d.]+ (B|KiB|MiB)\/s$/);
      assert.notEqual(crossZone, '0 B/s');
      assert.equal(bytesInZone, '0%');
      assert.match(month, /^\$\d+\.\d\d$/);
      // All of echo's endpoints are in zone-b: spreading uniformly crosses as much.
      assert.equal(uniform, month, cells.join(' | '));
      const summary = await page.evaluate(
        () =>
          (globalThis as unknown as PageGlobals).document.querySelector('#cost-summary')?.textContent ?? '',
      );
      assert.match(summary, /^0% of the bytes stayed in their zone, 100(\.0)?% crossed zones/);
      const nav = await page.evaluate(
        () => (globalThis as unknown as PageGlobals).document.querySelector('#nav-cost.current') !== null,
      );
      assert.ok(nav, 'the Cost tab is marked current');

      // The same over the API, priced at $0.02 per side through the page's own query string.
      const api = JSON.parse(
        (await request(dashboard, { path: '/api/cost?zone=0.02' })).body,
      ) as CostResponse;
      assert.equal(api.prices.interZonePerGb, 0.02);
      await page.goto(`http://127.0.0.1:${dashboard}/?zone=0.02#/cost`);
      await page.waitForFunction(() =>
        /\$0\.02\/GB charged to each side/.test(
          (globalThis as unknown as PageGlobals).document.querySelector('#cost-prices')?.textContent ?? '',
        ),
      );
    } finally {
      await page
        .screenshot({ path: path.join(ARTIFACTS, 'cost.png'), fullPage: true })
        .catch(() => undefined);
    }
  });
});
