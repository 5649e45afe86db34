/**
 * "Zones" for end-to-end tests: network namespaces joined by veth pairs to a bridge in the host namespace,
 * each with netem delay on its side of the veth so that leaving a zone costs a few ms (traffic within a zone
 * stays on its loopback). Everything a run creates carries its random suffix, so `destroy()` and
 * `leftovers()` find exactly that run's namespaces, links and qdiscs — even after a failure half-way.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { launcherNodeFlags, REPO, tracked } from './proxy.ts';
import type { ProxyProcess } from './proxy.ts';

export interface ZoneSpec {
  /** e.g. "zone-a": the namespace is `${name}-${suffix}`. */
  readonly name: string;
  /** Addresses (in the network's /24) the zone's workloads listen on; the first is the veth's own. */
  readonly ips: readonly string[];
}

export interface Zone extends ZoneSpec {
  readonly netns: string;
  /** The veth end in the host namespace (on the bridge) and the one in the zone. */
  readonly hostVeth: string;
  readonly zoneVeth: string;
}

export interface ZoneNetwork {
  readonly suffix: string;
  readonly bridge: string;
  /** The bridge's address: how the zones reach the host namespace (the control plane). */
  readonly hostIp: string;
  readonly zones: readonly Zone[];
  /** Whether netem delay could be set (a kernel without sch_netem has none; the zones work without it). */
  readonly delayed: boolean;
  zone(name: string): Zone;
  /** Removes every namespace, link and qdisc of the run; safe to call twice and after a partial setup. */
  destroy(): void;
  /** What of the run is still in the kernel (empty after destroy()). */
  leftovers(): string[];
}

