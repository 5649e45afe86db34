// The things wrk is pointed at: the upstream directly, nginx, the Weft proxy, and two-hop chains of each;
// plus one-hop Weft proxies with HTTP filters, whose cost is taken against the plain Weft proxy.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ManagedProcess, ProcessGroup } from './processes.ts';
import { freePort, httpRequest, waitUntil } from './processes.ts';
import type { BenchFilterSet, HostPort } from './weft-bootstrap.ts';
import { benchBootstrapYaml } from './weft-bootstrap.ts';

export const TARGET_NAMES = [
  'direct',
  'nginx',
  'weft',
  'nginx-2hop',
  'weft-2hop',
  'weft-ratelimit',
  'weft-resilience',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

interface FilterTarget {
  readonly filters: Exclude<BenchFilterSet, 'plain'>;
  /** What the target's extra cost is the cost of, as the summary names it. */
  readonly costOf: string;
}

/** The one-hop Weft targets that carry extra HTTP filters. */
const FILTER_TARGETS: Readonly<Partial<Record<TargetName, FilterTarget>>> = {
  'weft-ratelimit': { filters: 'ratelimit', costOf: 'local rate limiting' },
  'weft-resilience': { filters: 'resilience', costOf: 'the resilience filter set' },
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

export function isTargetName(name: string): name is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(name);
}

/** The nginx target a target is compared with (same number of hops), or undefined for direct. */
export function referenceFor(name: TargetName): TargetName | undefined {
  if (name === 'direct' || isFilterTarget(name)) return undefined;
  return name.endsWith('-2hop') ? 'nginx-2hop' : 'nginx';
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

async function startNginx(
  ctx: BenchContext,
  label: string,
  upstream: HostPort,
): Promise<{ proc: ManagedProcess; at: HostPort }> {
  const run = scratch(ctx, label);
  const port = await freePort();
  const template = readFileSync(path.join(ctx.referenceDir, 'nginx-reverse-proxy.conf.template'), 'utf8');
  const conf = template
    .replaceAll('@RUN@', run)
    .replaceAll('@LISTEN@', `${HOST}:${port}`)
    .replaceAll('@UPSTREAM@', `${upstream.host}:${upstream.port}`)
    .replaceAll('@WORKERS@', '1');
  const confFile = path.join(run, 'nginx.conf');
  writeFileSync(confFile, conf);
  const nginx = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  // -p and -e keep nginx away from its system prefix and log (it opens the error log before reading the config).
  const proc = ctx.group.spawn(
    label,
    nginx,
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
  filters: BenchFilterSet = 'plain',
): Promise<{ proc: ManagedProcess; at: HostPort }> {
  const run = scratch(ctx, label);
  const main = ctx.weftCli;
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npm run build)`);
  const listen = { host: HOST, port: await freePort() };
  const admin = { host: HOST, port: await freePort() };
  const bootstrap = path.join(run, 'bootstrap.yaml');
  writeFileSync(bootstrap, benchBootstrapYaml({ nodeId: label, listen, admin, upstream, filters }));
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

type ProxyStarter = (
  ctx: BenchContext,
  label: string,
  upstream: HostPort,
) => Promise<{ proc: ManagedProcess; at: HostPort }>;

async function startChain(ctx: BenchContext, name: TargetName, start: ProxyStarter): Promise<RunningTarget> {
  const hops = hopsOf(name);
  const procs: ManagedProcess[] = [];
  let next = ctx.upstream;
  // Built from the upstream outwards: each proxy forwards to the one started before it.
  for (let hop = hops; hop >= 1; hop--) {
    const label = hops === 1 ? name : `${name}-hop${hop}`;
    const started = await start(ctx, label, next);
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
      return startChain(ctx, name, startNginx);
    case 'weft':
    case 'weft-2hop':
      return startChain(ctx, name, startWeft);
    case 'weft-ratelimit':
    case 'weft-resilience': {
      const filters = FILTER_TARGETS[name]?.filters ?? 'plain';
      return startChain(ctx, name, (c, label, upstream) => startWeft(c, label, upstream, filters));
    }
  }
}
