/**
 * The shop demo (examples/shop) under `weft up`, checked from outside as its README describes: the page
 * through the gateway, the 80/10/10 canary, header routing, the fault-injected delay, retries and outlier
 * ejection hiding the flaky catalog, strict mTLS, authorization and the per-customer rate limit; then
 * `weft down` leaves nothing running. The demo runs from a copy in a temp dir (its .weft/ state stays out of
 * the repo) with free control-plane and gateway ports, and its instances on 127.0.71.10+ (--first-ip) so that
 * other meshes started by concurrent tests on 127.0.0.10+ keep their ports. Spawns bin/weft.js: `npm run
 * build` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';
import { closedPort } from '../support/servers.ts';
import { launcherNodeFlags, waitFor } from '../support/proxy.ts';
import { weft, WEFT } from '../support/weft-cli.ts';
import { copyShop, killLeftovers, processesOf } from '../../bench/up/shop.ts';
import type { RunInstance, RunState } from '../../src/up/run-state.ts';

const FIRST_IP = '127.0.71.10';

interface Page {
  product?: { id: number; servedBy: string };
  frontend?: string;
  reviews?: {
    version: string;
    servedBy: string;
    rating?: { stars: number; display?: string };
    ratingError?: string;
  };
  reviewsError?: string;
}

/** A GET through a sidecar's outbound listener, as an app behind HTTP_PROXY sends it (absolute form). */
function viaProxy(proxyPort: number, url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, path: url, headers: { host: u.host }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Connects to ip:port in plain TCP, sends an HTTP request, and returns whether it connected and what came back. */
function plaintextExchange(ip: string, port: number): Promise<{ connected: boolean; reply: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, ip);
    let connected = false;
    let reply = '';
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve({ connected, reply });
    };
    const t = setTimeout(done, 5000);
    s.on('connect', () => {
      connected = true;
      s.write(`GET / HTTP/1.1\r\nHost: ${ip}:${port}\r\nConnection: close\r\n\r\n`);
    });
    s.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    s.on('close', done);
    s.on('error', done);
  });
}

