// The benchmark's results file format, its markdown summary, and the comparison with the previous run.
import type { FilterCost, GoalCheck, Sample, Stat, TargetSummary } from './aggregate.ts';
import type { CaIssuanceOptions, CaIssuanceResult } from './ca/section.ts';
import { caIssuanceLine } from './ca/section.ts';
import type { MachineInfo } from './machine.ts';
import type { TargetName } from './targets.ts';
import { isFilterTarget, isMtlsTarget, plainCounterpart } from './targets.ts';

export interface BenchOptions {
  readonly reps: number;
  readonly quick: boolean;
  readonly targets: readonly TargetName[];
  readonly profile: boolean;
  readonly weftNodeArgs: readonly string[];
  readonly weftCli: string;
  readonly warmupS: number;
  readonly fixedRate: { readonly connections: number; readonly durationS: number; readonly gapMs: number };
  readonly saturation: { readonly connections: number; readonly durationS: number };
  /** The CA issuance runs after the load runs; null when skipped (--no-ca). Absent in older files. */
  readonly ca?: CaIssuanceOptions | null;
}

export interface BenchResults {
  readonly schema: 1;
  readonly machine: MachineInfo;
  readonly options: BenchOptions;
  readonly samples: readonly Sample[];
  readonly summaries: Record<string, TargetSummary>;
  readonly goals: readonly GoalCheck[];
  readonly warnings: readonly string[];
  /** Present when a filter target ran (weft-ratelimit, weft-resilience): its cost against plain weft. */
  readonly filterCosts?: readonly FilterCost[];
  /** Present when the CA issuance rate was measured (bench/ca/issuance.ts). */
  readonly caIssuance?: CaIssuanceResult;
}

function num(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

function withRatio(
  value: number | null | undefined,
  digits: number,
  ratio: number | null | undefined,
): string {
  const base = num(value, digits);
  return ratio === null || ratio === undefined || !Number.isFinite(ratio)
    ? base
    : `${base} (${ratio.toFixed(2)}×)`;
}

function range(s: Stat | null | undefined, digits: number): string {
  return s && s.values.length > 1 ? ` [${s.min.toFixed(digits)}, ${s.max.toFixed(digits)}]` : '';
}

function kilo(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '–'
    : `${(value / 1000).toFixed(1)}k`;
}

function row(s: TargetSummary, twoHop: boolean): string {
  const r = s.ratioToReference;
  const added = s.addedMs;
  const p99 = `${withRatio(added?.p99?.median, 3, r?.addedP99)}${range(added?.p99, 3)}`;
  const cells = [
    s.target,
    withRatio(added?.p50?.median, 3, r?.addedP50),
    withRatio(added?.p90?.median, 3, r?.addedP90),
    p99,
    withRatio(s.vcpuPer1000Rps?.median, 3, r?.vcpuPer1000Rps),
    twoHop
      ? withRatio(s.cpuUsPerRequest?.median, 0, r?.cpuUsPerRequest)
      : `${kilo(s.rpsPerCore?.median)}${r?.rpsPerCore != null ? ` (${r.rpsPerCore.toFixed(2)}×)` : ''}`,
    kilo(s.saturationRps?.median),
    withRatio(s.rssMb?.median, 0, r?.rssMb),
  ];
  return `| ${cells.join(' | ')} |`;
}

function goalLine(g: GoalCheck): string {
  const verdict = g.met === null ? 'not evaluated' : g.met ? 'met' : 'NOT met';
  const value =
    g.value === null ? '–' : g.unit === '×' ? `${g.value.toFixed(2)}×` : `${g.value.toFixed(1)} ${g.unit}`;
  return `- ${g.target}: ${g.goal}: ${value} — ${verdict}`;
}

export function goalLines(goals: readonly GoalCheck[], ranTargets: readonly TargetName[]): string[] {
  if (goals.length === 0) {
    return [
      ranTargets.some((t) => t.startsWith('weft'))
        ? '- (no figures)'
        : '- not evaluated: no Weft target was run',
    ];
  }
  return goals.map(goalLine);
}

function times(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}×`;
}

function signedMs(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '–' : `${value >= 0 ? '+' : ''}${value.toFixed(3)} ms`;
}

/** What a filter cost's line says about the issue's bound, if there is one. */
function verdict(c: FilterCost): string {
  if (c.maxCpuRatio === null) return 'ratio reported, no target';
  const bound = `target ≤ ${times(c.maxCpuRatio)} CPU per request at the fixed rate and at saturation`;
  return c.met === true ? `${bound}: met` : c.met === false ? `${bound}: NOT met` : `${bound}: not evaluated`;
}

/** The summary line of each filter target: its cost as a ratio to the plain proxy, and the issue's bound. */
export function filterCostLines(costs: readonly FilterCost[]): string[] {
  return costs.map((c) =>
    c.cpuRatio === null
      ? `- cost of ${c.costOf} (${c.target}): not evaluated — no figures for ${c.target} or plain ${c.baseline} in this run`
      : `- cost of ${c.costOf} (${c.target}): ${times(c.cpuRatio)} the plain proxy's CPU per request ` +
        `(vCPU per 1000 rps ${num(c.vcpuPer1000Rps, 3)} vs ${num(c.baselineVcpuPer1000Rps, 3)}); ` +
        `rps per proxy core ${times(c.rpsPerCoreRatio)} (${kilo(c.rpsPerCore)} vs ${kilo(c.baselineRpsPerCore)}); ` +
        `added p50 ${signedMs(c.extraP50Ms)}, p99 ${signedMs(c.extraP99Ms)} over ${c.baseline} — ${verdict(c)}`,
  );
}

