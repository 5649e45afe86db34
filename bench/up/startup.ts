/**
 * `weft up` on the shop demo: the time from launching `weft up` to the first 200 through the gateway (issue
 * #7's target: ≤ 15 s), and the memory (VmRSS) of the control plane, the gateway and each sidecar while
 * steady traffic flows (examples/shop/traffic.mjs). Each run uses a fresh copy of the demo in a temp dir.
 *
 *   npm run build && node bench/up/startup.ts [--runs 3] [--rps 20] [--traffic-seconds 15]
 *                                             [--first-ip 127.0.72.10] [--mode explicit|transparent] [--no-write]
 *
 * Writes bench/results/up-latest.{md,json} (transparent mode: up-transparent-latest.{md,json}). Not part of `npm run bench` (about 30 s a run).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { machineInfo } from '../machine.ts';
import type { MachineInfo } from '../machine.ts';
import { freePorts } from '../../src/up/ports.ts';
import type { RunState } from '../../src/up/run-state.ts';
import { copyShop, killLeftovers, launcherNodeFlags, REPO, WEFT } from './shop.ts';

const TARGET_FIRST_200_MS = 15_000;
/** Traffic flows this long before memory is sampled, so that every process has seen it. */
const WARMUP_MS = 3000;
const SAMPLE_EVERY_MS = 1000;
const USERS = 'alice,bob,carol,dave,erin,frank,grace,heidi';
/** Part of the control plane's figure, shown apart: the launcher process that only relays signals. */
const LAUNCHER_ALONE = '  of which the bin/weft.js launcher process';

