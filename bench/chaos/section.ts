// The chaos section of `npm run bench`: `--chaos` runs it after the load benchmark, `--chaos-only`
// instead of it. Results go to bench/results/chaos-latest.{json,md} (the previous run is kept as
// chaos-previous.*), beside the load benchmark's latest.* which it leaves alone.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChaosOptions, ChaosReport } from './harness.ts';
import { DEFAULT_REPLICAS, renderChaosMarkdown, runChaos } from './harness.ts';
import { SCENARIO_NAMES } from './scenarios.ts';

export type ChaosMode = 'off' | 'also' | 'only';

/** Removes the chaos flags from argv (the load benchmark's parser rejects unknown options). */
export function takeChaosFlags(argv: readonly string[]): { argv: string[]; mode: ChaosMode } {
  let mode: ChaosMode = 'off';
  const rest: string[] = [];
  for (const arg of argv) {
    if (arg === '--chaos-only') mode = 'only';
    else if (arg === '--chaos') mode = mode === 'only' ? 'only' : 'also';
    else rest.push(arg);
  }
  return { argv: rest, mode };
}

export function chaosOptions(input: {
  readonly weftCli: string;
  readonly weftNodeArgs: readonly string[];
  readonly tmpDir: string;
  readonly quick: boolean;
}): ChaosOptions {
  return {
    rps: 500,
    // 4 scenarios × (warm-up + run + ~2 s start/stop): about 100 s in all, 40 s with --quick.
    durationS: input.quick ? 5 : 20,
    warmupS: input.quick ? 2 : 3,
    replicas: DEFAULT_REPLICAS,
    scenarios: SCENARIO_NAMES,
    weftCli: input.weftCli,
    weftNodeArgs: input.weftNodeArgs,
    tmpDir: input.tmpDir,
    requestTimeoutMs: 10_000,
  };
}

export function writeChaosResults(report: ChaosReport, markdown: string, resultsDir: string): void {
  mkdirSync(resultsDir, { recursive: true });
  for (const ext of ['json', 'md']) {
    const latest = path.join(resultsDir, `chaos-latest.${ext}`);
    if (existsSync(latest)) renameSync(latest, path.join(resultsDir, `chaos-previous.${ext}`));
  }
  writeFileSync(path.join(resultsDir, 'chaos-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(resultsDir, 'chaos-latest.md'), markdown);
}

/** Runs the chaos benchmark, prints its table and targets, and writes the results. */
export async function runChaosSection(options: ChaosOptions, resultsDir: string): Promise<ChaosReport> {
  console.log(
    `\nchaos benchmark: ${options.rps} rps × ${options.durationS} s (+${options.warmupS} s warm-up) × ${options.scenarios.length} scenarios`,
  );
  const report = await runChaos(options);
  const markdown = renderChaosMarkdown(report);
  console.log(`\n${markdown}`);
  writeChaosResults(report, markdown, resultsDir);
  console.log(`chaos results written to ${path.join(path.basename(resultsDir), 'chaos-latest.{json,md}')}`);
  return report;
}
