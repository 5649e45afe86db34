/**
 * Network namespaces for `weft up` transparent mode (Linux, root): each app instance gets its own namespace,
 * like a Kubernetes pod, joined to the host by a veth pair. Its outbound TCP enters the host through the veth
 * and a nat PREROUTING REDIRECT sends it to the sidecar's outbound listener, which runs in the host namespace on
 * the veth's host-side IP; the sidecar reaches the app on the namespace-side IP.
 *
 * Every command runs through execFile with an explicit argv: names come from the plan, and no shell ever
 * re-parses them.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface InstanceNetwork {
  /** 0-based instance index in the run. */
  readonly index: number;
  /** `weft-${runId}-${index}` */
  readonly netns: string;
  /** Veth, host side: `wf${runId}h${index}` (at most 11 of Linux's 15 characters). */
  readonly hostIf: string;
  /** Veth, namespace side: always `eth0`, so apps see the interface name they would in a pod. */
  readonly nsIf: string;
  /** x.x.x.(4*index+1) */
  readonly hostIp: string;
  /** x.x.x.(4*index+2) */
  readonly appIp: string;
  /** The sidecar's outbound listener port on hostIp: the REDIRECT target. */
  readonly outboundPort: number;
}

export interface RunNetworks {
  readonly runId: string;
  /** e.g. "198.18.37.0/24" */
  readonly subnet: string;
  /** `WEFT-${runId}` */
  readonly chain: string;
  readonly instances: readonly InstanceNetwork[];
}

/** A /24 split into /30s. */
export const MAX_INSTANCES = 64;
/** 198.18.0.0/15 (RFC 2544, benchmarking) holds 512 /24s. */
export const SUBNET_COUNT = 512;
const RUN_ID = /^[0-9a-f]{6}$/;
const NS_IF = 'eth0';
const ETC_NETNS = '/etc/netns';
const TOOL_DIRS = ['/usr/sbin', '/sbin'];

/** A fresh 6-hex-char run id. */
export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

function checkRunId(runId: string): void {
  // destroyNetworks deletes by prefix: a malformed id could match another run's (or someone else's) objects.
  if (!RUN_ID.test(runId))
    throw new Error(`invalid run id ${JSON.stringify(runId)}: expected 6 lowercase hex digits`);
}

/** The first address of the subnetIndex-th /24 of 198.18.0.0/15, as a 32-bit number. */
function subnetBase(subnetIndex: number): number {
  return ((198 << 24) >>> 0) + (18 << 16) + subnetIndex * 256;
}

function ipString(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function ipNumber(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/**
 * Pure: the networks of a run. The subnet is the subnetIndex-th /24 of 198.18.0.0/15 (reserved for benchmarking,
 * so it rarely collides with a real network); each instance gets a /30 of it.
 */
export function planNetworks(
  runId: string,
  subnetIndex: number,
  outboundPorts: readonly number[],
): RunNetworks {
  checkRunId(runId);
  if (!Number.isInteger(subnetIndex) || subnetIndex < 0 || subnetIndex >= SUBNET_COUNT) {
    throw new Error(`invalid subnet index ${subnetIndex}: expected an integer 0..${SUBNET_COUNT - 1}`);
  }
  if (outboundPorts.length > MAX_INSTANCES) {
    throw new Error(
      `transparent mode supports at most ${MAX_INSTANCES} app instances per run (one /24 split into /30s), ` +
        `this run has ${outboundPorts.length}`,
    );
  }
  const base = subnetBase(subnetIndex);
  const instances = outboundPorts.map((outboundPort, index): InstanceNetwork => {
    if (!Number.isInteger(outboundPort) || outboundPort < 1 || outboundPort > 65_535) {
      throw new Error(`invalid outbound port ${outboundPort} for instance ${index}`);
    }
    return {
      index,
      netns: `weft-${runId}-${index}`,
      hostIf: `wf${runId}h${index}`,
      nsIf: NS_IF,
      hostIp: ipString(base + 4 * index + 1),
      appIp: ipString(base + 4 * index + 2),
      outboundPort,
    };
  });
  return { runId, subnet: `${ipString(base)}/24`, chain: `WEFT-${runId}`, instances };
}

/** The path of a system tool, looked up in PATH and then in the sbin directories a non-login PATH may lack. */
function findTool(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, ...TOOL_DIRS]) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return dirs.includes(dir) ? name : file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function tool(name: string): string {
  return findTool(name) ?? name;
}

/** Why transparent mode cannot run here, or undefined. */
export function transparentProblem(): string | undefined {
  if (process.platform !== 'linux')
    return `transparent mode needs Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return 'transparent mode needs root (to create network namespaces and iptables rules)';
  for (const name of ['ip', 'iptables']) {
    if (findTool(name) === undefined) {
      return `transparent mode needs \`${name}\`, found neither in PATH nor in ${TOOL_DIRS.join(', ')}`;
    }
  }
  return undefined;
}

