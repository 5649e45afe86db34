// Load benchmark of the Weft proxy against direct traffic and nginx, following
// ../shared/bench-reference/README.md; then the CA's issuance rate (bench/ca/issuance.ts).
// Usage: node bench/run.ts [--reps N] [--quick]
//   [--targets direct,nginx,weft,nginx-2hop,weft-2hop,weft-ratelimit,weft-resilience,weft-telemetry,weft-tracing,
//              nginx-mtls-2hop,weft-mtls-2hop,weft-mtls-h2-2hop] [--profile] [--no-ca (skip the CA issuance rate)]
//   [--weft-node-args="--max-semi-space-size=2 ..." (with "=": the value starts with a dash)] [--weft-cli dist/cli/main.js]
//   [--results-name NAME (write bench/results/NAME.{json,md} instead of latest.*) | --no-write]
//   [--chaos (also run the chaos benchmark, bench/chaos/) | --chaos-only]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RunMeasurement, Sample } from './aggregate.ts';
import { checkGoals, filterCosts, summarize } from './aggregate.ts';
import { machineInfo } from './machine.ts';
import type { RssSummary } from './procstat.ts';
import { CpuMeter, RssSampler, clockTicksPerSecond } from './procstat.ts';
import { ProcessGroup } from './processes.ts';
import { chaosOptions, runChaosSection, takeChaosFlags } from './chaos/section.ts';
import type { CaIssuanceResult } from './ca/section.ts';
import { caIssuanceLine, runCaIssuance } from './ca/section.ts';
import { formatSelfTimes, parseCpuProfile, topSelfTime } from './profile.ts';
import type { BenchOptions, BenchResults } from './report.ts';
import { compareWithPrevious, filterCostLines, goalLines, renderMarkdown } from './report.ts';
import type { BenchContext, RunningTarget, TargetName } from './targets.ts';
import {
  FILTER_BASELINE,
  TARGET_NAMES,
  findReferenceDir,
  isFilterTarget,
  isMtlsTarget,
  isTargetName,
  startTarget,
  startUpstream,
} from './targets.ts';
import type { FixedRateResult, SaturationResult, WrkLoad } from './wrk.ts';
import { parseFixedRate, parseSaturation, runWrk } from './wrk.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(repoRoot, 'bench', 'results');
const tmpDir = path.join(resultsDir, 'tmp');

/** A mistake on the command line: reported without a stack trace. */
class UsageError extends Error {}

/** Where the results go: latest.* (rotating the old ones to previous.*), another name beside them, or nowhere. */
type ResultsDestination =
  { readonly kind: 'latest' } | { readonly kind: 'named'; readonly name: string } | { readonly kind: 'none' };

/** What is measured (recorded in the results file), and where the results go (not recorded). */
function parseOptions(argv: readonly string[]): { options: BenchOptions; destination: ResultsDestination } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      targets: { type: 'string', default: TARGET_NAMES.join(',') },
      profile: { type: 'boolean', default: false },
      'weft-node-args': { type: 'string' },
      'weft-cli': { type: 'string', default: path.join(repoRoot, 'dist', 'cli', 'main.js') },
      'results-name': { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      'no-ca': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'node bench/run.ts [--reps N] [--quick] [--targets ' +
        `${TARGET_NAMES.join(',')}] [--profile] [--weft-node-args="FLAGS"] [--weft-cli FILE] ` +
        '[--results-name NAME | --no-write] [--no-ca] [--chaos | --chaos-only]\n',
    );
    process.exit(0);
  }
  const quick = values.quick;
  const reps = values.reps === undefined ? (quick ? 1 : 3) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50)
    throw new UsageError(`--reps: expected 1..50, got ${values.reps}`);
  const targets: TargetName[] = [];
  for (const name of values.targets.split(',').map((t) => t.trim())) {
    if (name === '') continue;
    if (!isTargetName(name))
      throw new UsageError(`--targets: unknown target "${name}" (known: ${TARGET_NAMES.join(', ')})`);
    if (!targets.includes(name)) targets.push(name);
  }
  // A filter target's cost is a ratio to plain weft measured in the same run, so weft runs with it.
  if (targets.some(isFilterTarget) && !targets.includes(FILTER_BASELINE)) targets.unshift(FILTER_BASELINE);
  // Added latency is measured against direct, so direct always runs.
  if (!targets.includes('direct')) targets.unshift('direct');
  const name = values['results-name'];
  if (name !== undefined && values['no-write'])
    throw new UsageError('--results-name and --no-write exclude each other');
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    throw new UsageError(
      `--results-name: expected a plain file name (letters, digits, . _ -), got "${name}"`,
    );
  if (name === 'previous') throw new UsageError('--results-name: "previous" is where latest.* rotates to');
  const destination: ResultsDestination = values['no-write']
    ? { kind: 'none' }
    : name === undefined || name === 'latest'
      ? { kind: 'latest' }
      : { kind: 'named', name };
  const gapMs = Number(process.env.GAP_MS ?? '16');
  const durationS = quick ? 3 : 10;
  const options: BenchOptions = {
    reps,
    quick,
    targets,
    profile: values.profile,
    // By default the proxy runs with the flags `npx weft` uses (the shebang of bin/weft.js).
    weftNodeArgs: (values['weft-node-args'] ?? launcherFlags(repoRoot)).split(/\s+/).filter((a) => a !== ''),
    weftCli: path.resolve(values['weft-cli']),
    warmupS: quick ? 1 : 3,
    fixedRate: { connections: 16, durationS, gapMs },
    saturation: { connections: 64, durationS },
    ca: values['no-ca'] ? null : { count: quick ? 400 : 1000, inFlight: 8, reps: quick ? 1 : 3 },
  };
  return { options, destination };
}

