/**
 * `npm run bench:cost`: cross-zone bytes and their estimated cost for the same load with and without
 * locality-aware routing, in one run. Three zones as network namespaces (test/support/zones.ts), two
 * replicas of one HTTP service in each, a client sidecar in zone-a driven at a fixed concurrency for
 * COST_SECONDS (default 15) per phase: first with `localityLbSetting: {enabled: true}`, then the
 * DestinationRule rewritten to `enabled: false` (the control plane watches its config dir). Bytes are the
 * client sidecar's weft_locality_bytes_total, as deltas over each phase; the prices and the uniform
 * counterfactual are the cost model's (src/cost/model.ts), and the control plane's /api/cost is read for
 * the same phases as a cross-check. Needs root (ip netns) and the build (`npm run build`).
 *
 * Writes bench/results/cost-latest.{md,json}.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { costReport, DEFAULT_PRICES } from '../../src/cost/model.ts';
import type { CostFigures, Flow, ServiceEndpoints } from '../../src/cost/model.ts';
import { startDashboard } from '../../src/dashboard/server.ts';
import type { CostResponse } from '../../src/dashboard/types.ts';
import { REPO, waitFor } from '../../test/support/proxy.ts';
import type { ProxyProcess } from '../../test/support/proxy.ts';
import {
  canBuildZones,
  createZones,
  spawnInZone,
  spawnWeftProxyInZone,
  ZONE_APP,
  zoneServiceMesh,
  ZONE_HOST,
  ZONE_NAMES,
  ZONE_OUTBOUND,
  ZONE_PORT,
  ZONE_PROMETHEUS,
  zoneReplicas,
} from '../../test/support/zones.ts';

const SUBNET = '198.18.251';
const HOST = ZONE_HOST;
const PORT = ZONE_PORT;
const CLIENT_IP = `${SUBNET}.10`;
const OUTBOUND = ZONE_OUTBOUND;
const PROMETHEUS = ZONE_PROMETHEUS;
const ZONES = ZONE_NAMES;
const REPLICAS = zoneReplicas(SUBNET);
const SECONDS = Number(process.env.COST_SECONDS ?? 15);
const CONCURRENCY = Number(process.env.COST_CONCURRENCY ?? 8);
/** A product-page-like exchange: a small request, a 4 KiB answer. */
const RESPONSE_SIZE = 4096;
const REQUEST_BODY = 'q'.repeat(256);

interface Phase {
  name: string;
  localityLb: boolean;
  seconds: number;
  requests: number;
  errors: number;
  /** Client sidecar bytes per destination zone, both directions, over the phase. */
  bytesByZone: Record<string, number>;
  figures: CostFigures;
  /** /api/cost over the same phase, as the dashboard computed it. */
  dashboard: {
    crossZoneBytes: number;
    inZoneBytes: number;
    monthlyCost: number;
    uniformMonthlyCost: number | null;
  };
}

function get(host: string, port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path: p, agent: false }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      })
      .on('error', reject);
  });
}

async function counters(): Promise<Map<string, number>> {
  const text = await get(CLIENT_IP, PROMETHEUS, '/stats/prometheus?filter=weft_locality_bytes');
  const out = new Map<string, number>();
  const re = /^weft_locality_bytes_total\{[^}]*destination_zone="([^"]+)"[^}]*\} (\d+)$/gm;
  for (const m of text.matchAll(re)) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
  return out;
}

