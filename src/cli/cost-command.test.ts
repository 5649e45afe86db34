import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { costReport, GIB } from '../cost/model.ts';
import { dashboardUrl, fetchCost, formatCost } from './cost-command.ts';

describe('weft cost', () => {
  it("finds the dashboard from --dashboard, DIR's run state, or the default", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cost-'));
    try {
      assert.equal(dashboardUrl(undefined, undefined), 'http://127.0.0.1:15000');
      assert.equal(dashboardUrl(dir, 'http://h:1'), 'http://h:1');
      assert.throws(() => dashboardUrl(dir, undefined), /no mesh has run in .* \(no \.weft\/run\.json\)/);
      fs.mkdirSync(path.join(dir, '.weft'));
      const state = { controlPlane: { xdsPort: 1, debugPort: 2, dashboardPort: 15123, log: '' } };
      fs.writeFileSync(path.join(dir, '.weft', 'run.json'), JSON.stringify(state));
      assert.equal(dashboardUrl(dir, undefined), 'http://127.0.0.1:15123');
      state.controlPlane.dashboardPort = 0;
      fs.writeFileSync(path.join(dir, '.weft', 'run.json'), JSON.stringify(state));
      assert.throws(() => dashboardUrl(dir, undefined), /runs no dashboard/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the edges and the total as a table', () => {
    const flows = [
      {
        source: 'shop/web',
        proxy: 'p',
        service: 'cart.shop.svc.cluster.local',
        bytes: 3 * GIB,
        requests: 30,
      },
    ].map((f) => ({ ...f, from: { region: 'r', zone: 'a' }, to: { region: 'r', zone: 'b' } }));
    const text = formatCost({ ...costReport(flows, [], 86_400), timestamp: 0 });
    assert.match(text, /^window 86400 s; prices: \$0\.01\/GB each side across zones/);
    assert.match(text, /^SOURCE\s+SERVICE\s+IN ZONE\s+CROSS-ZONE\s+CROSS-REGION/m);
    // 3 GiB a day across zones: 90 GiB a month at $0.02.
    assert.match(
      text,
      /^shop\/web\s+cart\.shop\.svc\.cluster\.local\s+0 B\/s\s+36\.4 KiB\/s\s+0 B\/s\s+0\.0%\s+0\.0%\s+\$1\.80\s+-$/m,
    );
    assert.match(text, /^TOTAL\s+0 B\/s/m);
    assert.match(formatCost({ ...costReport([], [], 10), timestamp: 0 }), /no locality traffic seen/);
  });

  it('says clearly when the dashboard does not answer, or has no cost view', async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"no such endpoint"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        fetchCost(`http://127.0.0.1:${port}`, new URLSearchParams()),
        /has no \/api\/cost/,
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
    await assert.rejects(
      fetchCost(`http://127.0.0.1:${port}`, new URLSearchParams()),
      /cannot reach the dashboard at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
    );
  });
});
