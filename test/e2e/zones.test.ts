/**
 * Issue #8's three zones, for real: zone-a, zone-b and zone-c are network namespaces (veths to a bridge,
 * netem delay on the way out of each zone), each running two replicas of one HTTP service behind their own
 * Weft sidecars, which register themselves with their locality; the Weft control plane runs in the host
 * namespace. A client sidecar in zone-a, driven by the test, shows locality load balancing keeping traffic
 * in the zone, failing over when the zone's replicas fail (outlier detection), coming back when they
 * recover — and its weft_locality_bytes_total matching the bytes that went to each zone. The control plane's
 * dashboard scrapes the client sidecar: its /api/cost, and `weft cost`, must report the bytes those
 * counters say crossed zones, and price the uniform spread over 2 replicas in each of 3 zones as 2/3 crossing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { CostResponse } from '../../src/dashboard/types.ts';
import { startDashboard } from '../../src/dashboard/server.ts';
import type { Dashboard } from '../../src/dashboard/server.ts';
import { waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import {
  canBuildZones,
  createZones,
  spawnInZone,
  spawnWeftProxyInZone,
  ZONE_APP as APP,
  zoneServiceMesh,
  ZONE_HOST,
  ZONE_NAMES,
  ZONE_OUTBOUND,
  ZONE_PORT,
  ZONE_PROMETHEUS,
  zoneReplicas,
} from '../support/zones.ts';
import type { Zone, ZoneName, ZoneNetwork } from '../support/zones.ts';
import { weft } from '../support/weft-cli.ts';

const SUBNET = '198.18.250';
const HOST = ZONE_HOST;
const PORT = ZONE_PORT;
const CLIENT_IP = `${SUBNET}.10`;
const OUTBOUND = ZONE_OUTBOUND;
const PROMETHEUS = ZONE_PROMETHEUS;
const ZONES = ZONE_NAMES;
const REPLICAS = zoneReplicas(SUBNET);
/** Response bodies differ in size per zone, so bytes credited to the wrong zone cannot cancel out. */
const BODY_SIZE: Record<ZoneName, number> = { 'zone-a': 1000, 'zone-b': 1500, 'zone-c': 2000 };
const REQUEST_BODY = 'q'.repeat(700);

/** Bytes per zone as this side of the client sidecar saw them. */
interface Tally {
  requests: number;
  /** The request as sent: header names and values, :method and :path, body. */
  requestBytes: number;
  /** Response bodies. */
  responseBodyBytes: number;
}