async function main(): Promise<void> {
  if (!canBuildZones()) throw new Error('bench:cost needs root and ip(8): it builds network namespaces');
  if (!fs.existsSync(path.join(REPO, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cost-'));
  const meshFile = path.join(dir, 'mesh.yaml');
  const writeMesh = (localityLb: boolean): void => {
    // Renamed into place: the watcher must never read half a file.
    fs.writeFileSync(
      `${meshFile}.tmp`,
      zoneServiceMesh({ host: HOST, port: PORT, replicas: REPLICAS, localityLb }),
    );
    fs.renameSync(`${meshFile}.tmp`, meshFile);
  };
  const net = createZones({
    subnet: SUBNET,
    delayMs: 2,
    zones: ZONES.map((z) => ({
      name: z,
      ips: [...(z === 'zone-a' ? [CLIENT_IP] : []), ...REPLICAS.filter((r) => r.zone === z).map((r) => r.ip)],
    })),
  });
  const processes: ProxyProcess[] = [];
  let cp: ControlPlane | undefined;
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    writeMesh(true);
    cp = new ControlPlane({ configPaths: [dir], host: net.hostIp, xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const { xdsPort } = await cp.start();
    dashboard = await startDashboard({
      ads: cp.ads,
      configPaths: [dir],
      port: 0,
      host: net.hostIp,
      intervalMs: 1000,
    });
    const xds = `${net.hostIp}:${xdsPort}`;
    for (const z of ZONES) {
      const ports = REPLICAS.filter((r) => r.zone === z).map((r) => String(r.appPort));
      processes.push(
        spawnInZone(net.zone(z), [process.execPath, '-e', ZONE_APP, z, String(RESPONSE_SIZE), ...ports]),
      );
    }
    REPLICAS.forEach((r, i) =>
      processes.push(
        spawnWeftProxyInZone(net.zone(r.zone), [
          ...['--xds-address', xds, '--type', 'sidecar', '--name', `zones-${r.id}`, '--ip', r.ip],
          ...['--labels', `app=zones,replica=${r.id}`, '--locality', `region1/${r.zone}`],
          ...['--admin-port', String(15100 + i), '--prometheus-port', '0', '--health-port', '0'],
          ...['--metadata', `WEFT_OUTBOUND_PORT=${15200 + i}`, '--drain-time-s', '0'],
        ]),
      ),
    );
    processes.push(
      spawnWeftProxyInZone(net.zone('zone-a'), [
        ...['--xds-address', xds, '--type', 'sidecar', '--name', 'client', '--ip', CLIENT_IP],
        ...['--labels', 'app=client', '--locality', 'region1/zone-a'],
        ...['--admin-port', '15000', '--prometheus-port', String(PROMETHEUS), '--health-port', '0'],
        ...['--metadata', `WEFT_OUTBOUND_PORT=${OUTBOUND}`, '--metadata', `WEFT_OUTBOUND_BIND=${CLIENT_IP}`],
        ...['--metadata', `WEFT_ADMIN_ADDRESS=${CLIENT_IP}:${PROMETHEUS}`, '--drain-time-s', '0'],
      ]),
    );
    await waitFor(
      async () =>
        /envoy_cluster_membership_total\{[^}]*zones\.default[^}]*\} 6$/m.test(
          await get(CLIENT_IP, PROMETHEUS, '/stats/prometheus').catch(() => ''),
        ),
      30_000,
      'the client sidecar to know all six replicas',
    );

    const call = (): Promise<{ status: number; zone: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: CLIENT_IP,
            port: OUTBOUND,
            method: 'POST',
            path: '/product',
            agent,
            headers: { host: `${HOST}:${PORT}`, 'content-length': String(REQUEST_BODY.length) },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, zone: String(res.headers['x-zone']) }),
            );
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end(REQUEST_BODY);
      });
    await waitFor(
      async () => (await call().catch(() => ({ status: 0 }))).status === 200,
      10_000,
      'a first answer',
    );

    const endpoints: ServiceEndpoints[] = [
      {
        proxy: 'client',
        service: HOST,
        localities: ZONES.map((z) => ({ region: 'region1', zone: z, endpoints: 2 })),
      },
    ];
    const phases: Phase[] = [];
    for (const localityLb of [true, false]) {
      if (!localityLb) {
        writeMesh(false);
        // The push has landed when a request leaves zone-a (a uniform spread sends 2/3 away).
        await waitFor(
          async () => {
            for (let i = 0; i < 30; i++) if ((await call()).zone !== 'zone-a') return true;
            return false;
          },
          15_000,
          'locality LB off to reach the client sidecar',
        );
      }
      // Two scrapes of the dashboard pass, so its window starts after the change.
      await new Promise((r) => setTimeout(r, 2500));
      const before = await counters();
      const started = Date.now();
      let requests = 0;
      let errors = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (Date.now() - started < SECONDS * 1000) {
            const r = await call().catch(() => ({ status: 0, zone: '' }));
            requests++;
            if (r.status !== 200) errors++;
          }
        }),
      );
      const seconds = (Date.now() - started) / 1000;
      const after = await counters();
      const bytesByZone: Record<string, number> = {};
      for (const [z, v] of after) bytesByZone[z] = v - (before.get(z) ?? 0);
      const flows: Flow[] = Object.entries(bytesByZone).map(([z, bytes]) => ({
        source: 'default/client',
        proxy: 'client',
        service: HOST,
        from: { region: 'region1', zone: 'zone-a' },
        to: { region: 'region1', zone: z },
        bytes,
        requests: 0,
      }));
      const figures = costReport(flows, endpoints, seconds).total;
      // The dashboard's view of the phase: its window reaches back over the idle seconds around it (so its
      // $/month, a rate over its longer window, is a little lower than the phase's own).
      await new Promise((r) => setTimeout(r, 2500));
      const api = JSON.parse(
        await get(net.hostIp, dashboard.port, `/api/cost?window=${Math.ceil(seconds + 4)}`),
      ) as CostResponse;
      phases.push({
        name: localityLb ? 'locality LB on' : 'locality LB off',
        localityLb,
        seconds,
        requests,
        errors,
        bytesByZone,
        figures,
        dashboard: {
          crossZoneBytes: api.total.bytes.crossZone,
          inZoneBytes: api.total.bytes.inZone,
          monthlyCost: api.total.monthlyCost,
          uniformMonthlyCost: api.total.uniform?.monthlyCost ?? null,
        },
      });
      console.log(`${phases.at(-1)!.name}: ${requests} requests, ${JSON.stringify(bytesByZone)}`);
    }
    writeResults(phases);
  } finally {
    agent.destroy();
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await dashboard?.stop();
    await cp?.stop();
    net.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
const usd = (n: number): string => `$${n.toFixed(2)}`;
const pct = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(1)}%`);

function writeResults(phases: Phase[]): void {
  const out = path.join(REPO, 'bench/results');
  fs.mkdirSync(out, { recursive: true });
  const json = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.cpus().length,
    node: process.version,
    secondsPerPhase: SECONDS,
    concurrency: CONCURRENCY,
    responseBytes: RESPONSE_SIZE,
    requestBodyBytes: REQUEST_BODY.length,
    prices: DEFAULT_PRICES,
    phases,
  };
  fs.writeFileSync(path.join(out, 'cost-latest.json'), JSON.stringify(json, null, 2) + '\n');
  const rows = phases.map((p) => {
    const f = p.figures;
    return (
      `| ${p.name} | ${p.requests} (${(p.requests / p.seconds).toFixed(0)}/s) | ${mib(f.bytes.inZone)} | ` +
      `${mib(f.bytes.crossZone)} | ${pct(f.bytesPct?.crossZone)} | ${usd(f.monthlyCost)} | ` +
      `${f.uniform ? `${pct(f.uniform.bytesPct?.crossZone)}, ${usd(f.uniform.monthlyCost)}` : '-'} | ` +
      `${mib(p.dashboard.crossZoneBytes)}, ${usd(p.dashboard.monthlyCost)} |`
    );
  });
  const md = `# Cross-zone bytes and estimated cost, with and without locality-aware routing

${json.date} · ${json.cpus} CPUs · Node ${json.node} · \`npm run bench:cost\` (bench/up/cost.ts)

Three zones (network namespaces, one region), two replicas of one HTTP service per zone, a client sidecar
in zone-a at ${CONCURRENCY} concurrent keep-alive connections for ${SECONDS} s per phase (a ${REQUEST_BODY.length}-byte
request, a ${RESPONSE_SIZE}-byte response). Same load, same run: first \`localityLbSetting: {enabled: true}\`,
then \`enabled: false\`. Bytes: the client sidecar's \`weft_locality_bytes_total\` over the phase (both
directions). Prices: $${DEFAULT_PRICES.interZonePerGb}/GB on each side of a zone crossing, $${DEFAULT_PRICES.interRegionPerGb}/GB across regions;
$/month is the phase's rate over 30 days. Uniform: the same bytes spread over the 6 endpoints (2 in zone-a).

| phase | requests | in zone (MiB) | cross-zone (MiB) | cross-zone share | $/month | uniform: cross-zone, $/month | /api/cost: cross-zone MiB, $/month |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
  fs.writeFileSync(path.join(out, 'cost-latest.md'), md);
  process.stdout.write(md);
}

await main();