function filterRow(s: TargetSummary, c: FilterCost | undefined): string {
  const cells = [
    s.target,
    num(s.addedMs?.p50?.median, 3),
    `${num(s.addedMs?.p99?.median, 3)}${range(s.addedMs?.p99, 3)}`,
    `${num(s.vcpuPer1000Rps?.median, 3)} (${times(c?.cpuRatio ?? null)})`,
    `${kilo(s.rpsPerCore?.median)} (${times(c?.rpsPerCoreRatio ?? null)})`,
    kilo(s.saturationRps?.median),
    num(s.rssMb?.median, 0),
  ];
  return `| ${cells.join(' | ')} |`;
}

function mtlsRow(s: TargetSummary): string {
  const r = s.ratioToReference;
  const cells = [
    s.target,
    withRatio(s.addedMs?.p50?.median, 3, r?.addedP50),
    `${withRatio(s.addedMs?.p99?.median, 3, r?.addedP99)}${range(s.addedMs?.p99, 3)}`,
    withRatio(s.cpuUsPerRequest?.median, 0, r?.cpuUsPerRequest),
    withRatio(s.vcpuPer1000Rps?.median, 3, r?.vcpuPer1000Rps),
  ];
  return `| ${cells.join(' | ')} |`;
}

/** What mTLS between the hops adds to the same chain without it, both measured in the same run. */
function mtlsOverPlainLine(s: TargetSummary, plain: TargetSummary): string {
  const d = (a: Stat | null | undefined, b: Stat | null | undefined, digits: number, unit: string): string =>
    a && b ? `${a.median - b.median >= 0 ? '+' : ''}${(a.median - b.median).toFixed(digits)}${unit}` : '–';
  return (
    `- ${s.target} over ${plain.target}: added p50 ${d(s.addedMs?.p50, plain.addedMs?.p50, 3, ' ms')}, ` +
    `p99 ${d(s.addedMs?.p99, plain.addedMs?.p99, 3, ' ms')}; CPU per request at saturation ` +
    `${d(s.cpuUsPerRequest, plain.cpuUsPerRequest, 0, ' µs')}; vCPU per 1000 rps ` +
    `${d(s.vcpuPer1000Rps, plain.vcpuPer1000Rps, 3, '')}`
  );
}

