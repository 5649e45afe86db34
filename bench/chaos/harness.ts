// The chaos benchmark (issue #4): a fixed request rate through one Weft proxy to three replicas, one
// failing 30% of its requests and one slow, under each scenario of scenarios.ts. Bounded: every
// step has a timeout and the processes are stopped whatever happens.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { ManagedProcess } from '../processes.ts';
import { ProcessGroup, freePort, httpRequest, waitUntil } from '../processes.ts';
import type { HostPort } from '../weft-bootstrap.ts';
import { quantile, runFixedRate } from './load.ts';
import type { ReplicaCounts, ReplicaSpec } from './replicas.ts';
import type { Scenario, ScenarioName } from './scenarios.ts';
import { SCENARIOS, scenarioBootstrap } from './scenarios.ts';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 20_000;
export const SUCCESS_TARGET = 0.999;

export interface ChaosOptions {
  readonly rps: number;
  readonly durationS: number;
  /** Load before the measured run (discarded): the proxy's pools, estimates and ejections settle. */
  readonly warmupS: number;
  /** Replicas without port (assigned at start). */
  readonly replicas: readonly Omit<ReplicaSpec, 'port'>[];
  readonly scenarios: readonly ScenarioName[];
  readonly weftCli: string;
  readonly weftNodeArgs: readonly string[];
  /** Scratch folder for bootstraps and logs. */
  readonly tmpDir: string;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_REPLICAS: readonly Omit<ReplicaSpec, 'port'>[] = [
  { name: 'healthy', failPercent: 0, delayMs: 0 },
  { name: 'failing', failPercent: 30, delayMs: 0 },
  { name: 'slow', failPercent: 0, delayMs: 50 },
];

export interface ScenarioResult {
  readonly name: ScenarioName;
  readonly description: string;
  readonly withPolicies: boolean;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly failedByStatus: Readonly<Record<string, number>>;
  readonly errors: number;
  /** ok / sent. */
  readonly successRate: number;
  readonly achievedRps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** What each replica received during the measured run (retries included). */
  readonly replicas: Readonly<Record<string, ReplicaCounts>>;
  readonly wallS: number;
}

export interface ChaosReport {
  readonly schema: 1;
  readonly kind: 'chaos';
  readonly date: string;
  readonly options: Omit<ChaosOptions, 'tmpDir'>;
  readonly scenarios: readonly ScenarioResult[];
  readonly targets: readonly string[];
  readonly totalS: number;
}

async function startReplicas(
  group: ProcessGroup,
  options: ChaosOptions,
): Promise<{ proc: ManagedProcess; specs: ReplicaSpec[] }> {
  const specs: ReplicaSpec[] = [];
  for (const r of options.replicas) specs.push({ ...r, port: await freePort() });
  const proc = group.spawn(
    'chaos-replicas',
    process.execPath,
    [path.join(import.meta.dirname, 'replicas.ts'), JSON.stringify(specs)],
    { logFile: path.join(options.tmpDir, 'replicas.log') },
  );
  for (const s of specs) {
    await waitUntil(
      `replica ${s.name}`,
      async () => (await httpRequest(`http://${HOST}:${s.port}/__stats`, 1000)).status === 200,
      START_TIMEOUT_MS,
      [proc],
    );
  }
  return { proc, specs };
}

async function startProxy(
  group: ProcessGroup,
  options: ChaosOptions,
  scenario: Scenario,
  replicas: readonly HostPort[],
): Promise<{ proc: ManagedProcess; url: string }> {
  if (!existsSync(options.weftCli))
    throw new Error(`${options.weftCli} not found: build first (npm run build)`);
  const listen = { host: HOST, port: await freePort() };
  const admin = { host: HOST, port: await freePort() };
  const bootstrap = path.join(options.tmpDir, `chaos-${scenario.name}.yaml`);
  writeFileSync(bootstrap, stringify(scenarioBootstrap(scenario, { listen, admin, replicas })));
  const adminUrl = `http://${HOST}:${admin.port}`;
  const proc = group.spawn(
    `chaos-${scenario.name}`,
    process.execPath,
    [...options.weftNodeArgs, options.weftCli, 'proxy', '--bootstrap', bootstrap],
    {
      logFile: path.join(options.tmpDir, `chaos-${scenario.name}.log`),
      gracefulStop: async () => {
        await httpRequest(`${adminUrl}/quitquitquit`, 2000, 'POST');
      },
    },
  );
  await waitUntil(
    `${scenario.name} proxy /ready`,
    async () => (await httpRequest(`${adminUrl}/ready`, 1000)).status === 200,
    START_TIMEOUT_MS,
    [proc],
  );
  return { proc, url: `http://${HOST}:${listen.port}/` };
}

async function replicaCounts(port: number): Promise<Record<string, ReplicaCounts>> {
  const res = await httpRequest(`http://${HOST}:${port}/__stats`, 2000);
  return JSON.parse(res.body.toString('utf8')) as Record<string, ReplicaCounts>;
}

async function runScenario(
  group: ProcessGroup,
  options: ChaosOptions,
  scenario: Scenario,
  replicas: readonly ReplicaSpec[],
): Promise<ScenarioResult> {
  const started = Date.now();
  const { proc, url } = await startProxy(
    group,
    options,
    scenario,
    replicas.map((r) => ({ host: HOST, port: r.port })),
  );
  try {
    const load = { url, rps: options.rps, timeoutMs: options.requestTimeoutMs };
    if (options.warmupS > 0) await runFixedRate({ ...load, durationS: options.warmupS });
    const reset = await httpRequest(`http://${HOST}:${replicas[0].port}/__reset`, 2000, 'POST');
    if (reset.status !== 204) throw new Error(`replica counts reset failed: ${reset.status}`);
    const r = await runFixedRate({ ...load, durationS: options.durationS });
    const counts = await replicaCounts(replicas[0].port);
    const failed = Object.values(r.failedByStatus).reduce((a, b) => a + b, 0);
    return {
      name: scenario.name,
      description: scenario.description,
      withPolicies: scenario.withPolicies,
      sent: r.sent,
      ok: r.ok,
      failed,
      failedByStatus: r.failedByStatus,
      errors: r.errors,
      successRate: r.sent === 0 ? 0 : r.ok / r.sent,
      achievedRps: r.sent / r.elapsedS,
      p50Ms: quantile(r.latenciesMs, 0.5),
      p99Ms: quantile(r.latenciesMs, 0.99),
      p999Ms: quantile(r.latenciesMs, 0.999),
      maxMs: r.latenciesMs.length === 0 ? Number.NaN : r.latenciesMs[r.latenciesMs.length - 1],
      replicas: counts,
      wallS: (Date.now() - started) / 1000,
    };
  } finally {
    await group.stop(proc);
  }
}

/** The issue's targets, as sentences with their verdicts. */
export function chaosTargets(results: readonly ScenarioResult[]): string[] {
  const lines: string[] = [];
  for (const s of results.filter((r) => r.withPolicies)) {
    const met = s.successRate >= SUCCESS_TARGET;
    lines.push(
      `${met ? 'MET' : 'MISSED'}: ${s.name} client-visible success ${pct(s.successRate)} (target ≥ ${pct(SUCCESS_TARGET)})`,
    );
  }
  const lr = results.find((r) => r.name === 'least-request+retries+outlier');
  const ewma = results.find((r) => r.name === 'peak-ewma+retries+outlier');
  if (lr && ewma) {
    const better = ewma.p99Ms < lr.p99Ms;
    lines.push(
      `${better ? 'MET' : 'MISSED'}: PEAK_EWMA p99 ${ewma.p99Ms.toFixed(1)} ms vs LEAST_REQUEST p99 ${lr.p99Ms.toFixed(1)} ms ` +
        `with the slow replica (${(ewma.p99Ms / lr.p99Ms).toFixed(2)}×)`,
    );
  }
  return lines;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

export async function runChaos(
  options: ChaosOptions,
  log: (line: string) => void = console.log,
): Promise<ChaosReport> {
  mkdirSync(options.tmpDir, { recursive: true });
  const began = Date.now();
  const group = new ProcessGroup();
  const results: ScenarioResult[] = [];
  // The replicas and proxies run detached: make sure none outlives this process, and bound the whole.
  const killNow = (): void => group.killAllNow();
  const interrupted = (): void => {
    killNow();
    process.exit(130);
  };
  process.once('exit', killNow);
  process.once('SIGINT', interrupted);
  const perScenarioS = options.warmupS + options.durationS + options.requestTimeoutMs / 1000 + 30;
  const budgetS = options.scenarios.length * perScenarioS + 60;
  const watchdog = setTimeout(() => {
    log(`chaos benchmark exceeded its ${budgetS.toFixed(0)} s budget: stopping everything`);
    killNow();
    process.exit(1);
  }, budgetS * 1000);
  watchdog.unref();
  try {
    const { specs } = await startReplicas(group, options);
    for (const name of options.scenarios) {
      const scenario = SCENARIOS.find((s) => s.name === name);
      if (!scenario) throw new Error(`unknown chaos scenario "${name}"`);
      const r = await runScenario(group, options, scenario, specs);
      results.push(r);
      log(
        `chaos ${r.name.padEnd(30)} success ${pct(r.successRate)}, p50 ${r.p50Ms.toFixed(1)} ms, ` +
          `p99 ${r.p99Ms.toFixed(1)} ms, ${r.achievedRps.toFixed(0)} rps (${r.wallS.toFixed(0)} s)`,
      );
    }
  } finally {
    await group.stopAll();
    clearTimeout(watchdog);
    process.off('exit', killNow);
    process.off('SIGINT', interrupted);
  }
  const { tmpDir: _tmp, ...shown } = options;
  return {
    schema: 1,
    kind: 'chaos',
    date: new Date().toISOString(),
    options: shown,
    scenarios: results,
    targets: chaosTargets(results),
    totalS: (Date.now() - began) / 1000,
  };
}

export function renderChaosMarkdown(report: ChaosReport): string {
  const o = report.options;
  const replicas = o.replicas
    .map((r) => `${r.name} (${r.failPercent}% 503${r.delayMs > 0 ? `, +${r.delayMs} ms` : ''})`)
    .join(', ');
  const lines = [
    '# Weft chaos benchmark',
    '',
    `${report.date}: ${o.rps} rps fixed rate (open loop) for ${o.durationS} s per scenario after ${o.warmupS} s of warm-up, ` +
      `through one Weft proxy to three replicas: ${replicas}. Latency from each request's due time to its response, any status. ` +
      `Total ${report.totalS.toFixed(0)} s.`,
    '',
    "Policies: retries = retry_on 5xx, 1 retry (2 attempts) on another host (previous_hosts), Envoy's default back-off, " +
      'max_retries 2^32-1 as Istio sets it; outlier detection = consecutive_5xx 3, interval 1 s, base ejection 5 s, ' +
      'at most 34% of hosts ejected; PEAK_EWMA with decay 10 s, default RTT 30 ms.',
    '',
    '| scenario | sent | success | 5xx | errors | p50 ms | p99 ms | p99.9 ms | rps | requests per replica (failed) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of report.scenarios) {
    const per = Object.entries(s.replicas)
      .map(([name, c]) => `${name} ${c.requests}${c.failed > 0 ? ` (${c.failed})` : ''}`)
      .join(', ');
    lines.push(
      `| ${s.name} | ${s.sent} | ${pct(s.successRate)} | ${s.failed} | ${s.errors} | ${s.p50Ms.toFixed(1)} | ` +
        `${s.p99Ms.toFixed(1)} | ${s.p999Ms.toFixed(1)} | ${s.achievedRps.toFixed(0)} | ${per} |`,
    );
  }
  lines.push('', '## Targets', '', ...report.targets.map((t) => `- ${t}`), '');
  return lines.join('\n');
}
