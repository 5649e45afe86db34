/**
 * `npm run bench:cost-shop`: issue #8's figure on the shop demo. Cross-zone bytes and their estimated cost for
 * the demo's traffic with and without locality-aware routing, same load, same run: `weft up` on a copy of
 * examples/shop whose workloads are spread over three zones of one region (and two more catalog replicas, so
 * that the frontend has a choice of zones), examples/shop/traffic.mjs through the gateway for COST_SECONDS
 * (default 30) per phase, then the dashboard's /api/cost and `weft cost -o json` over the phase. Phase 1 runs
 * the demo's catalog DestinationRule as shipped (outlierDetection on, so Istio's default locality failover
 * applies); phase 2 adds `localityLbSetting: {enabled: false}` to it (the control plane watches the directory).
 * Needs the build (`npm run build`); no root.
 *
 * Writes bench/results/cost-shop-latest.{md,json}.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments, parseDocument } from 'yaml';
import { DEFAULT_PRICES } from '../../src/cost/model.ts';
import type { CostFigures } from '../../src/cost/model.ts';
import type { CostResponse } from '../../src/dashboard/types.ts';
import { freePorts } from '../../src/up/ports.ts';
import { weft } from '../../test/support/weft-cli.ts';
import { copyShop, killLeftovers, launcherNodeFlags, REPO, WEFT } from './shop.ts';

const SECONDS = Number(process.env.COST_SECONDS ?? 30);
const RPS = 20;
const FIRST_IP = '127.0.75.10';
const REGION = 'region1';
/** The dashboard collector scrapes every 5 s: one scrape after the load ends, with a second of slack. */
const SETTLE_MS = 6000;
/** For the control plane to see catalog.yaml change and push the new clusters. */
const PUSH_MS = 5000;
const ZONES: Record<string, string> = {
  frontend: 'zone-a',
  catalog: 'zone-a',
  'catalog-flaky': 'zone-b',
  'reviews-v1': 'zone-a',
  'reviews-v2': 'zone-b',
  'reviews-v3': 'zone-c',
  ratings: 'zone-b',
};
const EXTRA_CATALOGS: Record<string, string> = { 'catalog-b': 'zone-b', 'catalog-c': 'zone-c' };
const GATEWAY_ZONE = 'zone-a';
const CHANGES = [
  `the gateway gets \`locality: ${REGION}/${GATEWAY_ZONE}\``,
  `every workload gets \`locality: ${REGION}/ZONE\`: ` +
    Object.entries(ZONES)
      .map(([w, z]) => `${w} ${z}`)
      .join(', '),
  'two more catalog workloads, ' +
    Object.entries(EXTRA_CATALOGS)
      .map(([w, z]) => `\`${w}\` (${z})`)
      .join(' and ') +
    ': `service: catalog`, labels `{app: catalog, version: v1}`, the command, ports and readiness of `catalog`',
  'the control plane on free ports (xds, debug, dashboard) and the gateway on a free port (bench/up/shop.ts copyShop)',
  "phase 2 only: catalog.yaml's DestinationRule `catalog` gets `trafficPolicy.loadBalancer.localityLbSetting: {enabled: false}` (beside its `simple: ROUND_ROBIN`)",
];

if (!Number.isFinite(SECONDS) || SECONDS < 10) throw new Error(`COST_SECONDS: at least 10, got ${SECONDS}`);

interface Phase {
  name: string;
  localityLb: boolean;
  /** traffic.mjs's closing line. */
  traffic: string;
  api: CostResponse;
  /** `weft cost DIR -o json --window S`, as printed. */
  cli: CostResponse;
}

/** The copy's weft.yaml: localities for every workload, and two more catalog replicas in other zones. */
function spreadOverZones(dir: string): void {
  const file = path.join(dir, 'weft.yaml');
  const doc = parseDocument(fs.readFileSync(file, 'utf8'));
  const workloads = doc.toJS().workloads as { name: string; [k: string]: unknown }[];
  const names = workloads.map((w) => w.name).sort();
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(ZONES).sort()))
    throw new Error(
      `${file}: expected the workloads ${Object.keys(ZONES).join(', ')}, found ${names.join(', ')}`,
    );
  workloads.forEach((w, i) => doc.setIn(['workloads', i, 'locality'], `${REGION}/${ZONES[w.name]}`));
  doc.setIn(['gateway', 'locality'], `${REGION}/${GATEWAY_ZONE}`);
  const catalog = workloads.find((w) => w.name === 'catalog')!;
  for (const [name, zone] of Object.entries(EXTRA_CATALOGS))
    doc.addIn(
      ['workloads'],
      doc.createNode({
        name,
        service: 'catalog',
        labels: { app: 'catalog', version: 'v1' },
        locality: `${REGION}/${zone}`,
        command: catalog.command,
        ports: catalog.ports,
        readiness: catalog.readiness,
      }),
    );
  fs.writeFileSync(file, doc.toString());
}

