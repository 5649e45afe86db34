/**
 * The golden signals from a Prometheus (`weft control-plane --dashboard-prometheus-url URL`): PromQL over
 * Istio's standard metrics through the HTTP API (/api/v1/query for the graph, /api/v1/query_range for the
 * 15-minute series), grouped by the labels the collector groups on, so edges keep the collector's ids and the
 * page cannot tell the two apart except by `source`.
 *
 * - Edges: a call is (source workload, service, protocol), a split (service, destination workload,
 *   protocol); each side's rate, errors (5xx, gRPC non-OK), p50/p90/p99 (histogram_quantile over the
 *   duration buckets) and TCP rates are read per reporter, and the caller's view is taken when its proxy
 *   reported, as the collector does.
 * - Series: a service's and a workload's inbound from the server's proxy (reporter="destination"), a
 *   workload's outbound from its own (reporter="source"), as Istio's Grafana dashboards read them.
 *
 * Any failure (unreachable, timeout, a PromQL error) answers from the collector instead, with the error in
 * `source`: the API never fails because the Prometheus does. Nothing is kept between requests.
 */
import type { ServiceSignals, SignalSource, Sourced, WorkloadSignals } from './signal-source.ts';
import { serviceNodeId, workloadNodeId } from './stats-collector.ts';
import type { StatsCollector } from './stats-collector.ts';
import type {
  DataSourceInfo,
  EdgeProtocol,
  GraphEdge,
  GraphNode,
  GraphResponse,
  SeriesResponse,
} from './types.ts';

export interface PrometheusSignalsOptions {
  /** The Prometheus's base URL, e.g. http://127.0.0.1:9090. */
  url: string;
  /** The fallback, and the control plane's knowledge of which workloads have a proxy. */
  collector: StatsCollector;
  /** The range of rate() (and the graph's window), in seconds; at least two scrapes of the Prometheus. */
  rateWindowSeconds?: number;
  retentionSeconds?: number;
  /** The series' resolution (default: the collector's interval). */
  stepSeconds?: number;
  timeoutMs?: number;
  now?: () => number;
}

interface Sample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

const UNKNOWN = 'unknown';
const CALL_LABELS = [
  'source_workload',
  'source_workload_namespace',
  'source_canonical_service',
  'source_canonical_revision',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'request_protocol',
];
const SPLIT_LABELS = [
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_workload',
  'destination_workload_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'request_protocol',
];
const ERRORS = (f: string, w: string): string =>
  `rate(istio_requests_total{${f}${f ? ',' : ''}response_code=~"5.."}[${w}]) or ` +
  `rate(istio_requests_total{${f}${f ? ',' : ''}response_code!~"5..",grpc_response_status!~"0|"}[${w}])`;
const TCP_BYTES = '__name__=~"istio_tcp_(sent|received)_bytes_total"';

/** A PromQL label value in double quotes. */
const quote = (v: string): string => JSON.stringify(v);
const label = (m: Record<string, string>, k: string): string =>
  m[k] === undefined || m[k] === '' ? UNKNOWN : m[k];
const num = (s: string): number | null => {
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
};

interface Side {
  rps: number;
  errors: number;
  mtlsYes: number;
  mtlsNo: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  tcpBytes: number;
}

interface Pending {
  kind: 'call' | 'split';
  protocol: EdgeProtocol;
  metric: Record<string, string>;
  sides: { source?: Side; destination?: Side };
}

const newSide = (): Side => ({
  rps: 0,
  errors: 0,
  mtlsYes: 0,
  mtlsNo: 0,
  p50: null,
  p90: null,
  p99: null,
  tcpBytes: 0,
});

export class PrometheusSignals implements SignalSource {
  readonly #base: string;
  readonly #collector: StatsCollector;
  readonly #window: number;
  readonly #retention: number;
  readonly #step: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #info: DataSourceInfo;

