// Running wrk and reading its two kinds of output: the fixed-rate script's JSON line and the plain summary.
import type { ProcessGroup } from './processes.ts';
import { runToCompletion } from './processes.ts';

/** What the shared wrk-fixed-rate.lua prints on stderr; latencies in microseconds. */
export interface FixedRateResult {
  readonly requests: number;
  readonly durationUs: number;
  readonly rps: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
}

export interface SaturationResult {
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  readonly latencyAvgMs: number;
  readonly errors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
  };
  readonly non2xx: number;
}

function numberField(obj: Record<string, unknown>, key: string): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`wrk fixed-rate JSON: field "${key}" is not a number`);
  }
  return value;
}

export function parseFixedRate(stderr: string): FixedRateResult {
  const line = stderr.split('\n').find((l) => l.startsWith('JSON {'));
  if (line === undefined)
    throw new Error(`wrk printed no "JSON {...}" line; stderr:\n${stderr.slice(-1000)}`);
  const parsed: unknown = JSON.parse(line.slice('JSON '.length));
  if (typeof parsed !== 'object' || parsed === null) throw new Error('wrk fixed-rate JSON is not an object');
  const obj = parsed as Record<string, unknown>;
  return {
    requests: numberField(obj, 'requests'),
    durationUs: numberField(obj, 'duration_us'),
    rps: numberField(obj, 'rps'),
    errors: numberField(obj, 'errors'),
    non2xx: numberField(obj, 'non2xx'),
    p50Us: numberField(obj, 'p50'),
    p90Us: numberField(obj, 'p90'),
    p99Us: numberField(obj, 'p99'),
    p999Us: numberField(obj, 'p999'),
    maxUs: numberField(obj, 'max'),
    meanUs: numberField(obj, 'mean'),
  };
}

const TIME_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const scale = TIME_UNIT_MS[unit];
  if (scale === undefined) throw new Error(`wrk: unknown time unit "${unit}"`);
  return Number(value) * scale;
}

/** Parses wrk's plain summary (stdout). */
export function parseSaturation(stdout: string): SaturationResult {
  const totals = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m.exec(stdout);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(stdout);
  if (!totals || !rps) throw new Error(`cannot read wrk's summary:\n${stdout.slice(-1000)}`);
  const latency = /^\s*Latency\s+([\d.]+)(us|ms|s|m|h)/m.exec(stdout);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  return {
    requests: Number(totals[1]),
    durationS: toMs(totals[2], totals[3]) / 1000,
    rps: Number(rps[1]),
    latencyAvgMs: latency ? toMs(latency[1], latency[2]) : Number.NaN,
    errors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
    non2xx: Number(non2xx?.[1] ?? 0),
  };
}

export interface WrkLoad {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  /** Lua script; when given, env GAP_MS is passed through from the caller's environment. */
  readonly script?: string;
}

/** Runs `wrk -t1`, bounded to the run's duration plus a margin. */
export async function runWrk(
  group: ProcessGroup,
  load: WrkLoad,
): Promise<{ stdout: string; stderr: string }> {
  const args = ['-t1', `-c${load.connections}`, `-d${load.durationS}s`];
  if (load.script !== undefined) args.push('-s', load.script);
  args.push(load.url);
  return runToCompletion(group, 'wrk', 'wrk', args, (load.durationS + 20) * 1000);
}
