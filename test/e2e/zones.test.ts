/**
 * Issue #8's three zones, for real: zone-a, zone-b and zone-c are network namespaces (veths to a bridge,
 * netem delay on the way out of each zone), each running two replicas of one HTTP service behind their own
 * Weft sidecars, which register themselves with their locality; the Weft control plane runs in the host
 * namespace. A client sidecar in zone-a, driven by the test, shows locality load balancing keeping traffic
 * in the zone, failing over when the zone's replicas fail (outlier detection), coming back when they
 * recover — and its weft_locality_bytes_total matching the bytes that went to each zone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { canBuildZones, createZones, spawnInZone, spawnWeftProxyInZone } from '../support/zones.ts';
import type { Zone, ZoneNetwork } from '../support/zones.ts';

const SUBNET = '198.18.250';
const HOST = 'zones.default.svc.cluster.local';
const PORT = 8080;
const CLIENT_IP = `${SUBNET}.10`;
const OUTBOUND = 15001;
const PROMETHEUS = 15090;
const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
type ZoneName = (typeof ZONES)[number];
/** Replica n of zone z: its sidecar's IP (the zone's first address is its veth's), its app's port. */
const REPLICAS = ZONES.flatMap((z, zi) =>
  [1, 2].map((n) => ({
    zone: z,
    id: `${z.slice(-1)}${n}`,
    ip: `${SUBNET}.${(zi + 1) * 10 + n}`,
    appPort: 9000 + n,
  })),
);
/** Response bodies differ in size per zone, so bytes credited to the wrong zone cannot cancel out. */
const BODY_SIZE: Record<ZoneName, number> = { 'zone-a': 1000, 'zone-b': 1500, 'zone-c': 2000 };
const REQUEST_BODY = 'q'.repeat(700);

/**
 * The zone's app: two servers (its replicas) on 127.0.0.1, answering their zone and replica in x-zone /
 * x-replica and a body of the zone's size; SIGUSR1 makes them answer 503, SIGUSR2 heals them.
 */
const APP = `
const http = require('node:http');
const [zone, size, ...ports] = process.argv.slice(1);
let failing = false;
process.on('SIGUSR1', () => { failing = true; console.log('failing'); });
process.on('SIGUSR2', () => { failing = false; console.log('healthy'); });
let listening = 0;
for (const [i, port] of ports.entries()) {
  const replica = zone.slice(-1) + (i + 1);
  http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = (zone + ' ' + replica + ' ').padEnd(Number(size), '.');
      res.writeHead(failing ? 503 : 200, {
        'content-type': 'text/plain', 'content-length': body.length, 'x-zone': zone, 'x-replica': replica,
      });
      res.end(body);
    });
  }).listen(Number(port), '127.0.0.1', () => { if (++listening === ports.length) console.log('ready'); });
}
`;

function mesh(): string {
  const sidecars = REPLICAS.map(
    (r) => `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: zones-${r.id}}
spec:
  workloadSelector: {labels: {app: zones, replica: ${r.id}}}
  ingress:
  - port: {number: ${PORT}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${r.appPort}
`,
  ).join('');
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zones}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${PORT}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: zones}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: zones}
spec:
  host: ${HOST}
  trafficPolicy:
    # maxEjectionPercent: Istio's default (10%) would eject one host of six, never a whole zone.
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 100}
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {enabled: true}
${sidecars}`;
}

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
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh());
    cp = new ControlPlane({ configPaths: [dir], host: net.hostIp, xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const { xdsPort } = await cp.start();
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
    await waitFor(async () => (await call()).zone === 'zone-a', 10_000, 'zone-a to answer');
    console.log(
      `# zones ready in ${Date.now() - started} ms (netem delay: ${net.delayed ? '2 ms' : 'unavailable'})`,
    );
  });

  after(async () => {
    agent.destroy();
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await cp?.stop();
    net?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
    if (net !== undefined) assert.deepEqual(net.leftovers(), [], 'nothing of the run is left in the kernel');
  });

  it('keeps at least 95% of 400 requests in zone-a while its replicas are healthy', async () => {
    const counts = await sample(400);
    assert.ok((counts.get('zone-a') ?? 0) >= 380, JSON.stringify([...counts]));
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
          `destination_region="region1",destination_zone="${zone}",request_protocol="http",` +
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
});
