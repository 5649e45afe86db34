// The CA issuance rate as a section of `npm run bench`: bench/ca/issuance.ts run a few times in its own
// process (after the load runs, so nothing else of the benchmark competes for the CPU), medians reported.
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Stat } from '../aggregate.ts';
import { stat } from '../aggregate.ts';

/** Issue #5's target for the CA. */
export const CA_CERTS_PER_S_GOAL = 200;

export interface CaIssuanceOptions {
  /** Certificates signed per run. */
  readonly count: number;
  /** Signing requests in flight at once. */
  readonly inFlight: number;
  readonly reps: number;
}

export interface CaIssuanceRun {
  readonly count: number;
  readonly seconds: number;
  readonly certsPerS: number;
  readonly cpuUsPerCert: number;
}

export interface CaIssuanceResult {
  readonly options: CaIssuanceOptions;
  readonly runs: readonly CaIssuanceRun[];
  readonly certsPerS: Stat | null;
  readonly cpuUsPerCert: Stat | null;
  /** Median certificates/s against CA_CERTS_PER_S_GOAL; null without figures. */
  readonly met: boolean | null;
}

/** Reads issuance.ts's line: "400 certificates in 0.19 s: 2074/s (8 in flight), 486 µs CPU each". */
export function parseIssuance(stdout: string): CaIssuanceRun {
  const m = /(\d+) certificates in ([\d.]+) s: (\d+)\/s \(\d+ in flight\), (\d+) µs CPU each/.exec(stdout);
  if (m === null) throw new Error(`bench/ca/issuance.ts printed no result line:\n${stdout}`);
  const count = Number(m[1]);
  const seconds = Number(m[2]);
  // From count and seconds rather than the rounded figure printed.
  return {
    count,
    seconds,
    certsPerS: seconds > 0 ? count / seconds : Number(m[3]),
    cpuUsPerCert: Number(m[4]),
  };
}

function runOnce(repoRoot: string, options: CaIssuanceOptions): Promise<CaIssuanceRun> {
  const script = path.join(repoRoot, 'bench', 'ca', 'issuance.ts');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [script, String(options.count), String(options.inFlight)],
      { timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
        else {
          try {
            resolve(parseIssuance(stdout));
          } catch (parseErr) {
            reject(parseErr instanceof Error ? parseErr : new Error(String(parseErr)));
          }
        }
      },
    );
  });
}

export async function runCaIssuance(repoRoot: string, options: CaIssuanceOptions): Promise<CaIssuanceResult> {
  const runs: CaIssuanceRun[] = [];
  for (let rep = 0; rep < options.reps; rep++) runs.push(await runOnce(repoRoot, options));
  return summarizeIssuance(options, runs);
}

export function summarizeIssuance(
  options: CaIssuanceOptions,
  runs: readonly CaIssuanceRun[],
): CaIssuanceResult {
  const certsPerS = stat(runs.map((r) => r.certsPerS));
  return {
    options,
    runs,
    certsPerS,
    cpuUsPerCert: stat(runs.map((r) => r.cpuUsPerCert)),
    met: certsPerS === null ? null : certsPerS.median >= CA_CERTS_PER_S_GOAL,
  };
}

/** The goal line for the report's list of the targets. */
export function caIssuanceLine(result: CaIssuanceResult): string {
  const { options: o, certsPerS: rate, cpuUsPerCert: cpu } = result;
  const verdict = result.met === null ? 'not evaluated' : result.met ? 'met' : 'NOT met';
  const figure =
    rate === null
      ? '–'
      : `${rate.median.toFixed(0)}/s` +
        (rate.values.length > 1 ? ` [${rate.min.toFixed(0)}, ${rate.max.toFixed(0)}]` : '') +
        (cpu === null ? '' : `, ${cpu.median.toFixed(0)} µs CPU per certificate`);
  return (
    `- CA issuance (bench/ca/issuance.ts ${o.count} ${o.inFlight}, median of ${result.runs.length}): ` +
    `≥ ${CA_CERTS_PER_S_GOAL} certificates/s: ${figure} — ${verdict}`
  );
}
