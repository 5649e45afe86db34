/**
 * The Weft dashboard on the shop demo, in a real Chromium: `weft up` runs the demo (explicit mode, from a temp
 * copy), a steady trickle of pages goes through the gateway, and the graph the browser draws shows the
 * demo's calls — frontend → catalog, frontend → reviews, reviews v2/v3 → ratings (gRPC) — each labelled with
 * a non-zero rate and mTLS, and the reviews canary as three parallel split edges to v1, v2 and v3. Then the
 * reviews service page shows its charts. Screenshots: test-artifacts/shop-dashboard/{graph,reviews}.png.
 * Spawns bin/weft.js: `npm run build` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { request } from '../support/http.ts';
import { closedPort } from '../support/servers.ts';
import { launcherNodeFlags, REPO, waitFor } from '../support/proxy.ts';
import { WEFT } from '../support/weft-cli.ts';
import { copyShop, killLeftovers } from '../../bench/up/shop.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'shop-dashboard');
const FIRST_IP = '127.0.74.10';
const svc = (name: string): string => `service:${name}.default.svc.cluster.local`;
const workload = (name: string): string => `workload:default/${name}`;

interface Cy {
  edges(): { data(k: string): string; style(k: string): string }[];
}

/** The label cytoscape draws for each edge, by `source→target`. */
function edgeLabels(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => {
    const cy = (globalThis as unknown as { weftDashboard: { cy?: Cy } }).weftDashboard.cy;
    const out: Record<string, string> = {};
    for (const e of cy?.edges() ?? []) out[`${e.data('source')}→${e.data('target')}`] = e.style('label');
    return out;
  });
}

const rate = (label: string | undefined): number => Number(/([\d.]+) rps/.exec(label ?? '')?.[1] ?? 0);

describe('the dashboard on the shop demo, in Chromium', { timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-shop-dash-'));
  let up: ChildProcess | undefined;
  let out = '';
  let exit: Promise<unknown> = Promise.resolve();
  let gatewayPort = 0;
  let dashboard = '';
  let browser: Browser | undefined;
  let page: Page;
  let traffic = true;
  let trafficDone: Promise<void> = Promise.resolve();

  const shot = async (name: string): Promise<void> => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page
      .screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true })
      .catch(() => undefined);
  };

  before(async () => {
    gatewayPort = await closedPort();
    copyShop(dir, gatewayPort);
    up = spawn(process.execPath, [...launcherNodeFlags(), WEFT, 'up', '--first-ip', FIRST_IP, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    up.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const child = up;
    exit = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(() => /stop: weft down/.test(out) || child.exitCode !== null, 120_000, `weft up:\n${out}`);
    const url = /dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
    assert.ok(url, out);
    dashboard = url;
    // Pages as distinct customers, a few a second: under the per-customer rate limit, enough for every edge.
    let n = 0;
    trafficDone = (async () => {
      while (traffic) {
        await request(gatewayPort, { headers: { 'end-user': `dash-${n++}` } }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    traffic = false;
    await trafficDone;
    await browser?.close();
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([exit, new Promise((r) => setTimeout(r, 30_000))]);
    }
    killLeftovers(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the graph shows the demo's calls with rates and mTLS, and the canary as parallel edges", async () => {
    await page.goto(`${dashboard}#/`);
    const wanted = [
      `${workload('frontend')}→${svc('catalog')}`,
      `${workload('frontend')}→${svc('reviews')}`,
      `${svc('reviews')}→${workload('reviews-v1')}`,
      `${svc('reviews')}→${workload('reviews-v2')}`,
      `${svc('reviews')}→${workload('reviews-v3')}`,
    ];
    let labels: Record<string, string> = {};
    try {
      // Two scrapes 5 s apart make a rate; v2 and v3 get 10% of the pages each, so allow a while.
      await waitFor(
        async () => {
          labels = await edgeLabels(page);
          const ratings = Object.keys(labels).filter(
            (k) => /→service:ratings\./.test(k) && rate(labels[k]) > 0,
          );
          return wanted.every((k) => rate(labels[k]) > 0) && ratings.length > 0;
        },
        90_000,
        'every demo edge with a rate',
      );
      for (const k of wanted) assert.match(labels[k], /^mTLS · [\d.]+ rps/, `${k}: ${labels[k]}`);
      // Only reviews v2 and v3 call ratings, over gRPC.
      const callers = Object.keys(labels)
        .filter((k) => /→service:ratings\./.test(k) && rate(labels[k]) > 0)
        .map((k) => k.split('→')[0])
        .sort();
      assert.ok(
        callers.every((c) => c === workload('reviews-v2') || c === workload('reviews-v3')),
        callers.join(', '),
      );
      // The 80/10/10 split: v1's edge carries the most.
      assert.ok(rate(labels[wanted[2]]) > rate(labels[wanted[3]]), JSON.stringify(labels));
    } finally {
      await shot('graph');
    }
  });

  it('the reviews service page shows its charts', async () => {
    await page.goto(`${dashboard}#/service/default/reviews`);
    try {
      await page.waitForFunction(
        () => {
          const charts = (globalThis as unknown as { weftDashboard: { charts: Map<string, unknown> } })
            .weftDashboard.charts;
          return charts.size > 0;
        },
        undefined,
        { timeout: 30_000 },
      );
      await page.getByText('service reviews.default', { exact: true }).waitFor({ timeout: 15_000 });
      // Its callers and the canary's three destinations, in the table under the charts.
      for (const text of [
        'default/frontend',
        'default/reviews-v1',
        'default/reviews-v2',
        'default/reviews-v3',
      ])
        await page.locator('table tr:visible', { hasText: text }).first().waitFor({ timeout: 15_000 });
    } finally {
      await shot('reviews');
    }
  });
});
