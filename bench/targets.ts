// The things wrk is pointed at: the upstream directly, nginx, the Weft proxy, and two-hop chains of each
// (plain, and with mTLS between the hops); plus one-hop Weft proxies with HTTP filters, whose cost is taken
// against the plain Weft proxy.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ManagedProcess, ProcessGroup } from './processes.ts';
import { freePort, httpRequest, waitUntil } from './processes.ts';
import type { BenchPki } from './pki.ts';
import { BENCH_SERVER_DNS, BENCH_SERVER_ID, makeBenchPki } from './pki.ts';
import type {
  BenchBootstrapOptions,
  BenchDownstreamTls,
  BenchFilterSet,
  BenchUpstreamTls,
  HostPort,
} from './weft-bootstrap.ts';
import { benchBootstrapYaml } from './weft-bootstrap.ts';

export const TARGET_NAMES = [
  'direct',
  'nginx',
  'weft',
  'nginx-2hop',
  'weft-2hop',
  'weft-ratelimit',
  'weft-resilience',
  'weft-telemetry',
  'weft-tracing',
  'nginx-mtls-2hop',
  'weft-mtls-2hop',
  'weft-mtls-h2-2hop',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

interface FilterTarget {
  readonly filters: Exclude<BenchFilterSet, 'plain'>;
  /** What the target's extra cost is the cost of, as the summary names it. */
  readonly costOf: string;
  /** The most CPU per request the issue allows, as a ratio to the plain proxy (none: reported only). */
  readonly maxCpuRatio?: number;
}

/** The one-hop Weft targets that carry extra HTTP filters. */
const FILTER_TARGETS: Readonly<Partial<Record<TargetName, FilterTarget>>> = {
  'weft-ratelimit': { filters: 'ratelimit', costOf: 'local rate limiting' },
  'weft-resilience': { filters: 'resilience', costOf: 'the resilience filter set' },
  'weft-telemetry': {
    filters: 'telemetry',
    costOf: 'full telemetry (Istio metrics, access log, tracing at 1%)',
    // Issue #6: "full telemetry adds ≤ 25% CPU per request".
    maxCpuRatio: 1.25,
  },
  'weft-tracing': { filters: 'tracing', costOf: 'the same with every request traced' },
};

/** The plain proxy a filter target's cost is taken against. */
export const FILTER_BASELINE: TargetName = 'weft';

/** A filter target is compared with plain `weft` (what the filters add), not with nginx. */
export function isFilterTarget(name: TargetName): boolean {
  return FILTER_TARGETS[name] !== undefined;
}

/** "local rate limiting" for weft-ratelimit, and so on; undefined for the other targets. */
export function filterCostOf(name: TargetName): string | undefined {
  return FILTER_TARGETS[name]?.costOf;
}

/** The bound on a filter target's CPU per request (ratio to plain weft), if it sets one. */
export function filterMaxCpuRatio(name: TargetName): number | null {
  return FILTER_TARGETS[name]?.maxCpuRatio ?? null;
}

export function isTargetName(name: string): name is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(name);
}

/** The two-hop chains with mTLS between the proxies (Weft's ALPN http/1.1 and h2 variants, and nginx's). */
export function isMtlsTarget(name: TargetName): boolean {
  return name.includes('-mtls-');
}

/** The nginx target a target is compared with (same number of hops, and mTLS or not), or undefined for direct. */
export function referenceFor(name: TargetName): TargetName | undefined {
  if (name === 'direct' || isFilterTarget(name)) return undefined;
  if (isMtlsTarget(name)) return 'nginx-mtls-2hop';
  return name.endsWith('-2hop') ? 'nginx-2hop' : 'nginx';
}

/** The plain chain an mTLS chain is the same as, but for TLS between the hops. */
export function plainCounterpart(name: TargetName): TargetName | undefined {
  if (!isMtlsTarget(name)) return undefined;
  return name.startsWith('nginx') ? 'nginx-2hop' : 'weft-2hop';
}

export function hopsOf(name: TargetName): number {
  if (name === 'direct') return 0;
  return name.endsWith('-2hop') ? 2 : 1;
}