class CommandError extends Error {
  readonly stderr: string;
  constructor(argv: readonly string[], stderr: string) {
    super(`\`${argv.join(' ')}\` failed: ${stderr.trim() || '(no error output)'}`);
    this.name = 'CommandError';
    this.stderr = stderr;
  }
}

async function command(file: string, args: readonly string[]): Promise<string> {
  const argv = [tool(file), ...args];
  try {
    const { stdout } = await execFileP(argv[0], argv.slice(1), { encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new CommandError(argv, e.stderr || e.message);
  }
}

/** `-w`: wait for the xtables lock instead of failing when another process (or run) changes rules at once. */
function iptables(args: readonly string[]): Promise<string> {
  return command('iptables', ['-w', ...args]);
}

/** The IPv4 networks on host interfaces, as [first, last] address numbers. */
async function hostNetworks(): Promise<[number, number][]> {
  const out = await command('ip', ['-4', '-o', 'addr']);
  const nets: [number, number][] = [];
  for (const m of out.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/g)) {
    const prefix = m[2] === undefined ? 32 : Number(m[2]);
    const size = 2 ** (32 - prefix);
    const first = Math.floor(ipNumber(m[1]) / size) * size;
    nets.push([first, first + size - 1]);
  }
  return nets;
}

/**
 * A subnetIndex whose /24 overlaps no network of a host interface. Starting from a hash of runId spreads
 * concurrent runs apart, and a running run's host-side veth addresses mark its /24 as taken.
 */
export async function freeSubnetIndex(runId: string): Promise<number> {
  checkRunId(runId);
  const used = await hostNetworks();
  const start = createHash('sha256').update(runId).digest().readUInt16BE(0) % SUBNET_COUNT;
  for (let i = 0; i < SUBNET_COUNT; i++) {
    const index = (start + i) % SUBNET_COUNT;
    const first = subnetBase(index);
    const last = first + 255;
    if (!used.some(([a, b]) => a <= last && first <= b)) return index;
  }
  throw new Error('no free /24 in 198.18.0.0/15: every one overlaps a host interface network');
}

/** Lines of an /etc/hosts: localhost lines + one line per entry. Pure. */
export function hostsFile(
  entries: readonly { readonly ip: string; readonly names: readonly string[] }[],
): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const { ip, names } of entries) {
    if (isIP(ip) === 0) throw new Error(`hosts file: invalid IP ${JSON.stringify(ip)}`);
    if (names.length === 0) throw new Error(`hosts file: no names for ${ip}`);
    for (const name of names) {
      // Whitespace or '#' would silently become another name or a comment.
      if (!/^[^\s#]+$/.test(name)) throw new Error(`hosts file: invalid name ${JSON.stringify(name)}`);
    }
    lines.push(`${ip}\t${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

function comment(runId: string): string[] {
  return ['-m', 'comment', '--comment', `weft:${runId}`];
}

/**
 * Creates everything of a run (see the module comment). On any failure it destroys what it created and throws
 * an Error naming the failed command and its stderr.
 */
export async function createNetworks(run: RunNetworks, hosts: string): Promise<void> {
  const { runId, chain } = run;
  checkRunId(runId);
  try {
    await iptables(['-t', 'nat', '-N', chain]);
    for (const n of run.instances) {
      // A temporary host-unique name for the namespace side: `eth0` exists on the host already.
      const peer = `wf${runId}n${n.index}`;
      await command('ip', ['netns', 'add', n.netns]);
      await command('ip', ['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', peer]);
      await command('ip', ['link', 'set', peer, 'netns', n.netns]);
      await command('ip', ['-n', n.netns, 'link', 'set', peer, 'name', n.nsIf]);
      await command('ip', ['addr', 'add', `${n.hostIp}/30`, 'dev', n.hostIf]);
      await command('ip', ['link', 'set', n.hostIf, 'up']);
      await command('ip', ['-n', n.netns, 'addr', 'add', `${n.appIp}/30`, 'dev', n.nsIf]);
      await command('ip', ['-n', n.netns, 'link', 'set', n.nsIf, 'up']);
      await command('ip', ['-n', n.netns, 'link', 'set', 'lo', 'up']);
      await command('ip', ['-n', n.netns, 'route', 'add', 'default', 'via', n.hostIp]);
      // `ip netns exec` bind-mounts each file of /etc/netns/<netns>/ over its namesake in /etc.
      const dir = path.join(ETC_NETNS, n.netns);
      await fs.promises.mkdir(dir, { recursive: true });
      await fs.promises.writeFile(path.join(dir, 'hosts'), hosts, { mode: 0o644 });
      // DNS cannot work from the namespace (the host does not forward, its resolver may be on its own loopback),
      // and glibc asks it whenever the hosts file lacks an answer, e.g. for the AAAA half of `getent hosts`: with
      // the host's resolv.conf that waits out 2 x 5 s timeouts; with the namespace's own loopback, where nothing
      // listens, it fails at once.
      await fs.promises.writeFile(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n', { mode: 0o644 });
      await iptables([
        '-t',
        'nat',
        '-A',
        chain,
        '-i',
        n.hostIf,
        '-p',
        'tcp',
        '-j',
        'REDIRECT',
        '--to-ports',
        String(n.outboundPort),
        ...comment(runId),
      ]);
    }
    // Jumped to last, so no instance is captured before its whole setup exists; `+` is iptables' wildcard.
    await iptables(['-t', 'nat', '-A', 'PREROUTING', '-i', `wf${runId}h+`, '-j', chain, ...comment(runId)]);
  } catch (err) {
    try {
      await destroyNetworks(runId);
    } catch (cleanupErr) {
      throw new Error(
        `${(err as Error).message}; cleaning up also failed: ${(cleanupErr as Error).message}`,
        {
          cause: cleanupErr,
        },
      );
    }
    throw err;
  }
}

/** A failed delete of something that is not there (any more): the goal is reached. */
function alreadyGone(err: unknown): boolean {
  return (
    err instanceof CommandError &&
    /No such file|Cannot find device|does not exist|does a matching rule exist|No chain\/target\/match/i.test(
      err.stderr,
    )
  );
}

/** Splits an `iptables -S` line into argv; weft's rules contain no quoted spaces. */
function ruleTokens(line: string): string[] {
  return line
    .trim()
    .split(/\s+/)
    .map((t) => t.replace(/^"(.*)"$/, '$1'));
}

/**
 * Removes everything of a run, idempotently, also of a run whose plan is lost (it finds the objects by name).
 * Deletes go on past failures; those that are not "already gone" are thrown together at the end.
 * Returns what it removed, for logs.
 */
export async function destroyNetworks(runId: string): Promise<string[]> {
  checkRunId(runId);
  const chain = `WEFT-${runId}`;
  const removed: string[] = [];
  const failures: string[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>): Promise<void> => {
    try {
      await action();
      removed.push(what);
    } catch (err) {
      if (!alreadyGone(err)) failures.push((err as Error).message);
    }
  };

  try {
    // The jump first: after it, no new connection enters the chain while the rest goes away.
    const prerouting = await iptables(['-t', 'nat', '-S', 'PREROUTING']);
    for (const line of prerouting.split('\n')) {
      const tokens = ruleTokens(line);
      const j = tokens.indexOf('-j');
      if (tokens[0] !== '-A' || j < 0 || tokens[j + 1] !== chain) continue;
      await attempt(`iptables nat PREROUTING jump to ${chain}`, () =>
        iptables(['-t', 'nat', '-D', ...tokens.slice(1)]),
      );
    }
    const chains = await iptables(['-t', 'nat', '-S']);
    if (chains.split('\n').some((l) => l.trim() === `-N ${chain}`)) {
      await attempt(`iptables nat chain ${chain}`, async () => {
        await iptables(['-t', 'nat', '-F', chain]);
        await iptables(['-t', 'nat', '-X', chain]);
      });
    }
  } catch (err) {
    failures.push((err as Error).message);
  }

  try {
    // Host veths before namespaces: deleting a veth removes its peer at once, while a deleted namespace's
    // interfaces are torn down later by the kernel, so a listing right after would still show them.
    const links = await command('ip', ['-o', 'link', 'show']);
    const linkName = new RegExp(`^\\d+:\\s+(wf${runId}[hn]\\d+)(?:@\\S+)?:`);
    for (const line of links.split('\n')) {
      const name = linkName.exec(line)?.[1];
      if (name !== undefined) await attempt(`link ${name}`, () => command('ip', ['link', 'del', name]));
    }
  } catch (err) {
    failures.push((err as Error).message);
  }

  try {
    const namespaces = await command('ip', ['netns', 'list']);
    for (const line of namespaces.split('\n')) {
      const name = line.trim().split(/\s+/)[0];
      if (name?.startsWith(`weft-${runId}-`)) {
        await attempt(`netns ${name}`, () => command('ip', ['netns', 'del', name]));
      }
    }
  } catch (err) {
    failures.push((err as Error).message);
  }

  let etc: string[] = [];
  try {
    etc = await fs.promises.readdir(ETC_NETNS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') failures.push((err as Error).message);
  }
  for (const name of etc) {
    if (!name.startsWith(`weft-${runId}-`)) continue;
    const dir = path.join(ETC_NETNS, name);
    await attempt(dir, () => fs.promises.rm(dir, { recursive: true, force: true }));
  }

  if (failures.length > 0) {
    throw new Error(
      `cleaning up the networks of run ${runId} failed: ${failures.join('; ')}` +
        (removed.length > 0 ? ` (removed: ${removed.join(', ')})` : ''),
    );
  }
  return removed;
}

/**
 * The argv prefix that runs a command inside an instance's network namespace. `ip netns exec` keeps the
 * environment and execs the command in its own process (no fork: it unshares a mount namespace, bind-mounts
 * /etc/netns/<netns>/*, then execvp), so the pid a supervisor gets from spawn is the app's and its signals reach
 * the app; netns.test.ts checks both.
 */
export function netnsExec(net: InstanceNetwork): string[] {
  return [tool('ip'), 'netns', 'exec', net.netns];
}
