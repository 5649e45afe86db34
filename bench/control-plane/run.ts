// Scale benchmark of the control plane (issue #3): `npm run bench:control-plane` or
//   node bench/control-plane/run.ts [--quick] [--services N] [--endpoints N] [--proxies N] [--namespaces N]
//     [--delta-share F] [--load-procs N] [--changes N] [--starvation-s S] [--interval-ms MS] [--gap-limit-ms MS]
//     [--profile] [--no-build] [--cli FILE] [--cp-node-args "FLAGS"] [--no-write]
// Results go to bench/control-plane/results/latest.{json,md}; the run before becomes previous.*.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runHarness } from './harness.ts';
import type { HarnessOptions } from './harness.ts';
import { compareWithPrevious, renderMarkdown } from './report.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const resultsDir = path.join(import.meta.dirname, 'results');

class UsageError extends Error {}

const FULL = { services: 5000, endpoints: 20000, proxies: 1000, changes: 20, starvationS: 60 };
const QUICK = { services: 500, endpoints: 2000, proxies: 100, changes: 5, starvationS: 10 };

function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name}: expected ${min}..${max}, got ${value}`);
  return n;
}

function parseOptions(argv: readonly string[]): HarnessOptions & { build: boolean; write: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      services: { type: 'string' },
      endpoints: { type: 'string' },
      proxies: { type: 'string' },
      namespaces: { type: 'string' },
      'delta-share': { type: 'string' },
      'load-procs': { type: 'string' },
      changes: { type: 'string' },
      'starvation-s': { type: 'string' },
      'interval-ms': { type: 'string' },
      'gap-limit-ms': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      cli: { type: 'string', default: path.join(repoRoot, 'dist', 'cli', 'main.js') },
      'cp-node-args': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'node bench/control-plane/run.ts [--quick] [--services N] [--endpoints N] [--proxies N] [--namespaces N]\n' +
        '  [--delta-share F] [--load-procs N] [--changes N] [--starvation-s S] [--interval-ms MS] [--gap-limit-ms MS]\n' +
        '  [--profile] [--no-build] [--cli FILE] [--cp-node-args "FLAGS"] [--no-write]\n',
    );
    process.exit(0);
  }
  const d = values.quick ? QUICK : FULL;
  const services = intOption('services', values.services, d.services, 1, 1_000_000);
  // Incremental xDS by default, as Istio's proxies (since 1.22) and Weft's own agent subscribe;
  // --delta-share 0 measures state of the world.
  const deltaShare = values['delta-share'] === undefined ? 1 : Number(values['delta-share']);
  if (!(deltaShare >= 0 && deltaShare <= 1))
    throw new UsageError(`--delta-share: expected 0..1, got ${values['delta-share']}`);
  return {
    services,
    endpoints: intOption('endpoints', values.endpoints, d.endpoints, services, 10_000_000),
    proxies: intOption('proxies', values.proxies, d.proxies, 1, 100_000),
    namespaces: intOption('namespaces', values.namespaces, 5, 1, 1000),
    deltaShare,
    loadProcs: intOption('load-procs', values['load-procs'], 1, 1, 64),
    changes: intOption('changes', values.changes, d.changes, 1, 10_000),
    starvationS: intOption('starvation-s', values['starvation-s'], d.starvationS, 1, 3600),
    starvationIntervalMs: intOption('interval-ms', values['interval-ms'], 100, 10, 60_000),
    gapLimitMs: intOption('gap-limit-ms', values['gap-limit-ms'], 2000, 1, 600_000),
    quick: values.quick,
    profile: values.profile,
    cli: path.resolve(values.cli),
    cpNodeArgs: values['cp-node-args']?.split(' ').filter((a) => a !== '') ?? [],
    build: !values['no-build'],
    write: !values['no-write'],
  };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.build) {
    const built = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('npm run build failed');
  }
  if (!existsSync(opts.cli))
    throw new UsageError(`${opts.cli} does not exist (run npm run build, or pass --cli)`);
  const results = await runHarness(opts);
  const markdown = renderMarkdown(results);
  process.stdout.write(`\n${markdown}\n`);
  if (!opts.write) return;
  mkdirSync(resultsDir, { recursive: true });
  const latestJson = path.join(resultsDir, 'latest.json');
  const previous = existsSync(latestJson) ? readJson(latestJson) : null;
  for (const ext of ['json', 'md']) {
    const latest = path.join(resultsDir, `latest.${ext}`);
    if (existsSync(latest)) renameSync(latest, path.join(resultsDir, `previous.${ext}`));
  }
  writeFileSync(latestJson, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(resultsDir, 'latest.md'), `${markdown}\n`);
  if (previous !== null) process.stdout.write(`${compareWithPrevious(results, previous).join('\n')}\n`);
  process.stdout.write(`results: ${path.relative(repoRoot, latestJson)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
