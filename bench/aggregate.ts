// From raw per-repetition samples to medians, ranges, ratios to nginx, and the targets.
import type { TargetName } from './targets.ts';
import {
  FILTER_BASELINE,
  filterCostOf,
  filterMaxCpuRatio,
  isFilterTarget,
  isMtlsTarget,
  referenceFor,
} from './targets.ts';
import type { FixedRateResult, SaturationResult } from './wrk.ts';

/** What was measured around one wrk run. CPU in seconds, memory in kB; null where there is no proxy. */
export interface RunMeasurement {
  readonly proxyCpuS: number | null;
  readonly upstreamCpuS: number;
  readonly rssPeakKb: number | null;
  readonly rssPeakPerProxyKb: readonly number[];
  readonly hwmKb: number | null;
  readonly rssSamples: number;
}

export interface Sample {
  readonly rep: number;
  /** Position of the target in this repetition's (rotated) order. */
  readonly position: number;
  readonly target: TargetName;
  readonly hops: number;
  readonly fixed: { readonly wrk: FixedRateResult; readonly measured: RunMeasurement };
  readonly saturation: { readonly wrk: SaturationResult; readonly measured: RunMeasurement };
}

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: readonly number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function stat(values: readonly number[]): Stat | null {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return null;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), values: finite };
}

export interface Ratios {
  readonly addedP50: number | null;
  readonly addedP90: number | null;
  readonly addedP99: number | null;
  readonly vcpuPer1000Rps: number | null;
  readonly rpsPerCore: number | null;
  readonly cpuUsPerRequest: number | null;
  readonly rssMb: number | null;
}

export interface TargetSummary {
  readonly target: TargetName;
  readonly hops: number;
  /** The nginx target the ratios are taken against. */
  readonly reference: TargetName | null;
  readonly reps: number;
  /** Absolute latency at the fixed rate. */
  readonly latencyMs: {
    readonly p50: Stat | null;
    readonly p90: Stat | null;
    readonly p99: Stat | null;
    readonly p999: Stat | null;
  };
  /** Target minus direct, within each repetition. */
  readonly addedMs: {
    readonly p50: Stat | null;
    readonly p90: Stat | null;
    readonly p99: Stat | null;
  } | null;
  readonly fixedRateRps: Stat | null;
  /** Proxy CPU-seconds per 1000 requests at the fixed rate (all hops together). */
  readonly vcpuPer1000Rps: Stat | null;
  /** Requests per proxy CPU-second at saturation (all hops together). */
  readonly rpsPerCore: Stat | null;
  readonly cpuUsPerRequest: Stat | null;
  readonly saturationRps: Stat | null;
  /** Peak RSS of all the target's proxy processes during the runs, MiB. */
  readonly rssMb: Stat | null;
  /** Peak RSS of the largest single proxy (with its children), MiB. */
  readonly rssPerProxyMb: Stat | null;
  readonly upstreamVcpuPer1000Rps: Stat | null;
  /** Failed requests (socket errors and non-2xx) over all runs. */
  readonly failedRequests: number;
  readonly ratioToReference: Ratios | null;
}

const usToMs = (us: number): number => us / 1000;
const kbToMb = (kb: number): number => kb / 1024;

function perSample<T>(samples: readonly Sample[], pick: (s: Sample) => T | null): T[] {
  return samples.map(pick).filter((v): v is T => v !== null);
}

function failedRequests(s: Sample): number {
  const e = s.saturation.wrk.errors;
  return (
    s.fixed.wrk.errors +
    s.fixed.wrk.non2xx +
    e.connect +
    e.read +
    e.write +
    e.timeout +
    s.saturation.wrk.non2xx
  );
}

/**
 * a / b, or null when it means nothing: a missing figure, or a reference at or below zero — an added
 * latency can come out negative when the direct run's own tail was the slower one (scheduling noise on a
 * shared machine), and a ratio to it would read as "met".
 */
function ratio(a: Stat | null | undefined, b: Stat | null | undefined): number | null {
  if (!a || !b || b.median <= 0) return null;
  return a.median / b.median;
}

