/**
 * The proxy process's CPU, memory and event-loop delay in /stats/prometheus, under the names Prometheus
 * client libraries use (process_*, nodejs_*), so one panel shows a proxy and the control plane alike. Envoy
 * has no CPU stat (its cost shows in the container's); a Node.js sidecar's CPU per request is worth a panel.
 * Read at scrape time only: nothing runs per request, and the delay histogram is sampled by libuv.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { PrometheusSource, RenderOptions } from './stats/store.ts';

interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  read(): number;
}

const NS_PER_S = 1e9;

/** Per process, not per proxy server (tests run several in one process): created once, on first use. */
let shared: ProcessMetrics | null = null;

export function processMetrics(): ProcessMetrics {
  shared ??= new ProcessMetrics();
  return shared;
}

class ProcessMetrics implements PrometheusSource {
  readonly #delay: ReturnType<typeof monitorEventLoopDelay>;
  readonly #families: readonly Family[];

  constructor() {
    // A 20 ms timer inside libuv that does not keep the process alive; the histogram is reset at each
    // scrape, so its figures are the last interval's (of whoever scraped last).
    this.#delay = monitorEventLoopDelay({ resolution: 20 });
    this.#delay.enable();
    const started = Math.round(Date.now() / 1000 - process.uptime());
    const cpu = (): NodeJS.CpuUsage => process.cpuUsage();
    this.#families = [
      {
        name: 'process_cpu_user_seconds_total',
        type: 'counter',
        help: 'User CPU time spent, in seconds.',
        read: () => cpu().user / 1e6,
      },
      {
        name: 'process_cpu_system_seconds_total',
        type: 'counter',
        help: 'System CPU time spent, in seconds.',
        read: () => cpu().system / 1e6,
      },
      {
        name: 'process_cpu_seconds_total',
        type: 'counter',
        help: 'User and system CPU time spent, in seconds.',
        read: () => {
          const u = cpu();
          return (u.user + u.system) / 1e6;
        },
      },
      {
        name: 'process_resident_memory_bytes',
        type: 'gauge',
        help: 'Resident memory size, in bytes.',
        read: () => process.memoryUsage.rss(),
      },
      {
        name: 'process_start_time_seconds',
        type: 'gauge',
        help: 'Start time of the process since the Unix epoch, in seconds.',
        read: () => started,
      },
      {
        name: 'nodejs_heap_size_used_bytes',
        type: 'gauge',
        help: 'V8 heap in use, in bytes.',
        read: () => process.memoryUsage().heapUsed,
      },
      {
        name: 'nodejs_heap_size_total_bytes',
        type: 'gauge',
        help: 'V8 heap reserved, in bytes.',
        read: () => process.memoryUsage().heapTotal,
      },
      {
        name: 'nodejs_eventloop_lag_p99_seconds',
        type: 'gauge',
        help: 'The 99th percentile of event-loop delay since the previous scrape, in seconds.',
        read: () => (this.#delay.count > 0 ? this.#delay.percentile(99) / NS_PER_S : 0),
      },
      {
        name: 'nodejs_eventloop_lag_max_seconds',
        type: 'gauge',
        help: 'The longest event-loop delay since the previous scrape, in seconds.',
        read: () => (this.#delay.count > 0 ? this.#delay.max / NS_PER_S : 0),
      },
    ];
  }

  renderPrometheus(opts: RenderOptions): string {
    let out = '';
    for (const f of this.#families) {
      if (opts.filter !== undefined) {
        opts.filter.lastIndex = 0;
        if (!opts.filter.test(f.name)) continue;
      }
      out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n${f.name} ${f.read()}\n`;
    }
    // The delay figures cover one scrape interval; a filtered render that skipped them keeps the interval.
    if (opts.filter === undefined || out.includes('nodejs_eventloop_lag_')) this.#delay.reset();
    return out;
  }
}
