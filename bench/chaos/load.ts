// An open-loop, fixed-rate HTTP load generator: request i is due at start + i/rps whatever happened to
// the earlier ones, and its latency runs from that due time, so a slow or queued response cannot hide
// the requests that should have been sent meanwhile (no coordinated omission). The same idea as the
// shared wrk-fixed-rate.lua, with a strictly fixed rate and every status counted.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  readonly url: string;
  readonly rps: number;
  readonly durationS: number;
  /** A request without a response after this long counts as an error. */
  readonly timeoutMs: number;
}

export interface LoadResult {
  /** Requests sent (rps × duration). */
  readonly sent: number;
  /** 2xx responses. */
  readonly ok: number;
  /** Other responses, by status. */
  readonly failedByStatus: Readonly<Record<string, number>>;
  /** Connection errors and timeouts (no response). */
  readonly errors: number;
  /** Latency of every response (any status), in ms, sorted. */
  readonly latenciesMs: readonly number[];
  /** Wall time from the first due time to the last response. */
  readonly elapsedS: number;
}

/** The q-quantile (0..1) of sorted values, nearest rank; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export async function runFixedRate(options: LoadOptions): Promise<LoadResult> {
  const total = Math.round(options.rps * options.durationS);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const url = new URL(options.url);
  const latencies: number[] = [];
  const failedByStatus: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let sent = 0;
  let settled = 0;
  const start = performance.now();
  const intervalMs = 1000 / options.rps;

  const fire = (dueAt: number): void => {
    let done = false;
    const finish = (status: number | null): void => {
      if (done) return;
      done = true;
      settled++;
      if (status === null) {
        errors++;
        return;
      }
      latencies.push(performance.now() - dueAt);
      if (status >= 200 && status < 300) ok++;
      else failedByStatus[status] = (failedByStatus[status] ?? 0) + 1;
    };
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'GET', agent },
      (res) => {
        res.resume();
        res.on('end', () => finish(res.statusCode ?? 0));
        res.on('error', () => finish(null));
      },
    );
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', () => finish(null));
    req.end();
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - start) / intervalMs) + 1);
      while (sent < due) fire(start + sent++ * intervalMs);
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  // Every request ends by its response, an error or its timeout; this bounds the wait regardless.
  const deadline = performance.now() + options.timeoutMs + 1000;
  while (settled < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  errors += total - settled;
  const elapsedS = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { sent: total, ok, failedByStatus, errors, latenciesMs: latencies, elapsedS };
}