describe('the shop demo under weft up', { timeout: 300_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-shop-'));
  let up: ChildProcess | undefined;
  let upOut = '';
  let upExit: Promise<number | null> = Promise.resolve(null);
  let gatewayPort = 0;
  const run = (): RunState =>
    JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as RunState;
  const instance = (name: string): RunInstance => {
    const i = run().instances.find((x) => x.instance === name);
    assert.ok(i, `instance ${name} in run.json`);
    return i;
  };

  async function page(headers: Record<string, string> = {}, pagePath = '/'): Promise<Reply> {
    return request(gatewayPort, { path: pagePath, headers });
  }
  const json = (r: Reply): Page => JSON.parse(r.body) as Page;

  /** `n` pages, at most `parallel` at a time; each request as its own customer unless headers say who. */
  async function pages(n: number, headers: (i: number) => Record<string, string>, parallel: number) {
    const replies: Reply[] = new Array<Reply>(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < n) {
          const i = next++;
          replies[i] = await page(headers(i));
        }
      }),
    );
    return replies;
  }

  before(async () => {
    gatewayPort = await closedPort();
    copyShop(dir, gatewayPort);
    up = spawn(process.execPath, [...launcherNodeFlags(), WEFT, 'up', '--first-ip', FIRST_IP, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout!.on('data', (c: Buffer) => (upOut += c.toString()));
    up.stderr!.on('data', (c: Buffer) => (upOut += c.toString()));
    const child = up;
    upExit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  });

  after(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await Promise.race([upExit, new Promise((r) => setTimeout(r, 30_000))]);
    }
    killLeftovers(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts all seven instances and the gateway, and prints the summary', async () => {
    await waitFor(
      // The summary is written line by line: wait for its last line.
      () => /stop: weft down/.test(upOut) || up?.exitCode != null,
      120_000,
      `weft up to be ready; output:\n${upOut}`,
    );
    assert.match(upOut, /is up: 7 of 7 instances ready/, upOut);
    assert.match(upOut, new RegExp(`gateway\\s+http://127\\.0\\.0\\.1:${gatewayPort}/`));
    assert.deepEqual(
      run().instances.map((i) => [i.instance, i.ip, i.state]),
      [
        ['frontend-0', '127.0.71.10', 'ready'],
        ['catalog-0', '127.0.71.11', 'ready'],
        ['catalog-flaky-0', '127.0.71.12', 'ready'],
        ['reviews-v1-0', '127.0.71.13', 'ready'],
        ['reviews-v2-0', '127.0.71.14', 'ready'],
        ['reviews-v3-0', '127.0.71.15', 'ready'],
        ['ratings-0', '127.0.71.16', 'ready'],
      ],
    );
  });

  it('serves the product page, a product and the list through the gateway', async () => {
    // The gateway's route may arrive a moment after the summary.
    let attempt = 0;
    const first = await waitFor(
      async () => {
        const r = await page({ 'end-user': `first-look-${attempt++}` });
        return r.status === 200 ? r : undefined;
      },
      20_000,
      'a 200 through the gateway',
    );
    assert.ok(first);
    const p = json(first);
    assert.equal(p.product?.id, 1);
    assert.equal(p.frontend, 'frontend-0');
    assert.match(p.product?.servedBy ?? '', /^catalog(-flaky)?-0$/);
    assert.match(p.reviews?.servedBy ?? '', /^reviews-v[123]-0$/);
    const three = await page({ 'end-user': 'first-look' }, '/products/3');
    assert.equal(three.status, 200, three.body);
    assert.equal(json(three).product?.id, 3);
    const list = await page({ 'end-user': 'first-look' }, '/products');
    assert.equal(list.status, 200, list.body);
    const products = (JSON.parse(list.body) as { products?: { id: number }[] }).products;
    assert.deepEqual(
      products?.map((x) => x.id),
      [1, 2, 3, 4],
      list.body,
    );
  });

  it('splits reviews 80/10/10 between v1, v2 and v3', async () => {
    const replies = await pages(100, (i) => ({ 'end-user': `canary-${i}` }), 2);
    const counts: Record<string, number> = {};
    for (const r of replies) {
      assert.equal(r.status, 200, r.body);
      const v = json(r).reviews?.version ?? `none (${json(r).reviewsError})`;
      counts[v] = (counts[v] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(counts).sort(), ['v1', 'v2', 'v3'], JSON.stringify(counts));
    // Binomial(100, p): each bound is ≥ 3.5 standard deviations away (a false failure < 1 in 1000), and an
    // even split (33 each) or no split (100/0/0) fails them.
    assert.ok(counts.v1 >= 64 && counts.v1 <= 95, `v1 ${counts.v1} of 100 (expected ~80)`);
    assert.ok(counts.v2 >= 1 && counts.v2 <= 22, `v2 ${counts.v2} of 100 (expected ~10)`);
    assert.ok(counts.v3 >= 1 && counts.v3 <= 22, `v3 ${counts.v3} of 100 (expected ~10)`);
  });

  it('routes end-user: jason to v2 always, and x-canary: v3 to v3', async () => {
    // jason's own rate-limit bucket holds 10: 8 here, 1 in the fault test.
    const jason = await pages(8, () => ({ 'end-user': 'jason' }), 2);
    for (const r of jason) {
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).reviews?.version, 'v2', r.body);
    }
    // v2 asks ratings (over gRPC, reviews → ratings through the mesh) for the stars.
    assert.equal(typeof json(jason[0]).reviews?.rating?.stars, 'number', jason[0].body);
    const canary = await pages(10, (i) => ({ 'end-user': `v3-fan-${i}`, 'x-canary': 'v3' }), 2);
    for (const r of canary) {
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).reviews?.version, 'v3', r.body);
    }
    assert.match(json(canary[0]).reviews?.rating?.display ?? '', /★/, canary[0].body);
  });

  it('delays ratings for x-fault: ratings-delay: the page reports the ratings deadline', async () => {
    const r = await page({ 'end-user': 'jason', 'x-fault': 'ratings-delay' });
    assert.equal(r.status, 200, r.body);
    const p = json(r);
    assert.equal(p.reviews?.version, 'v2', r.body);
    assert.ok(Array.isArray((p.reviews as { reviews?: unknown } | undefined)?.reviews), r.body);
    assert.equal(p.reviews?.rating, undefined, r.body);
    assert.match(p.reviews?.ratingError ?? '', /DEADLINE_EXCEEDED/, r.body);
  });

  it('hides the flaky catalog replica: 60 pages, all 200, though it failed', async () => {
    const replies = await pages(60, (i) => ({ 'end-user': `shopper-${i}` }), 2);
    const statuses = replies.map((r) => r.status);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      replies.find((r) => r.status !== 200)?.body,
    );
    const flakyLog = fs.readFileSync(instance('catalog-flaky-0').appLog, 'utf8');
    assert.match(flakyLog, /status=503/, 'the flaky replica did answer 503s (retried and ejected)');
  });

  it('requires mTLS: a plaintext request to a sidecar inbound address gets no HTTP answer', async () => {
    for (const name of ['frontend-0', 'reviews-v1-0']) {
      const i = instance(name);
      const { connected, reply } = await plaintextExchange(i.ip, i.ports[0].service);
      // The sidecar does listen there (the connection opens) but never speaks plaintext HTTP.
      assert.equal(connected, true, `${name}: ${i.ip}:${i.ports[0].service} accepts connections`);
      assert.doesNotMatch(reply, /^HTTP\//, `${name} answered plaintext: ${reply.slice(0, 200)}`);
    }
  });

  it('authorizes reviews callers: 403 from the catalog sidecar, 200 from the frontend sidecar', async () => {
    const denied = await viaProxy(instance('catalog-0').outbound, 'http://reviews:9080/reviews/1');
    assert.equal(denied.status, 403, denied.body);
    assert.match(denied.body, /RBAC: access denied/);
    const allowed = await viaProxy(instance('frontend-0').outbound, 'http://reviews:9080/reviews/1');
    assert.equal(allowed.status, 200, allowed.body);
    // No policy guards the catalog: the same caller is let through there.
    const catalog = await viaProxy(instance('catalog-0').outbound, 'http://catalog:9080/products/1');
    assert.equal(catalog.status, 200, catalog.body);
  });

  it('rate-limits each customer: 429 after the burst of 10, other customers unaffected', async () => {
    const statuses: number[] = [];
    let limited: Reply | undefined;
    for (let n = 0; n < 25; n++) {
      const r = await page({ 'end-user': 'greedy' });
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    // A burst of 10; a refill (5 a second) during the run adds at most 5 more per second elapsed.
    assert.deepEqual(statuses.slice(0, 10), new Array<number>(10).fill(200), statuses.join(' '));
    assert.ok(limited, `no 429 in ${statuses.join(' ')}`);
    assert.ok(statuses.filter((s) => s === 429).length >= 5, statuses.join(' '));
    assert.equal(limited.headers['x-envoy-ratelimited'], 'true', JSON.stringify(limited.headers));
    const other = await pages(5, () => ({ 'end-user': 'patient' }), 1);
    assert.deepEqual(
      other.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
  });

  it('weft down stops every process of the mesh and weft up exits 0', async () => {
    const st = run();
    const pids = [
      st.pid,
      st.controlPlane.pid,
      st.gateway?.pid,
      ...st.instances.flatMap((i) => [i.appPid, i.sidecarPid]),
    ];
    assert.equal(pids.length, 17);
    for (const pid of pids) assert.equal(typeof pid, 'number', JSON.stringify(st));
    const r = await weft(['down', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /weft: mesh shop stopped/);
    assert.equal(await upExit, 0);
    for (const pid of pids)
      assert.throws(() => process.kill(pid!, 0), { code: 'ESRCH' }, `pid ${pid} still runs`);
    assert.deepEqual(processesOf(dir), []);
    assert.ok(
      run().instances.every((i) => i.state === 'stopped'),
      JSON.stringify(run().instances),
    );
  });
});
