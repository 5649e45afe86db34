/**
 * A real Prometheus server (the Debian package's binary) for end-to-end tests: scrapes the given targets
 * every `scrapeIntervalS`, answers PromQL over its HTTP API, and is stopped (and its data removed) by close().
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from './http.ts';
import { waitFor } from './proxy.ts';
import { closedPort } from './servers.ts';

export interface ScrapeTarget {
  /** host:port */
  readonly address: string;
  readonly metricsPath: string;
  readonly job: string;
  /** Extra target labels (Kubernetes would add pod, namespace, ...). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface RunningPrometheus {
  readonly port: number;
  /** An instant query; rejects with Prometheus's error text for a bad query. */
  query(expr: string): Promise<PromSample[]>;
  /** Resolves when every target has been scraped successfully at least `scrapes` times. */
  waitForScrapes(scrapes: number, ms?: number): Promise<void>;
  output(): string;
  close(): Promise<void>;
}

export async function startPrometheus(o: {
  targets: readonly ScrapeTarget[];
  scrapeIntervalS?: number;
  /** The port to listen on (127.0.0.1), when something must know it before the start; else a free one. */
  port?: number;
}): Promise<RunningPrometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-prom-'));
  const interval = `${o.scrapeIntervalS ?? 1}s`;
  // One scrape config per (job, metrics path); a job name must be unique, so a second path gets a suffix.
  const groups = new Map<string, ScrapeTarget[]>();
  for (const t of o.targets) {
    const key = `${t.job} ${t.metricsPath}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const usedNames = new Set<string>();
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: [...groups.values()].map((ts) => {
      let name = ts[0].job;
      for (let i = 2; usedNames.has(name); i++) name = `${ts[0].job}-${i}`;
      usedNames.add(name);
      return {
        job_name: name,
        metrics_path: ts[0].metricsPath,
        static_configs: ts.map((t) => ({ targets: [t.address], labels: { ...t.labels } })),
      };
    }),
  };
  // YAML is a superset of JSON: Prometheus reads the JSON text as its YAML config.
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = o.port ?? (await closedPort());
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const api = async (p: string): Promise<{ status: number; body: unknown }> => {
    const r = await request(port, { path: p });
    return { status: r.status, body: JSON.parse(r.body) as unknown };
  };
  const close = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${out}`);
        try {
          return (await request(port, { path: '/-/ready' })).status === 200;
        } catch {
          return false;
        }
      },
      30_000,
      'prometheus ready',
    );
  } catch (err) {
    await close();
    throw err;
  }
  const query = async (expr: string): Promise<PromSample[]> => {
    const r = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = r.body as {
      status: string;
      error?: string;
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`PromQL error for ${expr}: ${body.error ?? r.status}`);
    const data = body.data!;
    if (data.resultType === 'scalar') {
      const v = (data.result as unknown as [number, string])[1];
      return [{ metric: {}, value: Number(v) }];
    }
    return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  };
  return {
    port,
    output: () => out,
    close,
    query,
    async waitForScrapes(scrapes, ms = 30_000) {
      await waitFor(
        async () => {
          const r = await api('/api/v1/targets');
          const active = (r.body as { data: { activeTargets: { health: string; lastError: string }[] } }).data
            .activeTargets;
          if (active.length < o.targets.length || active.some((t) => t.health !== 'up')) return false;
          // Each successful scrape adds one `up` sample per target.
          const counts = await query(`count_over_time(up[5m])`);
          return counts.length >= o.targets.length && counts.every((c) => c.value >= scrapes);
        },
        ms,
        `${scrapes} scrapes of every target`,
      );
    },
  };
}