function run(cmd: string, args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function must(cmd: string, args: readonly string[]): string {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out.trim()}`);
  return r.out;
}

/** Whether this process may build namespaces (root with ip(8)): the zones tests skip otherwise. */
export function canBuildZones(): boolean {
  return process.getuid?.() === 0 && run('ip', ['netns', 'list']).ok;
}

/**
 * Builds the zones on `subnet` (a /24 given as its first three octets, e.g. "198.18.250"): the bridge
 * takes .1, each zone its `ips`. `delayMs` of netem on each zone's veth (egress from the zone).
 */
export function createZones(o: { subnet: string; zones: readonly ZoneSpec[]; delayMs: number }): ZoneNetwork {
  const suffix = Math.random().toString(16).slice(2, 8).padEnd(6, '0');
  // Interface names are at most 15 bytes: "wzb" + 6 and "wzh"/"wzn" + 6 + a zone index.
  const bridge = `wzb${suffix}`;
  const hostIp = `${o.subnet}.1`;
  const zones: Zone[] = o.zones.map((z, i) => ({
    ...z,
    netns: `${z.name}-${suffix}`,
    hostVeth: `wzh${suffix}${i}`,
    zoneVeth: `wzn${suffix}${i}`,
  }));
  let delayed = o.delayMs > 0;

  const destroy = (): void => {
    // Deleting a namespace deletes the veth end in it, and with it the peer on the bridge; the explicit
    // deletes below are for a setup that failed before a veth was moved into its namespace.
    for (const z of zones) {
      run('ip', ['netns', 'delete', z.netns]);
      run('ip', ['link', 'delete', z.hostVeth]);
    }
    run('ip', ['link', 'delete', bridge]);
  };

  const leftovers = (): string[] => {
    const out: string[] = [];
    for (const line of run('ip', ['netns', 'list']).out.split('\n'))
      if (line.includes(suffix)) out.push(`netns ${line.trim()}`);
    for (const line of run('ip', ['-o', 'link', 'show']).out.split('\n'))
      if (line.includes(suffix)) out.push(`link ${line.split(':')[1]?.trim()}`);
    for (const line of run('tc', ['qdisc', 'show']).out.split('\n'))
      if (line.includes(suffix)) out.push(`qdisc ${line.trim()}`);
    return out;
  };

  try {
    if (run('ip', ['-o', 'addr', 'show']).out.includes(` ${hostIp}/`))
      throw new Error(`${hostIp} is already in use: another run of the zones test, or a leftover`);
    must('ip', ['link', 'add', bridge, 'type', 'bridge']);
    must('ip', ['addr', 'add', `${hostIp}/24`, 'dev', bridge]);
    must('ip', ['link', 'set', bridge, 'up']);
    for (const z of zones) {
      must('ip', ['netns', 'add', z.netns]);
      must('ip', ['link', 'add', z.hostVeth, 'type', 'veth', 'peer', 'name', z.zoneVeth]);
      must('ip', ['link', 'set', z.zoneVeth, 'netns', z.netns]);
      must('ip', ['link', 'set', z.hostVeth, 'master', bridge]);
      must('ip', ['link', 'set', z.hostVeth, 'up']);
      must('ip', ['-n', z.netns, 'link', 'set', 'lo', 'up']);
      for (const ip of z.ips) must('ip', ['-n', z.netns, 'addr', 'add', `${ip}/24`, 'dev', z.zoneVeth]);
      must('ip', ['-n', z.netns, 'link', 'set', z.zoneVeth, 'up']);
      if (delayed) {
        const r = run('ip', [
          ...['netns', 'exec', z.netns, 'tc', 'qdisc', 'add', 'dev', z.zoneVeth, 'root'],
          ...['netem', 'delay', `${o.delayMs}ms`],
        ]);
        // Only a kernel without the netem qdisc is tolerated (some CI kernels ship without sch_netem).
        if (!r.ok && /qdisc kind is unknown/i.test(r.out)) delayed = false;
        else if (!r.ok) throw new Error(`tc netem on ${z.zoneVeth}: ${r.out.trim()}`);
      }
    }
  } catch (err) {
    destroy();
    throw err;
  }

  return {
    suffix,
    bridge,
    hostIp,
    zones,
    get delayed() {
      return delayed;
    },
    zone: (name) => {
      const z = zones.find((x) => x.name === name);
      if (z === undefined) throw new Error(`no zone ${name}`);
      return z;
    },
    destroy,
    leftovers,
  };
}

/** Runs `argv` inside the zone's namespace (ip netns exec execs it: the pid is the program's own). */
export function spawnInZone(zone: Zone, argv: readonly string[]): ProxyProcess {
  return tracked(spawn('ip', ['netns', 'exec', zone.netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** `weft proxy ARGS...` from the build (dist/), inside the zone. */
export function spawnWeftProxyInZone(zone: Zone, args: readonly string[]): ProxyProcess {
  return spawnInZone(zone, [
    process.execPath,
    ...launcherNodeFlags(),
    path.join(REPO, 'dist/cli/main.js'),
    'proxy',
    ...args,
  ]);
}

/** The demo service the zone tests and the cost figure run: its host and port, and the sidecars' ports. */
export const ZONE_HOST = 'zones.default.svc.cluster.local';
export const ZONE_PORT = 8080;
export const ZONE_OUTBOUND = 15001;
export const ZONE_PROMETHEUS = 15090;
export const ZONE_NAMES = ['zone-a', 'zone-b', 'zone-c'] as const;
export type ZoneName = (typeof ZONE_NAMES)[number];

/** Replica n of zone z on `subnet` (a /24 prefix): its sidecar's IP (the zone's first address is its veth's), its app's port. */
export function zoneReplicas(subnet: string): { zone: ZoneName; id: string; ip: string; appPort: number }[] {
  return ZONE_NAMES.flatMap((z, zi) =>
    [1, 2].map((n) => ({
      zone: z,
      id: `${z.slice(-1)}${n}`,
      ip: `${subnet}.${(zi + 1) * 10 + n}`,
      appPort: 9000 + n,
    })),
  );
}

/**
 * A zone's app, run as `node -e ZONE_APP ZONE SIZE PORT...`: one server per port (its replicas) on
 * 127.0.0.1, answering their zone and replica in x-zone / x-replica and a body of SIZE bytes; SIGUSR1 makes
 * them answer 503, SIGUSR2 heals them. Prints "ready" once all listen.
 */
export const ZONE_APP = `
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

/**
 * One HTTP service `host:port` over the replicas (WorkloadEntries their sidecars register, selected by
 * app=zones), each sidecar forwarding to its app port; outlier detection that can eject a whole zone, and
 * locality load balancing on or (`localityLb: false`) off.
 */
export function zoneServiceMesh(o: {
  host: string;
  port: number;
  replicas: readonly { id: string; appPort: number }[];
  localityLb: boolean;
}): string {
  const sidecars = o.replicas
    .map(
      (r) => `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: zones-${r.id}}
spec:
  workloadSelector: {labels: {app: zones, replica: ${r.id}}}
  ingress:
  - port: {number: ${o.port}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${r.appPort}
`,
    )
    .join('');
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zones}
spec:
  hosts: [${o.host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${o.port}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: zones}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: zones}
spec:
  host: ${o.host}
  trafficPolicy:
    # maxEjectionPercent: Istio's default (10%) would eject one host of six, never a whole zone.
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 100}
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {enabled: ${o.localityLb}}
${sidecars}`;
}