/** The mTLS chains beside the plain ones, ratios Weft/nginx for each kind (issue #5). */
function mtlsSection(summaries: readonly TargetSummary[], all: Record<string, TargetSummary>): string[] {
  const mtls = summaries.filter((s) => isMtlsTarget(s.target));
  if (mtls.length === 0) return [];
  const plain = [...new Set(mtls.map((s) => plainCounterpart(s.target)))]
    .map((t) => (t === undefined ? undefined : all[t]))
    .filter((s): s is TargetSummary => s !== undefined);
  const overPlain = mtls.flatMap((s) => {
    const p = plainCounterpart(s.target);
    const ps = p === undefined ? undefined : all[p];
    return ps === undefined ? [] : [mtlsOverPlainLine(s, ps)];
  });
  return [
    '## Mutual TLS between the two hops (issue #5)',
    '',
    'Client → proxy A (plain HTTP) → mTLS (P-256 SPIFFE certificates, kept-alive connections, sessions resumed) → ' +
      'proxy B → upstream; both proxies together. Ratios: mTLS chains to nginx-mtls-2hop, plain chains to nginx-2hop. ' +
      'weft-mtls-2hop speaks HTTP/1.1 between the proxies, weft-mtls-h2-2hop HTTP/2; nginx verifies the server by ' +
      'a DNS SAN (it cannot match URI SANs), Weft by the server’s SPIFFE URI SAN.',
    '',
    '| chain | added p50 ms | added p99 ms [range] | CPU µs per request at saturation | vCPU per 1000 rps |',
    '|---|---|---|---|---|',
    ...[...plain, ...mtls].map(mtlsRow),
    '',
    ...(overPlain.length > 0 ? ['What mTLS adds to the plain chain (same run):', '', ...overPlain, ''] : []),
  ];
}