function requireCommand(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 5000 });
  if (result.error) {
    throw new Error(
      `${command} is not available (${result.error.message}); run scripts/install-test-deps.sh`,
    );
  }
}

interface Measured<W> {
  readonly wrk: W;
  readonly measured: RunMeasurement;
}

/** One wrk run with the proxy's CPU and RSS (and the upstream's CPU) measured around it. */
async function measuredRun<W>(
  group: ProcessGroup,
  target: RunningTarget,
  upstreamPid: number,
  load: WrkLoad,
  parse: (out: { stdout: string; stderr: string }) => W,
): Promise<Measured<W>> {
  const proxied = target.proxyPids.length > 0;
  const proxyCpu = proxied ? new CpuMeter(target.proxyPids) : undefined;
  const upstreamCpu = new CpuMeter([upstreamPid]);
  const rss = proxied ? new RssSampler(target.proxyPids) : undefined;
  rss?.start();
  proxyCpu?.start();
  upstreamCpu.start();
  let out: { stdout: string; stderr: string };
  let rssSummary: RssSummary | undefined;
  try {
    out = await runWrk(group, load);
  } finally {
    // Stopped on failure too, so no sampling timer outlives the run.
    rssSummary = rss?.stop();
  }
  const proxyCpuS = proxyCpu ? proxyCpu.stop() : null;
  const upstreamCpuS = upstreamCpu.stop();
  return {
    wrk: parse(out),
    measured: {
      proxyCpuS,
      upstreamCpuS,
      rssPeakKb: rssSummary?.peakTotalKb ?? null,
      rssPeakPerProxyKb: rssSummary?.peakPerRootKb ?? [],
      hwmKb: rssSummary?.hwmTotalKb ?? null,
      rssSamples: rssSummary?.samples ?? 0,
    },
  };
}

