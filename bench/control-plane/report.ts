// The control-plane benchmark's results file, its markdown summary, and the comparison with the previous run.
import type { MachineInfo } from '../machine.ts';
import type { SelfTime } from '../profile.ts';
import type { Distribution, StarvationSummary } from './stats.ts';

export interface CpBenchOptions {
  readonly services: number;
  readonly endpoints: number;
  readonly namespaces: number;
  readonly proxies: number;
  readonly deltaShare: number;
  readonly loadProcs: number;
  readonly changes: number;
  readonly starvationS: number;
  readonly starvationIntervalMs: number;
  readonly gapLimitMs: number;
  readonly quick: boolean;
  readonly profile: boolean;
  readonly cli: string;
}

export interface Goal {
  readonly goal: string;
  readonly value: number | null;
  readonly unit: string;
  readonly met: boolean | null;
}

export interface CpBenchResults {
  readonly schema: 1;
  readonly machine: MachineInfo;
  readonly options: CpBenchOptions;
  readonly mesh: {
    readonly services: number;
    readonly endpoints: number;
    readonly namespaces: number;
    readonly proxies: number;
    readonly deltaProxies: number;
    readonly files: number;
    readonly clustersPerProxy: number;
  };
  /** Control-plane start (process spawn) to /ready: the whole configuration loaded and validated. */
  readonly startupMs: number;
  /** Control-plane RSS once serving, before any proxy connected. */
  readonly readyRssMb: number;
  readonly initialPush: {
    /** First connect to the last proxy having ACKed CDS, EDS, LDS and RDS with every named resource received. */
    readonly fullPushMs: number | null;
    /** Per proxy, from its own connect to its sync. */
    readonly perProxyMs: Distribution;
    readonly synced: number;
    readonly megabytesReceived: number;
    readonly cpuSeconds: number;
    readonly peakRssMb: number;
  };
  readonly endpointChange: {
    /** Per change: file write to the last proxy receiving the new ClusterLoadAssignment. */
    readonly toAllMs: Distribution;
    /** Per change and proxy: file write to that proxy receiving it. */
    readonly perProxyMs: Distribution;
    readonly missing: number;
    /**
     * Per change, from the control plane's record of the push round: file write → first push() (watcher debounce,
     * rescan, snapshot), push() → round start (push debounce), the round, round end → last proxy receiving it.
     */
    readonly breakdownMs: {
      readonly configToPush: Distribution;
      readonly debounce: Distribution;
      readonly round: Distribution;
      readonly roundEndToLastProxy: Distribution;
    };
    readonly cpuSeconds: number;
    readonly peakRssMb: number;
  };
  readonly starvation: StarvationSummary & {
    readonly cpuSeconds: number;
    readonly peakRssMb: number;
    readonly intervalMs: number;
  };
  readonly controlPlane: {
    readonly peakRssMb: number;
    readonly hwmRssMb: number;
    readonly cpuSeconds: number;
    /** Slowest answer to GET /ready while the benchmark ran: how long the event loop was held. */
    readonly slowestReadyMs: number;
    readonly metrics: Record<string, number>;
  };
  readonly load: {
    readonly processes: number;
    readonly cpuSeconds: number;
    readonly loopDelayMaxMs: number;
    readonly reconnects: number;
    readonly errors: readonly string[];
  };
  readonly goals: readonly Goal[];
  readonly profile: readonly SelfTime[] | null;
  readonly warnings: readonly string[];
}

