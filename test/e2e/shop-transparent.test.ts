/**
 * The shop demo under `weft up --mode transparent`: every app in its own network namespace, with no proxy
 * variables, calling the others by service name; iptables hands each connection to its sidecar, which routes
 * it by its original destination (SO_ORIGINAL_DST, the Node-API addon). Checked from outside: pages through
 * the gateway (HTTP and gRPC calls between apps), the sidecars' own metrics for those calls, a connection
 * to an address outside the mesh refused, and `weft down` leaving no namespace, veth, iptables rule or
 * process. Then a supervisor killed with SIGKILL: `weft down` still removes all it left. Linux and root (CI is
 * both); spawns bin/weft.js: `npm run build` first.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { request } from '../support/http.ts';
import { closedPort } from '../support/servers.ts';
import { launcherNodeFlags, waitFor } from '../support/proxy.ts';
import { weft, WEFT } from '../support/weft-cli.ts';
import { copyShop, killLeftovers, processesOf } from '../../bench/up/shop.ts';
import type { RunInstance, RunState } from '../../src/up/run-state.ts';

const FIRST_IP = '127.0.72.10';

interface Page {
  frontend?: string;
  product?: { servedBy: string };
  reviews?: { version: string; rating?: { stars: number }; ratingError?: string };
  reviewsError?: string;
}

const sh = (file: string, args: readonly string[]): string =>
  execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Everything of a run that lives in the kernel: namespaces, veths, iptables rules, /etc/netns entries. */
function kernelLeftovers(runId: string): string[] {
  return [
    ...sh('ip', ['netns', 'list'])
      .split('\n')
      .filter((l) => l.includes(`weft-${runId}-`)),
    ...sh('ip', ['-o', 'link'])
      .split('\n')
      .filter((l) => l.includes(`wf${runId}h`)),
    ...sh('iptables', ['-t', 'nat', '-S'])
      .split('\n')
      .filter((l) => l.includes(runId)),
    ...(fs.existsSync('/etc/netns') ? fs.readdirSync('/etc/netns') : []).filter((n) => n.includes(runId)),
  ];
}