async function benchmark(ctx: BenchContext, options: BenchOptions, upstreamPid: number): Promise<Sample[]> {
  const targets: RunningTarget[] = [];
  for (const name of options.targets) {
    console.log(`starting ${name}`);
    targets.push(await startTarget(ctx, name));
  }
  const script = path.join(ctx.referenceDir, 'wrk-fixed-rate.lua');
  const samples: Sample[] = [];
  for (let rep = 0; rep < options.reps; rep++) {
    const shift = rep % targets.length;
    const order = [...targets.slice(shift), ...targets.slice(0, shift)];
    for (const [position, target] of order.entries()) {
      const started = Date.now();
      await runWrk(ctx.group, { url: target.url, connections: 64, durationS: options.warmupS });
      const fixed = await measuredRun<FixedRateResult>(
        ctx.group,
        target,
        upstreamPid,
        {
          url: target.url,
          connections: options.fixedRate.connections,
          durationS: options.fixedRate.durationS,
          script,
        },
        (out) => parseFixedRate(out.stderr),
      );
      const saturation = await measuredRun<SaturationResult>(
        ctx.group,
        target,
        upstreamPid,
        {
          url: target.url,
          connections: options.saturation.connections,
          durationS: options.saturation.durationS,
        },
        (out) => parseSaturation(out.stdout),
      );
      samples.push({ rep, position, target: target.name, hops: target.hops, fixed, saturation });
      const cpu = fixed.measured.proxyCpuS;
      console.log(
        `rep ${rep + 1}/${options.reps} ${target.name.padEnd(10)} p50 ${(fixed.wrk.p50Us / 1000).toFixed(3)} ms, ` +
          `p99 ${(fixed.wrk.p99Us / 1000).toFixed(3)} ms, ${fixed.wrk.rps.toFixed(0)} rps` +
          (cpu === null ? '' : `, proxy CPU ${cpu.toFixed(2)} s`) +
          `; saturation ${saturation.wrk.rps.toFixed(0)} rps` +
          (saturation.measured.proxyCpuS === null
            ? ''
            : `, proxy CPU ${saturation.measured.proxyCpuS.toFixed(2)} s`) +
          ` (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  return samples;
}

function warningsFor(samples: readonly Sample[], options: BenchOptions): string[] {
  const warnings: string[] = [];
  const expectedRps = (options.fixedRate.connections * 1000) / options.fixedRate.gapMs;
  for (const s of samples) {
    const e = s.saturation.wrk.errors;
    const failed =
      s.fixed.wrk.errors +
      s.fixed.wrk.non2xx +
      e.connect +
      e.read +
      e.write +
      e.timeout +
      s.saturation.wrk.non2xx;
    if (failed > 0) warnings.push(`${s.target}, repetition ${s.rep + 1}: ${failed} failed requests`);
    if (s.fixed.wrk.rps < 0.8 * expectedRps) {
      warnings.push(
        `${s.target}, repetition ${s.rep + 1}: fixed rate reached only ${s.fixed.wrk.rps.toFixed(0)} rps ` +
          `(about ${expectedRps.toFixed(0)} intended)`,
      );
    }
  }
  return warnings;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function writeResults(
  results: BenchResults,
  markdown: string,
  profile: boolean,
  destination: ResultsDestination,
): void {
  if (profile) {
    // A profiled run's CPU figures are inflated: kept apart so they never become the baseline.
    writeFileSync(path.join(tmpDir, 'profile-run.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(tmpDir, 'profile-run.md'), markdown);
    console.log(
      `\nresults (profiled run) written to ${path.relative(repoRoot, tmpDir)}/profile-run.{json,md}`,
    );
    return;
  }
  if (destination.kind === 'none') {
    console.log('\nresults not written (--no-write)');
    return;
  }
  if (destination.kind === 'named') {
    // Kept beside latest.*, which stays the full run's: compared with the same name's previous contents.
    const json = path.join(resultsDir, `${destination.name}.json`);
    const before = existsSync(json) ? readJson(json) : null;
    writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, `${destination.name}.md`), markdown);
    console.log(`\nresults written to ${path.relative(repoRoot, resultsDir)}/${destination.name}.{json,md}`);
    if (before !== null) console.log(`\n${compareWithPrevious(results, before).join('\n')}`);
    return;
  }
  const latestJson = path.join(resultsDir, 'latest.json');
  const previous = existsSync(latestJson) ? readJson(latestJson) : null;
  for (const ext of ['json', 'md']) {
    const latest = path.join(resultsDir, `latest.${ext}`);
    if (existsSync(latest)) renameSync(latest, path.join(resultsDir, `previous.${ext}`));
  }
  writeFileSync(latestJson, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(resultsDir, 'latest.md'), markdown);
  console.log(`\nresults written to ${path.relative(repoRoot, resultsDir)}/latest.{json,md}`);
  if (previous !== null) console.log(`\n${compareWithPrevious(results, previous).join('\n')}`);
}

function printProfiles(): void {
  const files = readdirSync(tmpDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    console.log(
      '\nno .cpuprofile was written (did the Weft proxy exit by itself on /quitquitquit or SIGTERM?)',
    );
    return;
  }
  // The one-hop proxy's profile is the one to read; the chain's are kept beside it.
  const main = files.includes('weft.cpuprofile') ? 'weft.cpuprofile' : files[0];
  for (const file of files) {
    const rows = topSelfTime(
      parseCpuProfile(readFileSync(path.join(tmpDir, file), 'utf8')),
      25,
      `file://${repoRoot}/`,
    );
    const text = formatSelfTimes(rows);
    writeFileSync(path.join(tmpDir, file.replace(/\.cpuprofile$/, '.top.txt')), `${text}\n`);
    if (file === main)
      console.log(`\ntop 25 self-time functions in ${path.relative(repoRoot, tmpDir)}/${file}:\n${text}`);
  }
  console.log(
    `\nprofiles and their top lists: ${files.map((f) => path.relative(repoRoot, path.join(tmpDir, f))).join(', ')}`,
  );
}

async function main(): Promise<void> {
  const chaos = takeChaosFlags(process.argv.slice(2));
  const { options, destination } = parseOptions(chaos.argv);
  const chaosRun = (): Promise<unknown> =>
    runChaosSection(chaosOptions({ ...options, tmpDir: path.join(tmpDir, 'chaos') }), resultsDir);
  if (chaos.mode === 'only') {
    await chaosRun();
    return;
  }
  requireCommand('wrk', ['-v']);
  if (options.targets.some((t) => t.startsWith('nginx'))) requireCommand('nginx', ['-v']);
  if (options.targets.some(isMtlsTarget)) requireCommand('openssl', ['version']);
  clockTicksPerSecond();
  mkdirSync(tmpDir, { recursive: true });
  for (const f of readdirSync(tmpDir)) if (f.endsWith('.cpuprofile')) rmSync(path.join(tmpDir, f));

  const group = new ProcessGroup();
  const killAll = (code: number) => (): void => {
    if (code !== 1) console.error('interrupted: killing every process the benchmark started');
    group.killAllNow();
    process.exit(code);
  };
  process.once('SIGINT', killAll(130));
  process.once('SIGTERM', killAll(143));
  process.once('exit', () => group.killAllNow());
  // Every step is bounded; this bounds the whole, in case something unforeseen hangs between steps.
  const perTargetS = options.warmupS + options.fixedRate.durationS + options.saturation.durationS + 10;
  const budgetS = 2 * options.reps * options.targets.length * perTargetS + 300;
  const watchdog = setTimeout(() => {
    console.error(`benchmark exceeded its ${budgetS} s budget: stopping everything`);
    killAll(1)();
  }, budgetS * 1000);
  watchdog.unref();

  let samples: Sample[];
  try {
    const { at: upstream, pid: upstreamPid } = await startUpstream(group, repoRoot, tmpDir);
    const ctx: BenchContext = {
      group,
      repoRoot,
      tmpDir,
      referenceDir: findReferenceDir(repoRoot),
      upstream,
      profile: options.profile,
      weftNodeArgs: options.weftNodeArgs,
      weftCli: options.weftCli,
    };
    samples = await benchmark(ctx, options, upstreamPid);
  } finally {
    await group.stopAll();
    clearTimeout(watchdog);
  }

  let caIssuance: CaIssuanceResult | undefined;
  if (options.ca) {
    console.log('measuring the CA issuance rate (bench/ca/issuance.ts)');
    caIssuance = await runCaIssuance(repoRoot, options.ca);
  }

  const summaries = summarize(samples, options.targets);
  const costs = filterCosts(summaries, options.targets);
  const results: BenchResults = {
    schema: 1,
    machine: machineInfo(repoRoot),
    options,
    samples,
    summaries,
    goals: checkGoals(summaries),
    warnings: warningsFor(samples, options),
    // Only when a filter target ran, so the other runs' files keep their layout.
    ...(costs.length > 0 ? { filterCosts: costs } : {}),
    ...(caIssuance ? { caIssuance } : {}),
  };
  const markdown = renderMarkdown(results);
  console.log(`\n${markdown}`);
  writeResults(results, markdown, options.profile, destination);
  console.log(
    `\nthe issue's targets:\n${[
      ...goalLines(results.goals, options.targets),
      ...filterCostLines(costs),
      ...(caIssuance ? [caIssuanceLine(caIssuance)] : []),
    ].join('\n')}`,
  );
  if (options.profile) printProfiles();
  if (chaos.mode === 'also') await chaosRun();
}

main().catch((err: unknown) => {
  const usage =
    err instanceof UsageError ||
    (err instanceof Error && 'code' in err && err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
  console.error(err instanceof Error ? (usage ? err.message : (err.stack ?? err.message)) : String(err));
  process.exitCode = 1;
});

/** The Node flags in bin/weft.js's shebang line. */
function launcherFlags(root: string): string {
  const first = readFileSync(path.join(root, 'bin', 'weft.js'), 'utf8').split('\n')[0];
  return first
    .split(/\s+/)
    .filter((w) => w.startsWith('--'))
    .join(' ');
}