function ms(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

function dist(d: Distribution): string {
  return `p50 ${ms(d.p50)} · p90 ${ms(d.p90)} · p99 ${ms(d.p99)} · max ${ms(d.max)}`;
}

function pushSummary(metrics: Record<string, number>): string {
  const get = (name: string): number => metrics[name] ?? 0;
  const responses = ['cds', 'eds', 'lds', 'rds']
    .map((t) => `${t.toUpperCase()} ${get(`weft_xds_pushes_total{type="${t}"}`)}`)
    .join(', ');
  return `${get('weft_xds_push_rounds_total{kind="full"}')} / ${get('weft_xds_push_rounds_total{kind="eds"}')} · ${responses}`;
}

export function checkGoals(r: Omit<CpBenchResults, 'goals'>): Goal[] {
  const p99 = r.endpointChange.toAllMs.p99;
  return [
    {
      goal: 'endpoint change to all proxies p99 < 1 s',
      value: p99,
      unit: 'ms',
      met: p99 === null ? false : p99 < 1000 && r.endpointChange.missing === 0,
    },
    {
      goal: 'control-plane RSS < 1 GB',
      value: r.controlPlane.peakRssMb,
      unit: 'MB',
      met: r.controlPlane.peakRssMb < 1024,
    },
    {
      goal: `no proxy starved (changes every ${r.starvation.intervalMs} ms for ${(r.starvation.windowMs / 1000).toFixed(0)} s; gap < ${r.starvation.gapLimitMs} ms, nothing missing)`,
      value: r.starvation.starved,
      unit: 'starved proxies',
      met: r.starvation.changes > 0 && r.starvation.starved === 0,
    },
  ];
}

export function renderMarkdown(r: CpBenchResults): string {
  const m = r.machine;
  const o = r.options;
  const commit =
    m.gitCommit === null ? 'no commit' : `${m.gitCommit.slice(0, 10)}${m.gitDirty ? ' (dirty)' : ''}`;
  const s = r.starvation;
  const lines = [
    '# Weft control-plane benchmark',
    '',
    `${m.date} · ${commit} · Node ${m.node} · ${m.cpuModel ?? 'unknown CPU'}, ${m.cpus} vCPU, ${m.memTotalMb} MB`,
    '',
    `${r.mesh.services} services (ServiceEntry, ${r.mesh.namespaces} namespaces), ${r.mesh.endpoints} endpoints ` +
      `(one WorkloadEntry file each, 3 localities), ${r.mesh.files} files; every 5th service has a DestinationRule ` +
      `(2 subsets), every 10th a VirtualService; ${r.mesh.clustersPerProxy} clusters per proxy. ` +
      `${r.mesh.proxies} simulated proxies (${r.mesh.deltaProxies} delta, the rest state of the world) on real ` +
      `gRPC streams from ${o.loadProcs} load process(es).${o.quick ? ' Quick run.' : ''}` +
      `${o.cli === 'dist/cli/main.js' ? '' : ` Control plane run from ${o.cli}.`}` +
      `${o.profile ? ' Control plane under --cpu-prof (CPU figures inflated).' : ''}`,
    '',
    '| measure | result |',
    '|---|---|',
    `| control-plane start (config loaded, serving) | ${ms(r.startupMs)} ms |`,
    `| full initial push (first connect → every proxy ACKed CDS/EDS/LDS/RDS) | ${ms(r.initialPush.fullPushMs)} ms (${r.initialPush.synced}/${r.mesh.proxies} synced; per proxy ${dist(r.initialPush.perProxyMs)} ms; ${r.initialPush.megabytesReceived.toFixed(0)} MB sent; ${r.initialPush.cpuSeconds.toFixed(1)} CPU s) |`,
    `| endpoint change → all proxies (${r.endpointChange.toAllMs.count} changes) | ${dist(r.endpointChange.toAllMs)} ms |`,
    `| endpoint change → each proxy | ${dist(r.endpointChange.perProxyMs)} ms${r.endpointChange.missing > 0 ? `; ${r.endpointChange.missing} never arrived` : ''} |`,
    `| … of which (p50): file write → push (watcher, snapshot) · push debounce · push round · round end → last proxy | ${ms(r.endpointChange.breakdownMs.configToPush.p50)} · ${ms(r.endpointChange.breakdownMs.debounce.p50)} · ${ms(r.endpointChange.breakdownMs.round.p50)} · ${ms(r.endpointChange.breakdownMs.roundEndToLastProxy.p50)} ms |`,
    `| starvation: ${s.changes} changes every ${s.intervalMs} ms over ${(s.windowMs / 1000).toFixed(0)} s | ${s.starved} starved; updates per proxy ${dist(s.updatesPerProxy)}; max gap per proxy ${dist(s.maxGapMs)} ms; max staleness per proxy ${dist(s.maxStalenessMs)} ms; ${s.cpuSeconds.toFixed(1)} CPU s |`,
    `| control-plane RSS | peak ${r.controlPlane.peakRssMb.toFixed(0)} MB (VmHWM ${r.controlPlane.hwmRssMb.toFixed(0)} MB); serving, no proxy: ${r.readyRssMb.toFixed(0)} MB; peak in initial push ${r.initialPush.peakRssMb.toFixed(0)}, single changes ${r.endpointChange.peakRssMb.toFixed(0)}, starvation ${r.starvation.peakRssMb.toFixed(0)} MB |`,
    `| control-plane CPU | ${r.controlPlane.cpuSeconds.toFixed(1)} s in total |`,
    `| slowest GET /ready during the run (event loop held) | ${ms(r.controlPlane.slowestReadyMs)} ms |`,
    `| push rounds (full / endpoint) · responses | ${pushSummary(r.controlPlane.metrics)} |`,
    `| load processes | ${r.load.cpuSeconds.toFixed(1)} CPU s, event-loop delay max ${ms(r.load.loopDelayMaxMs)} ms${r.load.reconnects > 0 ? `, ${r.load.reconnects} stream(s) reconnected` : ''} |`,
    '',
    '## Targets from the issue',
    '',
    ...r.goals.map(
      (g) =>
        `- ${g.goal}: ${g.value === null ? '–' : `${g.value.toFixed(0)} ${g.unit}`} — ${g.met === null ? 'not evaluated' : g.met ? 'met' : 'NOT met'}`,
    ),
    '',
  ];
  if (r.profile) {
    lines.push('## Control-plane CPU profile (self time)', '', '```');
    for (const p of r.profile.slice(0, 15))
      lines.push(
        `${p.selfMs.toFixed(0).padStart(8)} ms ${(p.share * 100).toFixed(1).padStart(5)}%  ${p.functionName}${p.location ? ` (${p.location})` : ''}`,
      );
    lines.push('```', '');
  }
  if (r.warnings.length > 0) lines.push('## Warnings', '', ...r.warnings.map((w) => `- ${w}`), '');
  return lines.join('\n');
}

/** Key figures next to the previous run's. */
export function compareWithPrevious(current: CpBenchResults, previous: unknown): string[] {
  const p = previous as Partial<CpBenchResults> | null;
  if (!p || p.schema !== 1 || !p.endpointChange || !p.controlPlane || !p.initialPush)
    return ['previous results unreadable: no comparison'];
  const sameSize =
    p.mesh?.services === current.mesh.services &&
    p.mesh.endpoints === current.mesh.endpoints &&
    p.mesh.proxies === current.mesh.proxies;
  const pairs: [string, number | null | undefined, number | null | undefined][] = [
    ['full push ms', p.initialPush.fullPushMs, current.initialPush.fullPushMs],
    ['change→all p99 ms', p.endpointChange.toAllMs.p99, current.endpointChange.toAllMs.p99],
    ['peak RSS MB', p.controlPlane.peakRssMb, current.controlPlane.peakRssMb],
    ['CPU s', p.controlPlane.cpuSeconds, current.controlPlane.cpuSeconds],
  ];
  const cells = pairs
    .filter(([, a, b]) => a != null && b != null)
    .map(([label, a, b]) => `${label} ${ms(a)} → ${ms(b)}`);
  return [
    `vs previous run (${p.machine?.date ?? '?'}, ${p.machine?.gitCommit?.slice(0, 10) ?? 'no commit'})${sameSize ? '' : ' — different sizes'}: ${cells.join(', ')}`,
  ];
}