describe('three zones in network namespaces', { timeout: 120_000, skip: !canBuildZones() }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-zones-'));
  let net: ZoneNetwork | undefined;
  let cp: ControlPlane | undefined;
  let dashboard: Dashboard | undefined;
  const processes: ProxyProcess[] = [];
  const apps = new Map<ZoneName, ProxyProcess>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const tally = new Map<string, Tally>();
  let local = 0;

  /** One request through the client sidecar, credited to the zone whose app answered (none: not counted). */
  const call = async (): Promise<{ status: number; zone: string | undefined }> => {
    const headers: Record<string, string> = {
      host: `${HOST}:${PORT}`,
      'content-length': String(REQUEST_BODY.length),
      'content-type': 'text/plain',
      // Sent by the test so the sidecar keeps them as they are: their bytes are then the test's to count.
      'x-forwarded-proto': 'http',
      'x-request-id': `zones-${String(local++).padStart(30, '0')}`,
      connection: 'keep-alive',
    };
    const reqPath = '/zone';
    const reply = await new Promise<{ status: number; zone: string | undefined; body: number }>(
      (resolve, reject) => {
        const req = http.request(
          { host: CLIENT_IP, port: OUTBOUND, method: 'POST', path: reqPath, headers, agent },
          (res) => {
            let body = 0;
            res.on('data', (c: Buffer) => (body += c.length));
            res.on('end', () => {
              const z = res.headers['x-zone'];
              resolve({ status: res.statusCode ?? 0, zone: typeof z === 'string' ? z : undefined, body });
            });
            res.on('error', reject);
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
        req.on('error', reject);
        req.end(REQUEST_BODY);
      },
    );
    if (reply.zone !== undefined) {
      let t = tally.get(reply.zone);
      if (t === undefined)
        tally.set(reply.zone, (t = { requests: 0, requestBytes: 0, responseBodyBytes: 0 }));
      t.requests++;
      let h = 7 + 'POST'.length + 5 + reqPath.length + REQUEST_BODY.length;
      for (const [k, v] of Object.entries(headers)) h += k.length + v.length;
      t.requestBytes += h;
      t.responseBodyBytes += reply.body;
    }
    return { status: reply.status, zone: reply.zone };
  };
  const sample = async (n: number): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const { status, zone } = await call();
      const who = status === 200 ? (zone ?? 'none') : `${status} ${zone ?? ''}`;
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    return counts;
  };
  const scrape = async (): Promise<string> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: CLIENT_IP, port: PROMETHEUS, path: '/stats/prometheus', agent: false }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    });
  const cost = async (query = ''): Promise<CostResponse> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: net!.hostIp, port: dashboard!.port, path: `/api/cost${query}`, agent: false }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`/api/cost: HTTP ${res.statusCode}: ${s}`));
            else resolve(JSON.parse(s) as CostResponse);
          });
        })
        .on('error', reject);
    });
  /** The client's weft_locality_bytes_total for zones.default per destination zone, both directions. */
  const countedBytes = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    const re =
      /^weft_locality_bytes_total\{source_region="region1",source_zone="zone-a",destination_region="region1",destination_zone="([^"]+)",destination_service="zones\.default\.svc\.cluster\.local",request_protocol="http",direction="(?:request|response)"\} (\d+)$/gm;
    for (const m of (await scrape()).matchAll(re)) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
    return out;
  };
  const signalApp = async (zone: ZoneName, signal: NodeJS.Signals, ack: string): Promise<void> => {
    const app = apps.get(zone)!;
    const before = app.output().split(ack).length;
    app.kill(signal);
    await waitFor(() => app.output().split(ack).length > before, 5000, `${zone} app: ${ack}`);
  };

  before(async () => {
    const started = Date.now();
    net = createZones({
      subnet: SUBNET,
      delayMs: 2,
      zones: ZONES.map((z) => ({
        name: z,
        ips: [
          ...(z === 'zone-a' ? [CLIENT_IP] : []),
          ...REPLICAS.filter((r) => r.zone === z).map((r) => r.ip),
        ],
      })),
    });
    fs.writeFileSync(
      path.join(dir, 'mesh.yaml'),
      zoneServiceMesh({ host: HOST, port: PORT, replicas: REPLICAS, localityLb: true }),
    );
    cp = new ControlPlane({ configPaths: [dir], host: net.hostIp, xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const { xdsPort } = await cp.start();
    // Scrapes every second, so the test need not wait 5 s for the dashboard to catch up with the counters.
    dashboard = await startDashboard({
      ads: cp.ads,
      configPaths: [dir],
      port: 0,
      host: net.hostIp,
      intervalMs: 1000,
    });
    const xds = `${net.hostIp}:${xdsPort}`;
    const zone = (name: ZoneName): Zone => net!.zone(name);

    for (const z of ZONES) {
      const app = spawnInZone(zone(z), [
        process.execPath,
        '-e',
        APP,
        z,
        String(BODY_SIZE[z]),
        ...REPLICAS.filter((r) => r.zone === z).map((r) => String(r.appPort)),
      ]);
      apps.set(z, app);
      processes.push(app);
    }
    // The replicas' sidecars share their zone's namespace: each gets its own admin and outbound ports.
    REPLICAS.forEach((r, i) => {
      processes.push(
        spawnWeftProxyInZone(zone(r.zone), [
          ...['--xds-address', xds, '--type', 'sidecar', '--name', `zones-${r.id}`, '--ip', r.ip],
          ...['--labels', `app=zones,replica=${r.id}`, '--locality', `region1/${r.zone}`],
          ...['--admin-port', String(15100 + i), '--prometheus-port', '0', '--health-port', '0'],
          ...['--metadata', `WEFT_OUTBOUND_PORT=${15200 + i}`, '--drain-time-s', '0'],
        ]),
      );
    });
    processes.push(
      spawnWeftProxyInZone(zone('zone-a'), [
        ...['--xds-address', xds, '--type', 'sidecar', '--name', 'client', '--ip', CLIENT_IP],
        ...['--labels', 'app=client', '--locality', 'region1/zone-a'],
        ...['--admin-port', '15000', '--prometheus-port', String(PROMETHEUS), '--health-port', '0'],
        ...['--metadata', `WEFT_OUTBOUND_PORT=${OUTBOUND}`, '--metadata', `WEFT_OUTBOUND_BIND=${CLIENT_IP}`],
        // Where the dashboard scrapes it: its Prometheus listener, which serves the admin's /stats/prometheus.
        ...['--metadata', `WEFT_ADMIN_ADDRESS=${CLIENT_IP}:${PROMETHEUS}`],
        ...['--drain-time-s', '0'],
      ]),
    );
    for (const app of apps.values()) await waitFor(() => app.output().includes('ready'), 10_000, 'zone apps');
    // Every replica is an endpoint of the client's cluster, and zone-a answers.
    await waitFor(
      async () => /envoy_cluster_membership_total\{[^}]*zones\.default[^}]*\} 6$/m.test(await scrape()),
      30_000,
      'the client sidecar to know all six replicas',
    );
    // The dashboard's first scrape of a proxy is its baseline: taken before any traffic, it misses nothing.
    await waitFor(
      () => dashboard!.collector.scrapedAt(`${CLIENT_IP}:${PROMETHEUS}`) !== undefined,
      10_000,
      'the dashboard to scrape the client sidecar',
    );
    await waitFor(async () => (await call()).zone === 'zone-a', 10_000, 'zone-a to answer');
    console.log(
      `# zones ready in ${Date.now() - started} ms (netem delay: ${net.delayed ? '2 ms' : 'unavailable'})`,
    );
  });

  after(async () => {
    agent.destroy();
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await dashboard?.stop();
    await cp?.stop();
    net?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
    if (net !== undefined) assert.deepEqual(net.leftovers(), [], 'nothing of the run is left in the kernel');
  });

  it('keeps at least 95% of 400 requests in zone-a while its replicas are healthy', async () => {
    const counts = await sample(400);
    assert.ok((counts.get('zone-a') ?? 0) >= 380, JSON.stringify([...counts]));
    // The cost view sees the same: the edge client → zones keeps ≥ 95% of its bytes and requests in zone.
    const requests = [...tally.values()].reduce((n, t) => n + t.requests, 0);
    let r: CostResponse | undefined;
    await waitFor(
      async () => {
        r = await cost();
        const e = r.edges.find((x) => x.service === HOST);
        return (
          e !== undefined && e.requests.inZone + e.requests.crossZone + e.requests.crossRegion === requests
        );
      },
      10_000,
      `/api/cost to count the ${requests} requests`,
    );
    const edge = r!.edges.find((x) => x.service === HOST)!;
    assert.equal(edge.source, 'default/client');
    assert.ok(edge.bytesPct!.inZone >= 95, JSON.stringify(edge.bytesPct));
    assert.ok(edge.requestsPct!.inZone >= 95, JSON.stringify(edge.requestsPct));
  });

  it('fails over to zone-b/zone-c when zone-a fails, and comes back when it recovers', async () => {
    await signalApp('zone-a', 'SIGUSR1', 'failing');
    const failed = Date.now();
    // A 503 ejects a replica at once (consecutive5xxErrors: 1); with both gone, priority 1 (the region's other
    // zones) takes the traffic. Bounded well inside baseEjectionTime (5 s).
    await waitFor(
      async () => {
        const { status, zone } = await call();
        return status === 200 && zone !== 'zone-a';
      },
      3000,
      'failover out of zone-a',
    );
    const failedOver = Date.now() - failed;
    const away = await sample(100);
    assert.deepEqual(
      [...away.keys()].filter((k) => k !== 'zone-b' && k !== 'zone-c'),
      [],
      JSON.stringify([...away]),
    );

    await signalApp('zone-a', 'SIGUSR2', 'healthy');
    const healed = Date.now();
    // The ejections end after baseEjectionTime, at the next interval sweep (1 s).
    await waitFor(async () => (await sample(20)).get('zone-a') === 20, 15_000, 'traffic back in zone-a');
    console.log(
      `# failed over in ${failedOver} ms; back in zone-a ${Date.now() - healed} ms after it healed`,
    );
    const back = await sample(100);
    assert.equal(back.get('zone-a'), 100, JSON.stringify([...back]));
  });

  it("the client sidecar's weft_locality_bytes_total matches the bytes that went to each zone", async () => {
    const text = await scrape();
    assert.match(text, /^# TYPE weft_locality_bytes_total counter$/m);
    const counter = (zone: string, direction: string): number => {
      const re = new RegExp(
        `^weft_locality_bytes_total\\{source_region="region1",source_zone="zone-a",` +
          `destination_region="region1",destination_zone="${zone}",` +
          `destination_service="${HOST.replaceAll('.', '\\.')}",request_protocol="http",` +
          `direction="${direction}"\\} (\\d+)$`,
        'm',
      );
      return Number(re.exec(text)?.[1] ?? 0);
    };
    const seen = [...tally.keys()].sort();
    assert.ok(
      seen.includes('zone-a') && seen.some((z) => z !== 'zone-a'),
      `zones answered: ${seen.join(', ')}`,
    );
    // Zones that never answered have no series.
    for (const z of ZONES) if (!tally.has(z)) assert.equal(counter(z, 'request'), 0);

    // Requests: the test counts what it sent; the sidecar also counts the headers its filters added before
    // istio.stats (x-envoy-peer-metadata and -id, and nothing per request that varies in size), so the
    // difference is one constant per request, whichever zone served it.
    const a = tally.get('zone-a')!;
    const extra = (counter('zone-a', 'request') - a.requestBytes) / a.requests;
    assert.ok(Number.isInteger(extra) && extra >= 0 && extra <= 2048, `${extra} bytes added per request`);
    // Responses: the bodies exactly, plus the response headers as the sidecar received them from the
    // replica's sidecar — this side does not see them so (the client sidecar drops the peer metadata and
    // hop-by-hop headers, adds its own). Every replica sends the same header set with values of the same
    // length (equal-length names and IPs, a fixed-width date), except x-envoy-upstream-service-time, 1–3
    // digits: per response, at least :status, content-type, content-length, x-zone and x-replica as the app
    // set them, and the same across zones within 2 bytes on average.
    const perResponse = new Map<string, number>();
    for (const [z, t] of tally) {
      assert.equal(counter(z, 'request'), t.requestBytes + t.requests * extra, `${z}: request bytes`);
      const res = (counter(z, 'response') - t.responseBodyBytes) / t.requests;
      perResponse.set(z, res);
      const least = 10 + 12 + 10 + 14 + 4 + 6 + z.length + 9 + 2;
      assert.ok(res >= least && res <= 2048, `${z}: ${res} response header bytes per response`);
    }
    const spread = Math.max(...perResponse.values()) - Math.min(...perResponse.values());
    assert.ok(spread <= 2, `response header bytes per response by zone: ${JSON.stringify([...perResponse])}`);
    console.log(
      `# ${[...tally].map(([z, t]) => `${z}: ${t.requests} requests, ${perResponse.get(z)!.toFixed(1)} response header bytes each`).join('; ')}; ${extra} request header bytes added per request`,
    );
  });

  it('/api/cost and `weft cost` report the bytes the counters say crossed, and the uniform 2/3', async () => {
    const counted = await countedBytes();
    const inZone = counted.get('zone-a') ?? 0;
    const crossZone = (counted.get('zone-b') ?? 0) + (counted.get('zone-c') ?? 0);
    assert.ok(crossZone > 0, 'the failover phase crossed zones');
    // The counters no longer move: the dashboard converges to them within a few scrapes.
    let r: CostResponse | undefined;
    await waitFor(
      async () => {
        r = await cost();
        return r.total.bytes.crossZone === crossZone && r.total.bytes.inZone === inZone;
      },
      10_000,
      `/api/cost to report ${crossZone} bytes across zones and ${inZone} in zone-a`,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last: ${JSON.stringify(r?.total.bytes)}`);
    });
    const t = r!.total;
    assert.equal(t.bytes.crossRegion, 0);
    assert.equal(t.bytes.unknown, 0);
    const requests = [...tally.values()].reduce((n, x) => n + x.requests, 0);
    assert.equal(t.requests.inZone + t.requests.crossZone, requests, 'requests that reached an app');
    assert.equal(
      t.requests.crossZone,
      (tally.get('zone-b')?.requests ?? 0) + (tally.get('zone-c')?.requests ?? 0),
    );
    // At $0.01/GB on each side: the rate over the window, for 30 days.
    const month = (((crossZone / r!.windowSeconds) * 30 * 86_400) / 2 ** 30) * 2 * 0.01;
    assert.ok(Math.abs(t.monthlyCost - month) <= 1e-9 * Math.max(1, month), `${t.monthlyCost} vs ${month}`);
    // Uniform over the 6 replicas, 2 in zone-a: 2/3 of the same bytes would have crossed.
    assert.ok(t.uniform !== null && !t.uniform.partial, JSON.stringify(t.uniform));
    const all = inZone + crossZone;
    assert.ok(
      Math.abs(t.uniform.bytes.crossZone - (2 * all) / 3) < 1e-6 * all,
      JSON.stringify(t.uniform.bytes),
    );
    // (Not cheaper than what ran: the failover phase sent most requests out of zone-a on purpose.)
    const uniformMonth = ((((2 * all) / 3 / r!.windowSeconds) * 30 * 86_400) / 2 ** 30) * 2 * 0.01;
    assert.ok(
      Math.abs(t.uniform.monthlyCost - uniformMonth) <= 1e-6 * uniformMonth,
      `${t.uniform.monthlyCost}`,
    );
    // Other prices through the query string.
    const priced = await cost('?zone=0.02&region=0.05');
    assert.deepEqual(priced.prices, { interZonePerGb: 0.02, interRegionPerGb: 0.05 });

    // `weft cost` from the build, against the same dashboard: the same numbers as JSON, and a table.
    const url = `http://${net!.hostIp}:${dashboard!.port}`;
    const json = await weft(['cost', '--dashboard', url, '-o', 'json']);
    assert.equal(json.code, 0, json.err);
    const fromCli = JSON.parse(json.out) as CostResponse;
    assert.equal(fromCli.total.bytes.crossZone, crossZone);
    assert.equal(fromCli.total.bytes.inZone, inZone);
    const table = await weft(['cost', '--dashboard', url]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^SOURCE\s+SERVICE\s+IN ZONE\s+CROSS-ZONE/m);
    assert.match(table.out, new RegExp(`^default/client\\s+${HOST.replaceAll('.', '\\.')}\\s`, 'm'));
    assert.match(table.out, /^TOTAL\s/m);
    const down = await weft(['cost', '--dashboard', 'http://127.0.0.1:1']);
    assert.notEqual(down.code, 0);
    assert.match(down.err, /cannot reach the dashboard at http:\/\/127\.0\.0\.1:1/);
    console.log(
      `# cost: ${inZone} B in zone, ${crossZone} B across zones over ${r!.windowSeconds} s; ` +
        `uniform: ${Math.round(t.uniform.bytes.crossZone)} B across`,
    );
  });
});