function localityLbOff(dir: string): void {
  const file = path.join(dir, 'catalog.yaml');
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  let found = 0;
  for (const doc of docs) {
    if ('errors' in doc && doc.errors.length > 0) throw doc.errors[0];
    if (doc.get('kind') !== 'DestinationRule' || doc.getIn(['metadata', 'name']) !== 'catalog') continue;
    doc.setIn(
      ['spec', 'trafficPolicy', 'loadBalancer', 'localityLbSetting'],
      doc.createNode({ enabled: false }),
    );
    found++;
  }
  if (found !== 1) throw new Error(`${file}: expected one DestinationRule catalog, found ${found}`);
  // Renamed into place: the control plane's watcher must never read half a file.
  fs.writeFileSync(`${file}.tmp`, docs.map((d) => d.toString().replace(/^---\n/, '')).join('---\n'));
  fs.renameSync(`${file}.tmp`, file);
}

function getText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

function waitExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function runPhase(
  dir: string,
  gatewayPort: number,
  dashboard: string,
  name: string,
  localityLb: boolean,
): Promise<Phase> {
  let out = '';
  const traffic = spawn(
    process.execPath,
    [
      path.join(dir, 'traffic.mjs'),
      ...['--url', `http://127.0.0.1:${gatewayPort}/`, '--rps', String(RPS), '--duration', String(SECONDS)],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  traffic.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await waitExit(traffic);
  if (code !== 0) throw new Error(`traffic.mjs exited ${code}:\n${out}`);
  const total = /^total: .*$/m.exec(out)?.[0] ?? '(no total line)';
  await sleep(SETTLE_MS);
  const api = await getText(`${dashboard}api/cost?window=${SECONDS}`);
  if (api.status !== 200) throw new Error(`/api/cost: HTTP ${api.status}: ${api.body.slice(0, 200)}`);
  const cli = await weft(['cost', dir, '-o', 'json', '--window', String(SECONDS)]);
  if (cli.code !== 0) throw new Error(`weft cost exited ${cli.code}: ${cli.err}`);
  console.log(`${name}: ${total}`);
  return {
    name,
    localityLb,
    traffic: total,
    api: JSON.parse(api.body) as CostResponse,
    cli: JSON.parse(cli.out) as CostResponse,
  };
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cost-shop-'));
  const [gatewayPort] = await freePorts(1);
  copyShop(dir, gatewayPort);
  spreadOverZones(dir);
  let out = '';
  const up = spawn(
    process.execPath,
    [...launcherNodeFlags(), WEFT, 'up', '--mode', 'explicit', '--first-ip', FIRST_IP, dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  up.stdout.on('data', (c: Buffer) => (out += c.toString()));
  up.stderr.on('data', (c: Buffer) => (out += c.toString()));
  let down = false;
  try {
    const started = Date.now();
    // The summary is written line by line: its last line says how to stop.
    while (!/stop: weft down/.test(out)) {
      if (up.exitCode !== null) throw new Error(`weft up exited ${up.exitCode}:\n${out}`);
      if (Date.now() - started > 120_000) throw new Error(`weft up not ready after 120 s:\n${out}`);
      await sleep(100);
    }
    const dashboard = /dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
    if (dashboard === undefined) throw new Error(`no dashboard URL in weft up's output:\n${out}`);
    while ((await getText(`http://127.0.0.1:${gatewayPort}/`)).status !== 200) {
      if (Date.now() - started > 120_000) throw new Error(`no 200 through the gateway:\n${out}`);
      await sleep(200);
    }
    const phases = [await runPhase(dir, gatewayPort, dashboard, 'locality LB on', true)];
    localityLbOff(dir);
    await sleep(PUSH_MS);
    phases.push(await runPhase(dir, gatewayPort, dashboard, 'locality LB off', false));
    const r = await weft(['down', dir]);
    down = r.code === 0;
    if (!down) console.error(`weft down exited ${r.code}: ${r.err}`);
    writeResults(phases);
  } finally {
    if (!down && up.exitCode === null) await weft(['down', dir]).catch(() => undefined);
    if (up.exitCode === null) await Promise.race([waitExit(up), sleep(30_000)]);
    if (up.exitCode === null) up.kill('SIGKILL');
    killLeftovers(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(2);
const usd = (n: number): string => `$${n.toFixed(4)}`;
const pct = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(1)}%`);
const short = (host: string): string => host.replace(/\.svc\.cluster\.local$/, '');
const allBytes = (f: CostFigures): number =>
  f.bytes.inZone + f.bytes.crossZone + f.bytes.crossRegion + f.bytes.unknown;

function writeResults(phases: Phase[]): void {
  const out = path.join(REPO, 'bench/results');
  fs.mkdirSync(out, { recursive: true });
  const json = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.cpus().length,
    node: process.version,
    secondsPerPhase: SECONDS,
    rps: RPS,
    firstIp: FIRST_IP,
    changesFromShippedDemo: CHANGES,
    prices: DEFAULT_PRICES,
    phases,
  };
  fs.writeFileSync(path.join(out, 'cost-shop-latest.json'), JSON.stringify(json, null, 2) + '\n');
  const totals = phases.map((p) => {
    const f = p.api.total;
    const share = (k: 'inZone' | 'crossZone' | 'crossRegion' | 'unknown'): string =>
      `${mib(f.bytes[k])} (${pct(f.bytesPct?.[k])})`;
    const requests = f.requests.inZone + f.requests.crossZone + f.requests.crossRegion + f.requests.unknown;
    return (
      `| ${p.name} | ${p.traffic.replace(/^total: /, '').replace(/\|/g, '/')} | ${requests} | ` +
      `${mib(allBytes(f))} | ${share('inZone')} | ${share('crossZone')} | ${share('crossRegion')} | ` +
      `${share('unknown')} | ${usd(f.monthlyCost)} | ` +
      `${f.uniform ? `${pct(f.uniform.bytesPct?.crossZone)}, ${usd(f.uniform.monthlyCost)}${f.uniform.partial ? ' (partial)' : ''}` : '-'} | ` +
      `${usd(p.cli.total.monthlyCost)} |`
    );
  });
  const keys = [
    ...new Set(phases.flatMap((p) => p.api.edges.map((e) => `${e.source} → ${short(e.service)}`))),
  ].sort();
  const edgeRows = keys.map((k) => {
    const cells = phases.map((p) => {
      const e = p.api.edges.find((x) => `${x.source} → ${short(x.service)}` === k);
      if (e === undefined) return '- | -';
      const unknown = e.bytesPct?.unknown ? ` (unknown locality ${pct(e.bytesPct.unknown)})` : '';
      return `${pct(e.bytesPct?.crossZone)}${unknown}, ${mib(allBytes(e))} MiB | ${pct(e.uniform?.bytesPct?.crossZone)}`;
    });
    return `| ${k} | ${cells.join(' | ')} |`;
  });
  const md = `# Cross-zone bytes and estimated cost on the shop demo, with and without locality-aware routing

${json.date} · ${json.cpus} CPUs · Node ${json.node} · \`npm run bench:cost-shop\` (bench/up/cost-shop.ts)

\`weft up --mode explicit --first-ip ${FIRST_IP}\` on a copy of examples/shop, changed from the shipped demo so:
${CHANGES.map((c) => `- ${c}`).join('\n')}

Same load, same run: examples/shop/traffic.mjs at ${RPS} requests/s through the gateway for ${SECONDS} s per
phase; phase 1 with the catalog DestinationRule as shipped (it has outlierDetection, so Istio's default
locality failover applies), phase 2 with locality LB turned off in it (then ${PUSH_MS / 1000} s for the push).
${SETTLE_MS / 1000} s after each phase's load ends: the dashboard's \`/api/cost?window=${SECONDS}\` (the figures below) and
\`weft cost DIR -o json --window ${SECONDS}\` (its $/month in the last column, a cross-check). The window is the
collector's last ${SECONDS} s (5 s scrapes), so it takes in the ${SETTLE_MS / 1000} idle seconds after the load and misses about as much of its
start (the gateway → frontend requests it counts are the page loads it saw), and $/month is the window's rate
(extrapolated to 30 days). Requests (dashboard): every hop's requests in the window, summed over the edges. Bytes: request and response bytes counted by the client-side proxies (weft_locality_bytes_total).
Prices: $${DEFAULT_PRICES.interZonePerGb}/GB on each side of a zone crossing, $${DEFAULT_PRICES.interRegionPerGb}/GB across regions.
Uniform: the same bytes spread evenly over the endpoints each caller sees (no locality LB).

## Total (MiB, share of bytes)

| phase | traffic.mjs | requests, all hops (dashboard) | total MiB | in zone | cross-zone | cross-region | unknown locality | $/month | uniform: cross-zone, $/month | weft cost: $/month |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${totals.join('\n')}

## Per edge: cross-zone share of bytes

| edge | ${phases.map((p) => `${p.name}: cross-zone, bytes | ${p.name}: uniform`).join(' | ')} |
| --- | ${phases.map(() => '--- | ---').join(' | ')} |
${edgeRows.join('\n')}

Only an edge whose caller has a choice of endpoints in more than one zone can change between the phases: the
frontend → catalog (catalog in zone-a, catalog-flaky and catalog-b in zone-b, catalog-c in zone-c). The
frontend → reviews split is fixed by reviews.yaml's weights over one-endpoint subsets (v1 zone-a, v2 zone-b,
v3 zone-c); ratings and the frontend each have one endpoint (reviews-v1 does not call ratings). The gateway (zone-a)
reaches the one frontend in its own zone. The uniform
counterfactual spreads over all of a service's endpoints and ignores subsets, so for frontend → reviews (and in
the totals) it overstates what turning locality LB off would do: the canary weights, not the load balancer,
pick the zone there. With locality LB off, frontend → catalog stays under the uniform 75% because outlier
detection ejects the flaky zone-b replica for part of the phase.
`;
  fs.writeFileSync(path.join(out, 'cost-shop-latest.md'), md);
  process.stdout.write(md);
}

await main();