export interface RunningTarget {
  readonly name: TargetName;
  readonly url: string;
  readonly hops: number;
  /** Root pids of the proxy processes (each measured with its descendants); empty for direct. */
  readonly proxyPids: readonly number[];
}

export interface BenchContext {
  readonly group: ProcessGroup;
  readonly repoRoot: string;
  /** Scratch space: configs, logs, profiles. */
  readonly tmpDir: string;
  /** Folder holding nginx-reverse-proxy.conf.template and wrk-fixed-rate.lua. */
  readonly referenceDir: string;
  readonly upstream: HostPort;
  /** Run the Weft proxies under --cpu-prof, writing into tmpDir. */
  readonly profile: boolean;
  /** Extra Node.js flags for the Weft proxies (e.g. heap sizes). */
  readonly weftNodeArgs: readonly string[];
  /** The Weft CLI entry point (normally dist/cli/main.js; another build can be pointed at to compare). */
  readonly weftCli: string;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 20_000;

/** Where the shared reference files are: /work/shared if present, else ../shared beside the repo. */
export function findReferenceDir(repoRoot: string): string {
  const candidates = [
    '/work/shared/bench-reference',
    path.resolve(repoRoot, '..', 'shared', 'bench-reference'),
  ];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'nginx-reverse-proxy.conf.template')));
  if (found === undefined) throw new Error(`bench reference files not found in ${candidates.join(' or ')}`);
  return found;
}

export async function startUpstream(
  group: ProcessGroup,
  repoRoot: string,
  tmpDir: string,
): Promise<{ at: HostPort; pid: number }> {
  const port = await freePort();
  const proc = group.spawn(
    'upstream',
    process.execPath,
    [path.join(repoRoot, 'bench', 'upstream.ts'), String(port)],
    {
      logFile: path.join(tmpDir, 'upstream.log'),
    },
  );
  const url = `http://${HOST}:${port}/`;
  await waitUntil(
    'the upstream',
    async () => (await httpRequest(url, 1000)).status === 200,
    START_TIMEOUT_MS,
    [proc],
  );
  return { at: { host: HOST, port }, pid: proc.pid };
}

function scratch(ctx: BenchContext, label: string): string {
  const dir = path.join(ctx.tmpDir, label);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** nginx's side of an mTLS hop: the listener (server) or the proxy_pass (client) speaks TLS. */
export interface NginxTls {
  /** Listen with TLS, and require a client certificate chained to the root. */
  readonly server?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /**
   * Proxy over TLS with a client certificate, verifying the server's chain and name (nginx checks DNS and IP
   * SANs, not URI SANs), resuming sessions; the upstream's keep-alive pool holds the TLS connections.
   */
  readonly client?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly caFile: string;
    readonly serverName: string;
  };
}

export interface NginxConfigOptions {
  readonly run: string;
  readonly listen: HostPort;
  readonly upstream: HostPort;
  readonly tls?: NginxTls;
}

function replaceOnce(text: string, what: string, by: string): string {
  if (!text.includes(what)) throw new Error(`the nginx template has no "${what}" to add TLS to`);
  return text.replace(what, () => by);
}

/** The reference template with its placeholders filled in, and TLS directives added where asked. */
export function nginxConfig(template: string, options: NginxConfigOptions): string {
  let conf = template;
  const { server, client } = options.tls ?? {};
  if (server) {
    conf = replaceOnce(
      conf,
      'listen @LISTEN@;',
      'listen @LISTEN@ ssl; ssl_protocols TLSv1.2 TLSv1.3;\n' +
        `    ssl_certificate ${server.certFile}; ssl_certificate_key ${server.keyFile};\n` +
        `    ssl_client_certificate ${server.caFile}; ssl_verify_client on;`,
    );
  }
  if (client) {
    conf = replaceOnce(
      conf,
      'proxy_pass http://up;',
      'proxy_pass https://up; proxy_ssl_protocols TLSv1.2 TLSv1.3;\n' +
        `      proxy_ssl_certificate ${client.certFile}; proxy_ssl_certificate_key ${client.keyFile};\n` +
        `      proxy_ssl_trusted_certificate ${client.caFile}; proxy_ssl_verify on; proxy_ssl_verify_depth 2;\n` +
        `      proxy_ssl_name ${client.serverName}; proxy_ssl_session_reuse on;`,
    );
  }
  return conf
    .replaceAll('@RUN@', options.run)
    .replaceAll('@LISTEN@', `${options.listen.host}:${options.listen.port}`)
    .replaceAll('@UPSTREAM@', `${options.upstream.host}:${options.upstream.port}`)
    .replaceAll('@WORKERS@', '1');
}