interface Options {
  readonly runs: number;
  readonly rps: number;
  readonly trafficSeconds: number;
  readonly firstIp: string;
  readonly mode: 'explicit' | 'transparent';
  readonly write: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      rps: { type: 'string', default: '20' },
      'traffic-seconds': { type: 'string', default: '15' },
      'first-ip': { type: 'string', default: '127.0.72.10' },
      mode: { type: 'string', default: 'explicit' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const positive = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${text}`);
    return n;
  };
  const trafficSeconds = positive('traffic-seconds', values['traffic-seconds']);
  if (trafficSeconds * 1000 <= WARMUP_MS + SAMPLE_EVERY_MS)
    throw new Error(`--traffic-seconds: at least ${(WARMUP_MS + 2 * SAMPLE_EVERY_MS) / 1000}`);
  if (values.mode !== 'explicit' && values.mode !== 'transparent')
    throw new Error(`--mode: explicit or transparent, got ${values.mode}`);
  return {
    mode: values.mode,
    runs: Math.round(positive('runs', values.runs)),
    rps: positive('rps', values.rps),
    trafficSeconds,
    firstIp: values['first-ip'],
    write: !values['no-write'],
  };
}

/** VmRSS in kB of a process and (if `tree`) all its descendants (bin/weft.js runs the control plane in a child Node). */
function rssKb(root: number, tree: boolean): number | undefined {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  let seen = false;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) {
        total += Number(m[1]);
        seen = true;
      }
    } catch {
      // exited meanwhile
    }
    if (tree) stack.push(...(children.get(pid) ?? []));
  }
  return seen ? total : undefined;
}

function get(port: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

interface RunResult {
  /** From spawning `weft up` to the first 200 through the gateway. */
  readonly firstOkMs: number;
  /** What `weft up` printed: "N of N instances ready in X s". */
  readonly upReportedS: number | null;
  /** Median VmRSS (MB) per component over the samples taken while traffic flowed. */
  readonly rssMb: Record<string, number>;
  readonly samples: number;
  /** traffic.mjs's closing line. */
  readonly traffic: string;
}

function waitExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function oneRun(o: Options, n: number): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-up-bench-'));
  const [gatewayPort] = await freePorts(1);
  copyShop(dir, gatewayPort);
  let out = '';
  const started = performance.now();
  const up = spawn(
    process.execPath,
    [...launcherNodeFlags(), WEFT, 'up', '--mode', o.mode, '--first-ip', o.firstIp, dir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  up.stdout.on('data', (c: Buffer) => (out += c.toString()));
  up.stderr.on('data', (c: Buffer) => (out += c.toString()));
  let traffic: ChildProcess | undefined;
  try {
    let firstOkMs: number | undefined;
    while (firstOkMs === undefined) {
      if (up.exitCode !== null) throw new Error(`weft up exited ${up.exitCode}:\n${out}`);
      if (performance.now() - started > 120_000) throw new Error(`no 200 after 120 s:\n${out}`);
      if ((await get(gatewayPort, 2000)) === 200) firstOkMs = performance.now() - started;
      else await sleep(50);
    }
    while (!/ is up/.test(out)) {
      if (up.exitCode !== null) throw new Error(`weft up exited ${up.exitCode}:\n${out}`);
      await sleep(100);
    }
    const reported = / instances ready in ([\d.]+) s/.exec(out);
    const st = JSON.parse(fs.readFileSync(path.join(dir, '.weft/run.json'), 'utf8')) as RunState;
    const components: [string, number | undefined, boolean][] = [
      ['control plane', st.controlPlane.pid, true],
      [LAUNCHER_ALONE, st.controlPlane.pid, false],
      ['gateway', st.gateway?.pid, true],
      ...st.instances.map((i): [string, number | undefined, boolean] => [
        `sidecar ${i.instance}`,
        i.sidecarPid,
        true,
      ]),
      ...st.instances.map((i): [string, number | undefined, boolean] => [
        `app ${i.instance}`,
        i.appPid,
        true,
      ]),
    ];

    let trafficOut = '';
    traffic = spawn(
      process.execPath,
      [
        path.join(dir, 'traffic.mjs'),
        ...['--url', `http://127.0.0.1:${gatewayPort}/`, '--rps', String(o.rps)],
        ...['--duration', String(o.trafficSeconds), '--users', USERS],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    traffic.stdout!.on('data', (c: Buffer) => (trafficOut += c.toString()));
    const trafficDone = waitExit(traffic);
    await sleep(WARMUP_MS);
    const samples = new Map<string, number[]>(components.map(([name]) => [name, []]));
    let taken = 0;
    const stopSampling = performance.now() + o.trafficSeconds * 1000 - WARMUP_MS - SAMPLE_EVERY_MS;
    while (performance.now() < stopSampling) {
      for (const [name, pid, tree] of components) {
        const kb = pid === undefined ? undefined : rssKb(pid, tree);
        if (kb !== undefined) samples.get(name)!.push(kb / 1024);
      }
      taken++;
      await sleep(SAMPLE_EVERY_MS);
    }
    const code = await trafficDone;
    if (code !== 0) throw new Error(`traffic.mjs exited ${code}:\n${trafficOut}`);
    const rssMb: Record<string, number> = {};
    for (const [name, xs] of samples) if (xs.length > 0) rssMb[name] = median(xs);
    const total = /^total: .*$/m.exec(trafficOut)?.[0] ?? '(no total line)';
    process.stdout.write(
      `run ${n}: first 200 after ${(firstOkMs / 1000).toFixed(2)} s` +
        ` (weft up: ready in ${reported?.[1] ?? '?'} s); ${total}\n`,
    );
    return {
      firstOkMs,
      upReportedS: reported ? Number(reported[1]) : null,
      rssMb,
      samples: taken,
      traffic: total,
    };
  } finally {
    if (traffic && traffic.exitCode === null) traffic.kill('SIGTERM');
    if (up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([waitExit(up), sleep(30_000)]);
    }
    killLeftovers(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface Results {
  readonly machine: MachineInfo;
  readonly options: Omit<Options, 'write'>;
  readonly runs: readonly RunResult[];
  readonly summary: {
    readonly firstOkMs: { readonly median: number; readonly max: number };
    readonly targetMet: boolean;
    /** Per component: the median over runs of each run's median RSS. */
    readonly rssMb: Record<string, number>;
    readonly sidecarsTotalMb: number;
    readonly meshTotalMb: number;
  };
}

function summarize(o: Options, runs: readonly RunResult[]): Results {
  const names = Object.keys(runs[0].rssMb);
  const rssMb: Record<string, number> = {};
  for (const name of names) {
    const xs = runs.map((r) => r.rssMb[name]).filter((x): x is number => x !== undefined);
    if (xs.length > 0) rssMb[name] = median(xs);
  }
  const sum = (pick: (name: string) => boolean): number =>
    Object.entries(rssMb)
      .filter(([name]) => pick(name))
      .reduce((t, [, mb]) => t + mb, 0);
  const firstOk = runs.map((r) => r.firstOkMs);
  const { write: _, ...recorded } = o;
  return {
    machine: machineInfo(REPO),
    options: recorded,
    runs,
    summary: {
      firstOkMs: { median: median(firstOk), max: Math.max(...firstOk) },
      targetMet: Math.max(...firstOk) <= TARGET_FIRST_200_MS,
      rssMb,
      sidecarsTotalMb: sum((n) => n.startsWith('sidecar ')),
      meshTotalMb: sum((n) => !n.startsWith('app ') && n !== LAUNCHER_ALONE),
    },
  };
}

function markdown(r: Results): string {
  const m = r.machine;
  const commit =
    m.gitCommit === null ? 'no commit' : `${m.gitCommit.slice(0, 10)}${m.gitDirty ? ' (dirty)' : ''}`;
  const s = r.summary;
  const mb = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(1));
  const lines = [
    `# weft up: the shop demo (${r.options.mode} mode)`,
    '',
    `${m.date} · ${commit} · Node ${m.node} · ${m.cpuModel ?? 'unknown CPU'}, ${m.cpus} vCPU · ${m.memTotalMb} MB RAM · Linux ${m.kernel}`,
    '',
    `\`node bench/up/startup.ts\`: ${r.runs.length} run(s) of \`weft up\` on a fresh copy of examples/shop (7 instances: ` +
      `7 apps + 7 sidecars, the gateway and the control plane). Time to first 200 = from spawning \`weft up\` to the ` +
      `first 200 on GET / through the gateway (polled every 50 ms). RSS = VmRSS from /proc/PID/status of the pids in ` +
      `.weft/run.json (with their child processes: bin/weft.js runs the control plane in a child Node), sampled every ` +
      `${SAMPLE_EVERY_MS / 1000} s while examples/shop/traffic.mjs sends ${r.options.rps} requests/s through the ` +
      `gateway (after ${WARMUP_MS / 1000} s of warm-up, ${r.options.trafficSeconds} s of traffic); median per run, ` +
      'then median over runs.',
    '',
    '## Start-up',
    '',
    '| run | first 200 through the gateway | weft up reports ready | traffic |',
    '|---|---|---|---|',
    ...r.runs.map(
      (x, i) =>
        `| ${i + 1} | ${(x.firstOkMs / 1000).toFixed(2)} s | ${x.upReportedS ?? '–'} s | ${x.traffic.replace(/\|/g, '/')} |`,
    ),
    '',
    `- ${s.targetMet ? 'MET' : 'MISSED'}: time to first 200 median ${(s.firstOkMs.median / 1000).toFixed(2)} s, ` +
      `max ${(s.firstOkMs.max / 1000).toFixed(2)} s (target ≤ ${TARGET_FIRST_200_MS / 1000} s)`,
    '',
    '## Memory while the demo serves traffic (RSS, MB)',
    '',
    '| component | RSS MB |',
    '|---|---|',
    ...Object.entries(s.rssMb)
      .filter(([name]) => !name.startsWith('app '))
      .map(([name, x]) => `| ${name} | ${mb(x)} |`),
    `| **all 7 sidecars** | **${mb(s.sidecarsTotalMb)}** |`,
    `| **the mesh (control plane + gateway + sidecars)** | **${mb(s.meshTotalMb)}** |`,
    '',
    'The apps themselves, for scale: ' +
      Object.entries(s.rssMb)
        .filter(([name]) => name.startsWith('app '))
        .map(([name, x]) => `${name.slice(4)} ${mb(x)}`)
        .join(', ') +
      ' MB.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = options();
  if (!fs.existsSync(path.join(REPO, 'dist/cli/main.js')))
    throw new Error('no dist/: run npm run build first');
  const runs: RunResult[] = [];
  for (let n = 1; n <= o.runs; n++) runs.push(await oneRun(o, n));
  const results = summarize(o, runs);
  const md = markdown(results);
  process.stdout.write(`\n${md}`);
  if (o.write) {
    const dir = path.join(REPO, 'bench/results');
    const name = o.mode === 'transparent' ? 'up-transparent-latest' : 'up-latest';
    fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(dir, `${name}.md`), md);
    process.stdout.write(`\nresults written to bench/results/${name}.{md,json}\n`);
  }
}

await main();