export function summarize(
  samples: readonly Sample[],
  targets: readonly TargetName[],
): Record<string, TargetSummary> {
  const directByRep = new Map<number, Sample>();
  for (const s of samples) if (s.target === 'direct') directByRep.set(s.rep, s);

  const base = new Map<TargetName, Omit<TargetSummary, 'ratioToReference'>>();
  for (const target of targets) {
    const mine = samples.filter((s) => s.target === target);
    if (mine.length === 0) continue;
    const hops = mine[0].hops;
    const added = (pick: (w: FixedRateResult) => number): Stat | null =>
      stat(
        perSample(mine, (s) => {
          const direct = directByRep.get(s.rep);
          return direct ? usToMs(pick(s.fixed.wrk) - pick(direct.fixed.wrk)) : null;
        }),
      );
    const proxied = hops > 0;
    base.set(target, {
      target,
      hops,
      reference: referenceFor(target) ?? null,
      reps: mine.length,
      latencyMs: {
        p50: stat(mine.map((s) => usToMs(s.fixed.wrk.p50Us))),
        p90: stat(mine.map((s) => usToMs(s.fixed.wrk.p90Us))),
        p99: stat(mine.map((s) => usToMs(s.fixed.wrk.p99Us))),
        p999: stat(mine.map((s) => usToMs(s.fixed.wrk.p999Us))),
      },
      addedMs: proxied
        ? { p50: added((w) => w.p50Us), p90: added((w) => w.p90Us), p99: added((w) => w.p99Us) }
        : null,
      fixedRateRps: stat(mine.map((s) => s.fixed.wrk.rps)),
      vcpuPer1000Rps: stat(
        perSample(mine, (s) =>
          s.fixed.measured.proxyCpuS === null
            ? null
            : (s.fixed.measured.proxyCpuS / s.fixed.wrk.requests) * 1000,
        ),
      ),
      rpsPerCore: stat(
        perSample(mine, (s) =>
          s.saturation.measured.proxyCpuS === null || s.saturation.measured.proxyCpuS === 0
            ? null
            : s.saturation.wrk.requests / s.saturation.measured.proxyCpuS,
        ),
      ),
      cpuUsPerRequest: stat(
        perSample(mine, (s) =>
          s.saturation.measured.proxyCpuS === null
            ? null
            : (s.saturation.measured.proxyCpuS / s.saturation.wrk.requests) * 1e6,
        ),
      ),
      saturationRps: stat(mine.map((s) => s.saturation.wrk.rps)),
      rssMb: stat(
        perSample(mine, (s) =>
          s.fixed.measured.rssPeakKb === null || s.saturation.measured.rssPeakKb === null
            ? null
            : kbToMb(Math.max(s.fixed.measured.rssPeakKb, s.saturation.measured.rssPeakKb)),
        ),
      ),
      rssPerProxyMb: stat(
        perSample(mine, (s) => {
          const all = [...s.fixed.measured.rssPeakPerProxyKb, ...s.saturation.measured.rssPeakPerProxyKb];
          return all.length === 0 ? null : kbToMb(Math.max(...all));
        }),
      ),
      upstreamVcpuPer1000Rps: stat(
        mine.map((s) => (s.fixed.measured.upstreamCpuS / s.fixed.wrk.requests) * 1000),
      ),
      failedRequests: mine.reduce((sum, s) => sum + failedRequests(s), 0),
    });
  }

  const out: Record<string, TargetSummary> = {};
  for (const [target, summary] of base) {
    const ref = summary.reference === null ? undefined : base.get(summary.reference);
    const ratioToReference: Ratios | null = ref
      ? {
          addedP50: ratio(summary.addedMs?.p50, ref.addedMs?.p50),
          addedP90: ratio(summary.addedMs?.p90, ref.addedMs?.p90),
          addedP99: ratio(summary.addedMs?.p99, ref.addedMs?.p99),
          vcpuPer1000Rps: ratio(summary.vcpuPer1000Rps, ref.vcpuPer1000Rps),
          rpsPerCore: ratio(summary.rpsPerCore, ref.rpsPerCore),
          cpuUsPerRequest: ratio(summary.cpuUsPerRequest, ref.cpuUsPerRequest),
          rssMb: ratio(summary.rssMb, ref.rssMb),
        }
      : null;
    out[target] = { ...summary, ratioToReference };
  }
  return out;
}

export interface GoalCheck {
  readonly target: TargetName;
  readonly goal: string;
  readonly value: number | null;
  readonly unit: string;
  /** null when it could not be evaluated (reference or figure missing). */
  readonly met: boolean | null;
}