function startUp(dir: string): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  let out = '';
  const child = spawn(
    process.execPath,
    [...launcherNodeFlags(), WEFT, 'up', '--mode', 'transparent', '--first-ip', FIRST_IP, dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

/** One Prometheus sample's value summed over the lines that contain every one of `labels`. */
function sampleSum(text: string, metric: string, labels: readonly string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !labels.every((l) => line.includes(l))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('the shop demo in transparent mode', { timeout: 300_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-shop-t-'));
  let up: ReturnType<typeof startUp> | undefined;
  let gatewayPort = 0;
  let runId = '';
  const run = (): RunState =>
    JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as RunState;
  const instance = (name: string): RunInstance => {
    const i = run().instances.find((x) => x.instance === name);
    assert.ok(i, `instance ${name} in run.json`);
    return i;
  };
  const netnsOf = (name: string): string => {
    const ns = instance(name).netns;
    assert.ok(ns, `${name}'s namespace in run.json`);
    return ns;
  };

  before(async () => {
    gatewayPort = await closedPort();
    copyShop(dir, gatewayPort);
    up = startUp(dir);
  });

  after(async () => {
    if (up && up.child.exitCode === null && up.child.signalCode === null) {
      up.child.kill('SIGTERM');
      await Promise.race([up.exit, new Promise((r) => setTimeout(r, 30_000))]);
    }
    killLeftovers(dir);
    // Whatever a failed assertion left behind.
    if (runId !== '') await weft(['down', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts every instance in its own namespace', async () => {
    await waitFor(
      () => /stop: weft down/.test(up!.output()) || up?.child.exitCode != null,
      120_000,
      `weft up to be ready; output:\n${up!.output()}`,
    );
    const out = up!.output();
    assert.match(out, /\(transparent mode\)/, out);
    assert.match(out, /is up: 7 of 7 instances ready/, out);
    assert.match(out, /in the mesh {2}ip netns exec weft-[0-9a-f]{6}-\d+ curl /, out);
    runId = run().network?.runId ?? '';
    assert.match(runId, /^[0-9a-f]{6}$/);
    const namespaces = sh('ip', ['netns', 'list']);
    for (let i = 0; i < 7; i++) assert.match(namespaces, new RegExp(`^weft-${runId}-${i}\\b`, 'm'));
    // No proxy variables: the app does not know it is in a mesh.
    const environ = fs.readFileSync(`/proc/${instance('frontend-0').appPid}/environ`, 'utf8').split('\0');
    assert.equal(
      environ.some((e) => /^(HTTP_PROXY|http_proxy|grpc_proxy)=/.test(e)),
      false,
    );
    // The app resolves service names to the VIPs of the generated ServiceEntries.
    const generated = parseAllDocuments(
      fs.readFileSync(path.join(dir, '.weft/generated/weft-up.yaml'), 'utf8'),
    ).map((d) => d.toJS() as { kind: string; spec: { hosts?: string[]; addresses?: string[] } });
    const catalog = generated.find(
      (d) => d.kind === 'ServiceEntry' && d.spec.hosts?.[0] === 'catalog.default.svc.cluster.local',
    );
    const vip = catalog?.spec.addresses?.[0];
    assert.match(vip ?? '', /^240\.240\.\d+\.\d+$/);
    const resolved = sh('ip', ['netns', 'exec', netnsOf('frontend-0'), 'getent', 'hosts', 'catalog']);
    assert.equal(resolved.split(/\s+/)[0], vip);
  });

  it('serves pages whose HTTP and gRPC calls between apps go through the captured sidecars', async () => {
    let attempt = 0;
    await waitFor(
      async () => (await request(gatewayPort, { headers: { 'end-user': `t-${attempt++}` } })).status === 200,
      20_000,
      'a 200 through the gateway',
    );
    const versions: Record<string, number> = {};
    let rated = 0;
    for (let i = 0; i < 40; i++) {
      const r = await request(gatewayPort, { headers: { 'end-user': `transparent-${i}` } });
      assert.equal(r.status, 200, r.body);
      const p = JSON.parse(r.body) as Page;
      assert.equal(p.frontend, 'frontend-0');
      assert.match(p.product?.servedBy ?? '', /^catalog(-flaky)?-0$/);
      const v = p.reviews?.version ?? `none (${p.reviewsError})`;
      versions[v] = (versions[v] ?? 0) + 1;
      if (p.reviews?.rating?.stars !== undefined) rated++;
    }
    // The 80/10/10 canary: 40 pages without one v2 or v3 happen with p = 0.8^40 ≈ 1e-4.
    assert.ok(
      (versions.v1 ?? 0) > 0 && (versions.v2 ?? 0) + (versions.v3 ?? 0) > 0,
      JSON.stringify(versions),
    );
    assert.ok(rated > 0, `v2 and v3 show the gRPC rating: ${JSON.stringify(versions)}`);

    // The frontend's own sidecar saw its calls to the catalog and reviews as the source reporter, and the
    // ratings calls of a v2/v3 reviews sidecar as gRPC: the apps' connections did pass through them.
    const frontend = await request(instance('frontend-0').admin, { path: '/stats/prometheus' });
    const toCatalog = sampleSum(frontend.body, 'istio_requests_total', [
      'reporter="source"',
      'destination_service_name="catalog"',
      'response_code="200"',
    ]);
    assert.ok(toCatalog >= 40, `frontend sidecar → catalog: ${toCatalog}`);
    let grpc = 0;
    for (const name of ['reviews-v2-0', 'reviews-v3-0']) {
      const stats = await request(instance(name).admin, { path: '/stats/prometheus' });
      grpc += sampleSum(stats.body, 'istio_requests_total', [
        'reporter="source"',
        'destination_service_name="ratings"',
        'request_protocol="grpc"',
      ]);
    }
    assert.ok(grpc >= rated, `reviews sidecars → ratings over gRPC: ${grpc}, rated pages ${rated}`);
  });

  it('closes a captured connection to an address outside the mesh', () => {
    const ns = netnsOf('frontend-0');
    const script =
      "const s=require('net').connect(80,'240.240.99.99');let d='';s.on('data',c=>d+=c);" +
      "s.on('connect',()=>s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));" +
      "s.on('close',()=>{console.log(JSON.stringify(d));process.exit(0)});s.on('error',()=>{});" +
      'setTimeout(()=>{console.log("open");process.exit(0)},5000)';
    // Inside the namespace the sidecar accepts (the REDIRECT), finds no chain for it and closes: no byte back.
    assert.equal(sh('ip', ['netns', 'exec', ns, process.execPath, '-e', script]).trim(), '""');
  });

  it('weft restart frontend moves the only frontend to a new port in its namespace, losing no page', async () => {
    const before = instance('frontend-0');
    let sent = 0;
    const failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const r = await request(gatewayPort, { headers: { 'end-user': `restart-${sent}` } });
        sent++;
        if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      }
    })();
    const restart = await weft(['restart', 'frontend', dir], 90_000);
    running = false;
    await loop;
    assert.equal(restart.code, 0, restart.out + restart.err);
    assert.match(restart.out, /frontend-0 app\s+serving on port \d+ \(sidecar switched in \d+ ms\)/);
    const afterwards = instance('frontend-0');
    assert.notEqual(afterwards.appPid, before.appPid);
    assert.notEqual(afterwards.ports[0].private, 8080);
    assert.ok(sent >= 10, `sent ${sent}`);
    assert.deepEqual(failures, [], `sent ${sent}`);
  });

  it('weft down removes every namespace, veth, iptables rule and process', async () => {
    const down = await weft(['down', dir], 90_000);
    assert.equal(down.code, 0, down.out + down.err);
    assert.equal(await up!.exit, 0, up!.output());
    assert.deepEqual(kernelLeftovers(runId), []);
    assert.deepEqual(processesOf(dir), []);
  });

  it('weft down also cleans up after a supervisor killed with SIGKILL', async () => {
    up = startUp(dir);
    await waitFor(
      () => /stop: weft down/.test(up!.output()) || up?.child.exitCode != null,
      120_000,
      `weft up to be ready; output:\n${up.output()}`,
    );
    runId = run().network?.runId ?? '';
    assert.notDeepEqual(kernelLeftovers(runId), []);
    up.child.kill('SIGKILL');
    await up.exit;
    const down = await weft(['down', dir], 90_000);
    assert.equal(down.code, 0, down.out + down.err);
    assert.match(down.out, /is gone; stopping what it left running/);
    assert.deepEqual(kernelLeftovers(runId), []);
    assert.deepEqual(processesOf(dir), []);
  });
});