/** Where the Debian package puts nginx, else whatever PATH finds. */
export function nginxCommand(): string {
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

async function startNginx(
  ctx: BenchContext,
  label: string,
  upstream: HostPort,
  tls?: NginxTls,
): Promise<{ proc: ManagedProcess; at: HostPort }> {
  const run = scratch(ctx, label);
  const port = await freePort();
  const template = readFileSync(path.join(ctx.referenceDir, 'nginx-reverse-proxy.conf.template'), 'utf8');
  const conf = nginxConfig(template, { run, listen: { host: HOST, port }, upstream, tls });
  const confFile = path.join(run, 'nginx.conf');
  writeFileSync(confFile, conf);
  // -p and -e keep nginx away from its system prefix and log (it opens the error log before reading the config).
  const proc = ctx.group.spawn(
    label,
    nginxCommand(),
    ['-p', run, '-e', path.join(run, 'error.log'), '-c', confFile, '-g', 'daemon off;'],
    {
      logFile: path.join(run, 'stdout.log'),
    },
  );
  return { proc, at: { host: HOST, port } };
}

async function startWeft(
  ctx: BenchContext,
  label: string,
  upstream: HostPort,
  variant: {
    readonly filters?: BenchFilterSet;
    readonly downstreamTls?: BenchDownstreamTls;
    readonly upstreamTls?: BenchUpstreamTls;
    readonly telemetry?: BenchBootstrapOptions['telemetry'];
  } = {},
): Promise<{ proc: ManagedProcess; at: HostPort }> {
  const run = scratch(ctx, label);
  const main = ctx.weftCli;
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npm run build)`);
  const listen = { host: HOST, port: await freePort() };
  const admin = { host: HOST, port: await freePort() };
  const bootstrap = path.join(run, 'bootstrap.yaml');
  writeFileSync(bootstrap, benchBootstrapYaml({ nodeId: label, listen, admin, upstream, ...variant }));
  const nodeArgs = [...ctx.weftNodeArgs];
  if (ctx.profile) {
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${ctx.tmpDir}`, `--cpu-prof-name=${label}.cpuprofile`);
  }
  const adminUrl = `http://${admin.host}:${admin.port}`;
  const proc = ctx.group.spawn(
    label,
    process.execPath,
    [...nodeArgs, main, 'proxy', '--bootstrap', bootstrap],
    {
      logFile: path.join(run, 'output.log'),
      // The profile is only written when the process exits by itself, so ask the admin endpoint first.
      gracefulStop: async () => {
        await httpRequest(`${adminUrl}/quitquitquit`, 2000, 'POST');
      },
    },
  );
  await waitUntil(
    `${label} admin /ready`,
    async () => (await httpRequest(`${adminUrl}/ready`, 1000)).status === 200,
    START_TIMEOUT_MS,
    [proc],
  );
  return { proc, at: listen };
}

/** Starts hop `hop` of a chain of `hops` (1 is the one wrk talks to, `hops` the one next to the upstream). */
type ProxyStarter = (
  ctx: BenchContext,
  label: string,
  upstream: HostPort,
  hop: number,
  hops: number,
) => Promise<{ proc: ManagedProcess; at: HostPort }>;

async function startChain(ctx: BenchContext, name: TargetName, start: ProxyStarter): Promise<RunningTarget> {
  const hops = hopsOf(name);
  const procs: ManagedProcess[] = [];
  let next = ctx.upstream;
  // Built from the upstream outwards: each proxy forwards to the one started before it.
  for (let hop = hops; hop >= 1; hop--) {
    const label = hops === 1 ? name : `${name}-hop${hop}`;
    const started = await start(ctx, label, next, hop, hops);
    procs.push(started.proc);
    next = started.at;
  }
  const url = `http://${next.host}:${next.port}/`;
  await checkServes(name, url, procs);
  return { name, url, hops, proxyPids: procs.map((proc) => proc.pid) };
}

