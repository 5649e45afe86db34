/**
 * `weft cost [--dashboard URL] [DIR]`: the dashboard's /api/cost as a table (or `-o json`, as served). With
 * DIR, the dashboard of the mesh `weft up` runs there (its port from DIR/.weft/run.json).
 */
import { parsePrices } from '../cost/model.ts';
import type { CostFigures } from '../cost/model.ts';
import type { CostResponse } from '../dashboard/types.ts';
import { readRunState } from '../up/run-state.ts';

export interface CostOptions {
  dashboard?: string;
  output: 'table' | 'json';
  /** `zone=0.01,region=0.02`. */
  prices?: string;
  /** Seconds. */
  window?: string;
}

const DEFAULT_DASHBOARD = 'http://127.0.0.1:15000';
const TIMEOUT_MS = 10_000;

/** Where the dashboard is: --dashboard, else DIR's run state, else the default port. */
export function dashboardUrl(dir: string | undefined, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  if (dir === undefined) return DEFAULT_DASHBOARD;
  const st = readRunState(dir);
  if (st === undefined)
    throw new Error(`no mesh has run in ${dir} (no .weft/run.json); start one with weft up ${dir}`);
  if (!st.controlPlane.dashboardPort)
    throw new Error(`the mesh in ${dir} runs no dashboard (dashboardPort 0)`);
  return `http://127.0.0.1:${st.controlPlane.dashboardPort}`;
}

export async function fetchCost(base: string, query: URLSearchParams): Promise<CostResponse> {
  let url: URL;
  try {
    url = new URL(`/api/cost?${query.toString()}`, base);
  } catch {
    throw new Error(`invalid dashboard URL ${JSON.stringify(base)}`);
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new Error(
      `cannot reach the dashboard at ${url.origin}: ${why} (is the control plane running with --dashboard-port?)`,
      { cause: err },
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${url.origin}/api/cost: expected JSON, got HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const message = (body as { error?: unknown }).error;
    throw new Error(
      res.status === 404
        ? `${url.origin} has no /api/cost (a dashboard older than the cost view?)`
        : typeof message === 'string'
          ? message
          : `HTTP ${res.status} from /api/cost`,
    );
  }
  return body as CostResponse;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

const rate = (n: number): string => `${formatBytes(n)}/s`;
const usd = (n: number): string => `$${n < 100 ? n.toFixed(2) : n.toFixed(0)}`;
const share = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(1)}%`);

function row(source: string, service: string, f: CostFigures): string[] {
  return [
    source,
    service,
    rate(f.bytesPerSecond.inZone),
    rate(f.bytesPerSecond.crossZone),
    rate(f.bytesPerSecond.crossRegion),
    share(f.bytesPct?.inZone),
    share(f.requestsPct?.inZone),
    usd(f.monthlyCost),
    f.uniform === null ? '-' : `${usd(f.uniform.monthlyCost)}${f.uniform.partial ? '*' : ''}`,
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export function formatCost(r: CostResponse): string {
  const head = [
    'SOURCE',
    'SERVICE',
    'IN ZONE',
    'CROSS-ZONE',
    'CROSS-REGION',
    'BYTES IN ZONE',
    'REQS IN ZONE',
    '$/MONTH',
    '$/MONTH UNIFORM',
  ];
  const rows = [head, ...r.edges.map((e) => row(e.source, e.service, e)), row('TOTAL', '', r.total)];
  const t = r.total;
  const lines = [
    `window ${r.windowSeconds.toFixed(0)} s; prices: $${r.prices.interZonePerGb}/GB each side across zones, ` +
      `$${r.prices.interRegionPerGb}/GB across regions; monthly = the window's rate over 30 days`,
    `crossed zones: ${formatBytes(t.bytes.crossZone)}, regions: ${formatBytes(t.bytes.crossRegion)}, ` +
      `stayed in zone: ${formatBytes(t.bytes.inZone)}` +
      (t.bytes.unknown > 0 ? `, unknown locality: ${formatBytes(t.bytes.unknown)}` : ''),
  ];
  if (r.edges.length === 0) return `${lines.join('\n')}\nno locality traffic seen in the window\n`;
  const partial = [r.total, ...r.edges].some((f) => f.uniform?.partial === true);
  return (
    `${lines.join('\n')}\n\n${table(rows)}` +
    (partial ? '* some flows had no known endpoints: the uniform estimate covers the others only\n' : '')
  );
}

export async function runCost(dir: string | undefined, opts: CostOptions): Promise<number> {
  try {
    const query = new URLSearchParams();
    if (opts.prices !== undefined) {
      const p = parsePrices(opts.prices);
      query.set('zone', String(p.interZonePerGb));
      query.set('region', String(p.interRegionPerGb));
    }
    if (opts.window !== undefined) query.set('window', opts.window);
    const report = await fetchCost(dashboardUrl(dir, opts.dashboard), query);
    process.stdout.write(
      opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatCost(report),
    );
    return 0;
  } catch (err) {
    process.stderr.write(`weft: ${(err as Error).message}\n`);
    return 1;
  }
}