  constructor(opts: PrometheusSignalsOptions) {
    this.#base = opts.url.replace(/\/+$/, '');
    this.#collector = opts.collector;
    this.#window = opts.rateWindowSeconds ?? 60;
    this.#retention = opts.retentionSeconds ?? 15 * 60;
    this.#step = opts.stepSeconds ?? opts.collector.intervalMs / 1000;
    this.#timeoutMs = opts.timeoutMs ?? 3000;
    this.#now = opts.now ?? Date.now;
    this.#info = { kind: 'prometheus', url: this.#base };
  }

  async graph(): Promise<Sourced<GraphResponse>> {
    try {
      return { ...(await this.#graph()), source: this.#info };
    } catch (err) {
      return { ...this.#collector.graph(), source: this.#failed(err) };
    }
  }

  async service(namespace: string, name: string): Promise<Sourced<ServiceSignals> | undefined> {
    try {
      const r = await this.#service(namespace, name);
      return r && { ...r, source: this.#info };
    } catch (err) {
      const r = this.#collector.service(namespace, name);
      return r && { ...r, source: this.#failed(err) };
    }
  }

  async workload(namespace: string, name: string): Promise<Sourced<WorkloadSignals> | undefined> {
    try {
      const r = await this.#workload(namespace, name);
      return r && { ...r, source: this.#info };
    } catch (err) {
      const r = this.#collector.workload(namespace, name);
      return r && { ...r, source: this.#failed(err) };
    }
  }

  #failed(err: unknown): DataSourceInfo {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const cause = e.cause?.code ?? e.cause?.message;
    return { ...this.#info, error: `${e.message}${cause ? ` (${cause})` : ''}` };
  }

  async #api(endpoint: 'query' | 'query_range', params: Record<string, string>): Promise<Sample[]> {
    const url = `${this.#base}/api/v1/${endpoint}?${new URLSearchParams(params).toString()}`;
    const res = await fetch(url, { signal: AbortSignal.timeout(this.#timeoutMs) });
    const text = await res.text();
    let body: { status?: string; error?: string; data?: { result?: unknown } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`Prometheus answered HTTP ${res.status}, not its API's JSON`);
    }
    if (body.status !== 'success') throw new Error(`Prometheus: ${body.error ?? `HTTP ${res.status}`}`);
    const result = body.data?.result;
    return Array.isArray(result) ? (result as Sample[]) : [];
  }

  #query(expr: string): Promise<Sample[]> {
    return this.#api('query', { query: expr, time: String(this.#now() / 1000) });
  }

  async #graph(): Promise<GraphResponse> {
    const w = `${this.#window}s`;
    const edges = new Map<string, Pending>();
    const side = (kind: 'call' | 'split', m: Record<string, string>, tcp: boolean): Side => {
      const protocol: EdgeProtocol =
        tcp || m.request_protocol === 'tcp' ? 'tcp' : m.request_protocol === 'grpc' ? 'grpc' : 'http';
      const labels = kind === 'call' ? CALL_LABELS : SPLIT_LABELS;
      const key = [
        kind,
        protocol,
        ...labels.filter((l) => l !== 'request_protocol').map((l) => label(m, l)),
      ].join('\u0000');
      let p = edges.get(key);
      if (!p) edges.set(key, (p = { kind, protocol, metric: m, sides: {} }));
      const reporter = m.reporter === 'destination' ? 'destination' : 'source';
      return (p.sides[reporter] ??= newSide());
    };
    await Promise.all(
      (['call', 'split'] as const).flatMap((kind) => {
        const by = ['reporter', ...(kind === 'call' ? CALL_LABELS : SPLIT_LABELS)].join(',');
        const read = async (
          expr: string,
          apply: (s: Side, v: number, m: Record<string, string>) => void,
          tcp = false,
        ): Promise<void> => {
          for (const r of await this.#query(expr)) {
            const v = num(r.value?.[1] ?? '');
            if (v !== null) apply(side(kind, r.metric, tcp), v, r.metric);
          }
        };
        const mtls = (s: Side, v: number, m: Record<string, string>): void => {
          const policy = m.connection_security_policy;
          const yes =
            policy === 'mutual_tls' ||
            (policy !== 'none' &&
              m.reporter !== 'destination' &&
              (m.destination_principal ?? '').startsWith('spiffe://'));
          if (yes) s.mtlsYes += v;
          else if (policy === 'none') s.mtlsNo += v;
        };
        return [
          read(
            `sum by (${by},connection_security_policy,destination_principal) (rate(istio_requests_total[${w}]))`,
            (s, v, m) => {
              s.rps += v;
              mtls(s, v, m);
            },
          ),
          read(`sum by (${by}) (${ERRORS('', w)})`, (s, v) => (s.errors += v)),
          ...(['p50', 'p90', 'p99'] as const).map((q) =>
            read(
              `histogram_quantile(${Number(q.slice(1)) / 100}, sum by (le,${by}) (rate(istio_request_duration_milliseconds_bucket[${w}])))`,
              (s, v) => (s[q] = v),
            ),
          ),
          read(
            `sum by (${by},connection_security_policy,destination_principal) (rate(istio_tcp_connections_opened_total[${w}]))`,
            (s, v, m) => {
              s.rps += v;
              mtls(s, v, m);
            },
            true,
          ),
          read(`sum by (${by}) (rate({${TCP_BYTES}}[${w}]))`, (s, v) => (s.tcpBytes += v), true),
        ];
      }),
    );
    const nodes = new Map<string, GraphNode>();
    for (const n of this.#collector.graph().nodes) if (n.proxied === true) nodes.set(n.id, n);
    const addWorkload = (name: string, namespace: string, app: string, version: string): string => {
      const id = workloadNodeId({ name, namespace });
      if (!nodes.has(id))
        nodes.set(id, {
          id,
          kind: 'workload',
          name,
          namespace,
          ...(app !== UNKNOWN ? { app } : {}),
          ...(version !== UNKNOWN ? { version } : {}),
          proxied: false,
        });
      return id;
    };
    const out: GraphEdge[] = [];
    for (const p of edges.values()) {
      const m = p.metric;
      const host = label(m, 'destination_service');
      const sid = serviceNodeId(host);
      if (!nodes.has(sid))
        nodes.set(sid, {
          id: sid,
          kind: 'service',
          name: m.destination_service_name || host.split('.')[0],
          namespace: label(m, 'destination_service_namespace'),
        });
      let workload: string;
      if (p.kind === 'call') {
        workload = addWorkload(
          label(m, 'source_workload'),
          label(m, 'source_workload_namespace'),
          label(m, 'source_canonical_service'),
          label(m, 'source_canonical_revision'),
        );
      } else {
        if (label(m, 'destination_workload') === UNKNOWN) continue;
        workload = addWorkload(
          label(m, 'destination_workload'),
          label(m, 'destination_workload_namespace'),
          label(m, 'destination_canonical_service'),
          label(m, 'destination_canonical_revision'),
        );
      }
      const src = p.sides.source;
      const useSource = src !== undefined && (src.rps > 0 || src.tcpBytes > 0);
      const chosen = useSource ? src : (p.sides.destination ?? src!);
      const dst = p.sides.destination;
      const security = dst && dst.mtlsYes + dst.mtlsNo > 0 ? dst : src;
      const [source, target] = p.kind === 'call' ? [workload, sid] : [sid, workload];
      const id = `${p.kind}|${source}>${target}|${p.protocol}`;
      out.push({
        id,
        kind: p.kind,
        source,
        target,
        protocol: p.protocol,
        mtls: security && security.mtlsYes > 0 ? true : security && security.mtlsNo > 0 ? false : null,
        reporter: useSource || !dst ? 'source' : 'destination',
        rps: chosen.rps,
        errorPct: p.protocol !== 'tcp' && chosen.rps > 0 ? (100 * chosen.errors) / chosen.rps : null,
        p50Ms: chosen.p50,
        p90Ms: chosen.p90,
        p99Ms: chosen.p99,
        tcpBytesPerSecond: chosen.tcpBytes,
      });
    }
    return {
      timestamp: this.#now(),
      windowSeconds: this.#window,
      nodes: [...nodes.values()],
      edges: out,
    };
  }

  /** The golden signals of the requests `filter` selects, at the step over the retention. */
  async #series(filter: string): Promise<{ series: SeriesResponse; any: boolean }> {
    const step = this.#step;
    const end = Math.floor(this.#now() / 1000 / step) * step;
    const start = end - Math.floor(this.#retention / step) * step;
    const w = `${Math.max(this.#window, 2 * step)}s`;
    const range = (expr: string): Promise<Sample[]> =>
      this.#api('query_range', { query: expr, start: String(start), end: String(end), step: String(step) });
    const times: number[] = [];
    for (let t = start; t <= end; t += step) times.push(t);
    const column = async (expr: string): Promise<(number | null)[]> => {
      const byTime = new Map<number, number | null>();
      for (const r of await range(expr))
        for (const [t, v] of r.values ?? []) byTime.set(Math.round(t), num(v));
      return times.map((t) => byTime.get(t) ?? null);
    };
    const all = `istio_requests_total{${filter}}`;
    const [rps, errorPct, p50Ms, p90Ms, p99Ms, tcpBytesPerSecond] = await Promise.all([
      column(
        `sum(rate({__name__=~"istio_requests_total|istio_tcp_connections_opened_total",${filter}}[${w}]))`,
      ),
      column(`100 * (sum(${ERRORS(filter, w)}) or vector(0)) / sum(rate(${all}[${w}]))`),
      ...[0.5, 0.9, 0.99].map((q) =>
        column(
          `histogram_quantile(${q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${filter}}[${w}])))`,
        ),
      ),
      column(`sum(rate({${TCP_BYTES},${filter}}[${w}]))`),
    ]);
    return {
      series: {
        intervalSeconds: step,
        timestamps: times.map((t) => t * 1000),
        rps,
        errorPct,
        p50Ms,
        p90Ms,
        p99Ms,
        tcpBytesPerSecond,
      },
      any: rps.some((v) => v !== null) || tcpBytesPerSecond.some((v) => v !== null),
    };
  }

  async #service(namespace: string, name: string): Promise<ServiceSignals | undefined> {
    const sel = `destination_service_name=${quote(name)},destination_service_namespace=${quote(namespace)}`;
    const hosts = await this.#query(
      `group by (destination_service) (last_over_time(istio_requests_total{${sel}}[${this.#retention}s]))`,
    );
    const host = hosts.map((h) => h.metric.destination_service).find((h) => h !== undefined && h !== '');
    if (host === undefined) return undefined;
    const [g, inbound] = await Promise.all([this.#graph(), this.#series(`reporter="destination",${sel}`)]);
    const sid = serviceNodeId(host);
    return {
      host,
      inbound: inbound.series,
      edges: g.edges.filter(
        (e) => (e.kind === 'call' && e.target === sid) || (e.kind === 'split' && e.source === sid),
      ),
    };
  }

  async #workload(namespace: string, name: string): Promise<WorkloadSignals | undefined> {
    const [g, inbound, outbound] = await Promise.all([
      this.#graph(),
      this.#series(
        `reporter="destination",destination_workload=${quote(name)},destination_workload_namespace=${quote(namespace)}`,
      ),
      this.#series(
        `reporter="source",source_workload=${quote(name)},source_workload_namespace=${quote(namespace)}`,
      ),
    ]);
    const id = workloadNodeId({ name, namespace });
    const edges = g.edges.filter(
      (e) => (e.kind === 'call' && e.source === id) || (e.kind === 'split' && e.target === id),
    );
    if (edges.length === 0 && !inbound.any && !outbound.any && !this.#collector.workload(namespace, name))
      return undefined;
    return { inbound: inbound.series, outbound: outbound.series, edges };
  }
}