export function renderMarkdown(results: BenchResults): string {
  const { machine: m, options: o } = results;
  const summaries = o.targets
    .map((t) => results.summaries[t])
    .filter((s): s is TargetSummary => s !== undefined);
  const commit =
    m.gitCommit === null ? 'no commit' : `${m.gitCommit.slice(0, 10)}${m.gitDirty ? ' (dirty)' : ''}`;
  const lines = [
    '# Weft proxy benchmark',
    '',
    `${m.date} · ${commit} · Node ${m.node} · nginx ${m.nginx ?? '–'} · wrk ${m.wrk ?? '–'} · ${m.cpuModel ?? 'unknown CPU'}, ${m.cpus} vCPU`,
    '',
    `${o.reps} repetition(s)${o.quick ? ' (quick)' : ''}${o.profile ? ' under --cpu-prof (CPU figures inflated)' : ''}; ` +
      `fixed rate: wrk -t1 -c${o.fixedRate.connections} -d${o.fixedRate.durationS}s, mean gap ${o.fixedRate.gapMs} ms; ` +
      `saturation: wrk -t1 -c${o.saturation.connections} -d${o.saturation.durationS}s. ` +
      'Added latency = target minus direct in the same repetition; medians over repetitions, p99 with its range; ' +
      'ratios to nginx with the same number of hops. RSS = peak under load, all of the target’s proxy processes.',
    '',
  ];
  const header = (first: string, cpuColumn: string): string[] => [
    `| ${first} | added p50 ms | added p90 ms | added p99 ms [range] | vCPU per 1000 rps | ${cpuColumn} | saturation rps | RSS MB |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  const oneHop = summaries.filter((s) => s.hops === 1 && !isFilterTarget(s.target));
  if (oneHop.length > 0) {
    lines.push(
      '## One hop',
      '',
      ...header('proxy', 'rps per proxy core'),
      ...oneHop.map((s) => row(s, false)),
      '',
    );
  }
  const twoHops = summaries.filter((s) => s.hops === 2);
  if (twoHops.length > 0) {
    lines.push(
      '## Two hops (both proxies together)',
      '',
      ...header('chain', 'CPU µs per request at saturation'),
      ...twoHops.map((s) => row(s, true)),
      '',
    );
  }
  const withFilters = summaries.filter((s) => isFilterTarget(s.target));
  if (withFilters.length > 0) {
    const costs = results.filterCosts ?? [];
    lines.push(
      '## One hop with HTTP filters (ratios to plain weft in the same run)',
      '',
      '| proxy | added p50 ms | added p99 ms [range] | vCPU per 1000 rps | rps per proxy core | saturation rps | RSS MB |',
      '|---|---|---|---|---|---|---|',
      ...withFilters.map((s) =>
        filterRow(
          s,
          costs.find((c) => c.target === s.target),
        ),
      ),
      '',
    );
  }
  lines.push(...mtlsSection(summaries, results.summaries));
  const direct = results.summaries.direct;
  if (direct) {
    const l = direct.latencyMs;
    lines.push(
      `Direct (no proxy): p50 ${num(l.p50?.median, 3)} ms, p90 ${num(l.p90?.median, 3)} ms, ` +
        `p99 ${num(l.p99?.median, 3)} ms${range(l.p99, 3)}; saturation ${kilo(direct.saturationRps?.median)} rps.`,
      '',
    );
  }
  lines.push(
    '## Targets from the issue',
    '',
    ...goalLines(results.goals, o.targets),
    ...filterCostLines(results.filterCosts ?? []),
    ...(results.caIssuance ? [caIssuanceLine(results.caIssuance)] : []),
    '',
  );
  if (results.warnings.length > 0)
    lines.push('## Warnings', '', ...results.warnings.map((w) => `- ${w}`), '');
  return lines.join('\n');
}

interface KeyFigure {
  readonly label: string;
  readonly pick: (s: TargetSummary) => number | null | undefined;
  readonly digits: number;
}

const KEY_FIGURES: readonly KeyFigure[] = [
  { label: 'added p50 ms', pick: (s) => s.addedMs?.p50?.median, digits: 3 },
  { label: 'added p99 ms', pick: (s) => s.addedMs?.p99?.median, digits: 3 },
  { label: 'vCPU/1000 rps', pick: (s) => s.vcpuPer1000Rps?.median, digits: 3 },
  { label: 'rps per core', pick: (s) => s.rpsPerCore?.median, digits: 0 },
  { label: 'saturation rps', pick: (s) => s.saturationRps?.median, digits: 0 },
  { label: 'RSS MB', pick: (s) => s.rssMb?.median, digits: 1 },
];

/** Key figures of this run next to the previous one's, for each target both ran. */
export function compareWithPrevious(current: BenchResults, previous: unknown): string[] {
  const prevSummaries = (previous as Partial<BenchResults> | null)?.summaries;
  if (typeof prevSummaries !== 'object' || prevSummaries === null)
    return ['previous results unreadable: no comparison'];
  const prevMachine = (previous as Partial<BenchResults>).machine;
  const prevOptions = (previous as Partial<BenchResults>).options;
  const differs =
    prevOptions?.quick !== current.options.quick || prevOptions?.reps !== current.options.reps
      ? ` — not comparable: ${prevOptions?.reps ?? '?'} rep(s)${prevOptions?.quick ? ' quick' : ''} then, ` +
        `${current.options.reps} rep(s)${current.options.quick ? ' quick' : ''} now`
      : '';
  const lines = [
    `vs previous run (${prevMachine?.date ?? '?'}, ${prevMachine?.gitCommit?.slice(0, 10) ?? 'no commit'})${differs}:`,
  ];
  for (const target of current.options.targets) {
    const now = current.summaries[target];
    const before = prevSummaries[target];
    if (!now || !before) continue;
    const cells: string[] = [];
    for (const k of KEY_FIGURES) {
      let a: number | null | undefined;
      try {
        a = k.pick(before);
      } catch {
        a = undefined; // an older file layout
      }
      const b = k.pick(now);
      if (a == null || b == null) continue;
      const change = a !== 0 ? ` (${b >= a ? '+' : ''}${(((b - a) / Math.abs(a)) * 100).toFixed(0)}%)` : '';
      cells.push(`${k.label} ${a.toFixed(k.digits)} → ${b.toFixed(k.digits)}${change}`);
    }
    if (cells.length > 0) lines.push(`  ${target}: ${cells.join(', ')}`);
  }
  return lines;
}