/** The targets, checked for every Weft target that ran against nginx with the same number of hops. */
export function checkGoals(summaries: Record<string, TargetSummary>): GoalCheck[] {
  const checks: GoalCheck[] = [];
  for (const summary of Object.values(summaries)) {
    // Filter targets report their cost against plain weft instead (filterCosts).
    if (!summary.target.startsWith('weft') || isFilterTarget(summary.target)) continue;
    const r = summary.ratioToReference;
    const vs = summary.reference ?? 'nginx';
    const check = (
      goal: string,
      value: number | null | undefined,
      unit: string,
      ok: (v: number) => boolean,
    ): void => {
      const v = value ?? null;
      checks.push({ target: summary.target, goal, value: v, unit, met: v === null ? null : ok(v) });
    };
    check(`vCPU per 1000 rps ≤ 3× ${vs}`, r?.vcpuPer1000Rps, '×', (v) => v <= 3);
    check(`rps per proxy core ≥ 0.35× ${vs}`, r?.rpsPerCore, '×', (v) => v >= 0.35);
    // Both sides have the same number of hops, so the per-hop ratio equals the ratio of the totals.
    check(`added p50 per hop ≤ 2× ${vs}`, r?.addedP50, '×', (v) => v <= 2);
    // Memory is a limit, so the worst repetition counts, per proxy process.
    check(
      'RSS under load ≤ 60 MB per proxy (worst repetition)',
      summary.rssPerProxyMb?.max,
      'MB',
      (v) => v <= 60,
    );
    // Issue #5: what mTLS between the hops costs in tail latency, against nginx doing the same.
    if (isMtlsTarget(summary.target))
      check(`added p99 ≤ 2× ${vs} (issue #5)`, r?.addedP99, '×', (v) => v <= 2);
  }
  return checks;
}

/** What a set of HTTP filters adds to the plain one-hop proxy, both measured in the same run. */
export interface FilterCost {
  readonly target: TargetName;
  /** e.g. "local rate limiting". */
  readonly costOf: string;
  readonly baseline: TargetName;
  readonly vcpuPer1000Rps: number | null;
  readonly baselineVcpuPer1000Rps: number | null;
  /** CPU per request at the fixed rate, target over baseline (medians). */
  readonly cpuRatio: number | null;
  readonly rpsPerCore: number | null;
  readonly baselineRpsPerCore: number | null;
  /** Requests per proxy CPU-second at saturation, target over baseline (medians). */
  readonly rpsPerCoreRatio: number | null;
  /** Added latency over direct, and the part of it above the baseline's (medians). */
  readonly addedP50Ms: number | null;
  readonly addedP99Ms: number | null;
  readonly extraP50Ms: number | null;
  readonly extraP99Ms: number | null;
  /** The bound on CPU per request (ratio), checked at the fixed rate and at saturation; null = none. */
  readonly maxCpuRatio: number | null;
  /** Whether both ratios are within the bound (null: no bound, or no figures). */
  readonly met: boolean | null;
}

const diff = (a: Stat | null | undefined, b: Stat | null | undefined): number | null =>
  a && b ? a.median - b.median : null;

/** One FilterCost per filter target that ran, in the order given. */
export function filterCosts(
  summaries: Record<string, TargetSummary>,
  targets: readonly TargetName[],
): FilterCost[] {
  const base = summaries[FILTER_BASELINE] as TargetSummary | undefined;
  const costs: FilterCost[] = [];
  for (const target of targets) {
    const costOf = filterCostOf(target);
    const s = summaries[target] as TargetSummary | undefined;
    if (costOf === undefined || s === undefined) continue;
    const cpuRatio = ratio(s.vcpuPer1000Rps, base?.vcpuPer1000Rps);
    const rpsPerCoreRatio = ratio(s.rpsPerCore, base?.rpsPerCore);
    const maxCpuRatio = filterMaxCpuRatio(target);
    // At saturation, CPU per request is the inverse of requests per CPU-second.
    const met =
      maxCpuRatio === null || cpuRatio === null || rpsPerCoreRatio === null || rpsPerCoreRatio <= 0
        ? null
        : cpuRatio <= maxCpuRatio && 1 / rpsPerCoreRatio <= maxCpuRatio;
    costs.push({
      target,
      costOf,
      baseline: FILTER_BASELINE,
      vcpuPer1000Rps: s.vcpuPer1000Rps?.median ?? null,
      baselineVcpuPer1000Rps: base?.vcpuPer1000Rps?.median ?? null,
      cpuRatio,
      rpsPerCore: s.rpsPerCore?.median ?? null,
      baselineRpsPerCore: base?.rpsPerCore?.median ?? null,
      rpsPerCoreRatio,
      addedP50Ms: s.addedMs?.p50?.median ?? null,
      addedP99Ms: s.addedMs?.p99?.median ?? null,
      extraP50Ms: diff(s.addedMs?.p50, base?.addedMs?.p50),
      extraP99Ms: diff(s.addedMs?.p99, base?.addedMs?.p99),
      maxCpuRatio,
      met,
    });
  }
  return costs;
}