/** A real request through the target must come back as the upstream's 200 with its 1 KiB body. */
async function checkServes(name: string, url: string, procs: readonly ManagedProcess[]): Promise<void> {
  let last = '';
  await waitUntil(
    `${name} to serve ${url}`,
    async () => {
      const res = await httpRequest(url, 2000);
      last = `status ${res.status}, ${res.body.length} bytes`;
      return res.status === 200 && res.body.length === 1024;
    },
    START_TIMEOUT_MS,
    procs,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nlast response: ${last || 'none'}`);
  });
}

export async function startTarget(ctx: BenchContext, name: TargetName): Promise<RunningTarget> {
  switch (name) {
    case 'direct': {
      const url = `http://${ctx.upstream.host}:${ctx.upstream.port}/`;
      await checkServes(name, url, []);
      return { name, url, hops: 0, proxyPids: [] };
    }
    case 'nginx':
    case 'nginx-2hop':
      return startChain(ctx, name, (c, label, upstream) => startNginx(c, label, upstream));
    case 'weft':
    case 'weft-2hop':
      return startChain(ctx, name, (c, label, upstream) => startWeft(c, label, upstream));
    case 'weft-ratelimit':
    case 'weft-resilience':
    case 'weft-telemetry':
    case 'weft-tracing': {
      const filters = FILTER_TARGETS[name]?.filters ?? 'plain';
      return startChain(ctx, name, (c, label, upstream) => {
        const accessLogPath = path.join(c.tmpDir, `${label}.access.log`);
        // The proxy appends: a log left by an earlier run would only grow (a full run writes ~100 MB).
        rmSync(accessLogPath, { force: true });
        return startWeft(c, label, upstream, {
          filters,
          // The upstream answers any POST with 200: it stands in for the Zipkin collector, outside the proxy's CPU.
          ...(filters === 'telemetry' || filters === 'tracing'
            ? { telemetry: { accessLogPath, collector: upstream } }
            : {}),
        });
      });
    }
    case 'nginx-mtls-2hop': {
      const pki = benchPki(ctx);
      return startChain(ctx, name, (c, label, upstream, hop, hops) =>
        startNginx(c, label, upstream, hop === hops ? nginxServerTls(pki) : nginxClientTls(pki)),
      );
    }
    case 'weft-mtls-2hop':
    case 'weft-mtls-h2-2hop': {
      const pki = benchPki(ctx);
      const protocol = name === 'weft-mtls-h2-2hop' ? 'h2' : 'http/1.1';
      return startChain(ctx, name, (c, label, upstream, hop, hops) =>
        startWeft(
          c,
          label,
          upstream,
          hop === hops
            ? { downstreamTls: weftServerTls(pki) }
            : { upstreamTls: weftClientTls(pki, protocol) },
        ),
      );
    }
  }
}

const pkis = new Map<string, BenchPki>();

/** The mesh certificates of this run, made once in the scratch folder. */
function benchPki(ctx: BenchContext): BenchPki {
  let pki = pkis.get(ctx.tmpDir);
  if (pki === undefined) {
    pki = makeBenchPki(scratch(ctx, 'pki'));
    pkis.set(ctx.tmpDir, pki);
  }
  return pki;
}

/** The server side of a mesh hop (next to the upstream): the server certificate, clients of the root only. */
export function weftServerTls(pki: BenchPki): BenchDownstreamTls {
  return { ...pki.server, caFile: pki.caFile };
}

/** The client side of a mesh hop: the client certificate, the root, the server's SPIFFE ID. */
export function weftClientTls(pki: BenchPki, protocol: BenchUpstreamTls['protocol']): BenchUpstreamTls {
  return { ...pki.client, caFile: pki.caFile, serverId: BENCH_SERVER_ID, protocol };
}

export function nginxServerTls(pki: BenchPki): NginxTls {
  return { server: { ...pki.server, caFile: pki.caFile } };
}

export function nginxClientTls(pki: BenchPki): NginxTls {
  return { client: { ...pki.client, caFile: pki.caFile, serverName: BENCH_SERVER_DNS } };
}
