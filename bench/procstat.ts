// CPU time and memory of a process and all its descendants, read from /proc (Linux only).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clockTicks: number | undefined;

/** Kernel clock ticks per second, the unit of utime/stime in /proc/PID/stat. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim();
    const ticks = Number(out);
    if (!Number.isInteger(ticks) || ticks <= 0)
      throw new Error(`getconf CLK_TCK printed ${JSON.stringify(out)}`);
    clockTicks = ticks;
  }
  return clockTicks;
}

export interface StatFields {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number;
}

/** Parses /proc/PID/stat. The command name may hold spaces and parentheses, so fields are counted from the last ')'. */
export function parseStat(text: string): StatFields {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`unexpected /proc stat line: ${text.slice(0, 80)}`);
  const pid = Number(text.slice(0, open).trim());
  // After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10) cminflt(11)
  // majflt(12) cmajflt(13) utime(14) stime(15) — so ppid is index 1, utime 11, stime 12.
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (![pid, ppid, utime, stime].every(Number.isFinite)) {
    throw new Error(`unexpected /proc stat line: ${text.slice(0, 80)}`);
  }
  return { pid, ppid, cpuTicks: utime + stime };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process has gone
  }
}

export function readStat(pid: number): StatFields | undefined {
  const text = readText(`/proc/${pid}/stat`);
  return text === undefined ? undefined : parseStat(text);
}

/** The root and all its live descendants, found by walking every /proc/PID/stat for parent links. */
export function processTree(rootPid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const siblings = childrenOf.get(stat.ppid);
    if (siblings) siblings.push(stat.pid);
    else childrenOf.set(stat.ppid, [stat.pid]);
  }
  if (readStat(rootPid) === undefined) return [];
  const tree: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(childrenOf.get(pid) ?? []));
  }
  return tree;
}

function ticksByPid(roots: readonly number[]): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const root of roots) {
    for (const pid of processTree(root)) {
      const stat = readStat(pid);
      if (stat) ticks.set(pid, stat.cpuTicks);
    }
  }
  return ticks;
}

/** CPU seconds used by the process trees under `roots` between start() and stop(). */
export class CpuMeter {
  readonly #roots: readonly number[];
  #before = new Map<number, number>();

  constructor(roots: readonly number[]) {
    this.#roots = roots;
  }

  start(): void {
    this.#before = ticksByPid(this.#roots);
  }

  stop(): number {
    const after = ticksByPid(this.#roots);
    let ticks = 0;
    // A process born during the run counts in full; one that died during the run is lost (rare: none of
    // the benchmarked proxies forks per request).
    for (const [pid, now] of after) ticks += now - (this.#before.get(pid) ?? 0);
    return ticks / clockTicksPerSecond();
  }
}

export interface MemoryKb {
  readonly rssKb: number;
  readonly hwmKb: number;
}

/** Parses VmRSS and VmHWM (kB) from /proc/PID/status. Kernel threads have neither: 0. */
export function parseStatus(text: string): MemoryKb {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

export function readMemory(pid: number): MemoryKb | undefined {
  const text = readText(`/proc/${pid}/status`);
  return text === undefined ? undefined : parseStatus(text);
}

export interface RssSummary {
  /** Highest sum of VmRSS over all the trees seen in one sample. */
  readonly peakTotalKb: number;
  /** Highest VmRSS sum of each root's tree, in the order of the roots. */
  readonly peakPerRootKb: readonly number[];
  /** Sum of VmHWM (lifetime peak RSS) over all processes at stop(). */
  readonly hwmTotalKb: number;
  readonly samples: number;
}

/** Samples the RSS of the process trees under `roots` on a timer while a load run goes on. */
export class RssSampler {
  readonly #roots: readonly number[];
  readonly #intervalMs: number;
  #trees: number[][] = [];
  #timer: NodeJS.Timeout | undefined;
  #peakTotal = 0;
  #peakPerRoot: number[] = [];
  #samples = 0;

  constructor(roots: readonly number[], intervalMs = 250) {
    this.#roots = roots;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    // The trees are walked once: walking all of /proc on every sample would load the shared CPUs.
    this.#trees = this.#roots.map((root) => processTree(root));
    this.#peakPerRoot = this.#roots.map(() => 0);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
  }

  stop(): RssSummary {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
    let hwm = 0;
    for (const tree of this.#trees) for (const pid of tree) hwm += readMemory(pid)?.hwmKb ?? 0;
    return {
      peakTotalKb: this.#peakTotal,
      peakPerRootKb: [...this.#peakPerRoot],
      hwmTotalKb: hwm,
      samples: this.#samples,
    };
  }

  #sample(): void {
    let total = 0;
    this.#trees.forEach((tree, i) => {
      let rss = 0;
      for (const pid of tree) rss += readMemory(pid)?.rssKb ?? 0;
      this.#peakPerRoot[i] = Math.max(this.#peakPerRoot[i], rss);
      total += rss;
    });
    this.#peakTotal = Math.max(this.#peakTotal, total);
    this.#samples++;
  }
}
