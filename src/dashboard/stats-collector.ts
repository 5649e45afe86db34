/**
 * The dashboard's own metrics store, so it works with no Prometheus: every interval (5 s) it scrapes
 * /stats/prometheus of every connected proxy that says where its admin is, turns Istio's counters into
 * per-interval deltas, and keeps per edge, service and workload the golden signals (rate, error %, p50/p90/p99
 * from histogram bucket deltas, TCP bytes/s) for the retention (15 min) in fixed rings.
 *
 * Memory is bounded: each tracked thing (an edge, a service, a workload's inbound or outbound side) costs six
 * Float64Array(retention / interval) plus its last `windowTicks` interval sums — about 12 KB at the defaults
 * (180 slots) — and at most `maxEntities` (2000) are tracked: about 25 MB at worst. Things without traffic for
 * a whole retention are forgotten. Per proxy it keeps the previous value of each scraped Istio series.
 *
 * Besides the golden signals, two things the service pages list, both bounded too:
 * - ejected endpoints: a proxy whose scrape shows `outlier_detection.ejections_active` above zero has its
 *   /clusters read in the same cycle (only then: a proxy ejecting nothing costs nothing more), and the
 *   hosts flagged `failed_outlier_check` are kept with the time first seen, at most
 *   MAX_EJECTIONS_PER_PROXY (256) per proxy, forgotten with the proxy or when it stops ejecting them;
 * - rate-limited callers: per (service, caller) one Float64Array(retention / interval) of 429 counts
 *   (≈1.4 KB at the defaults), at most `maxEntities / 4` (500) of them: about 0.7 MB at worst.
 *
 * And for the cost view (/api/cost), the deltas of weft_locality_bytes_total and weft_locality_requests_total
 * per flow (proxy, destination service, source and destination locality) in per-interval rings, at most
 * MAX_FLOWS (4096) flows of 2 × 8 bytes × (retention / interval) each: see locality-flows.ts.
 *
 * Counter resets (a restarted proxy) count from zero: a value below the previous one is taken as the whole
 * delta, so rates are never negative. A proxy's first scrape is only a baseline.
 */
import http from 'node:http';
import { createLogger } from '../core/logger.ts';
import type { Logger } from '../core/logger.ts';
import { parseLabels, readSamples } from './exposition.ts';
import { LOCALITY_BYTES, LOCALITY_REQUESTS, LocalityFlows } from './locality-flows.ts';
import type { FlowSource, FlowWindow } from './locality-flows.ts';
import { histogramQuantile } from './quantile.ts';
import { SignalRing, TickRing } from './series-ring.ts';
import type { Point } from './series-ring.ts';
import type {
  EdgeProtocol,
  EdgeStats,
  EjectedEndpoint,
  RateLimitedClient,
  GraphEdge,
  GraphNode,
  GraphResponse,
  SeriesResponse,
} from './types.ts';

export interface ScrapeTarget {
  /** host:port of the proxy's admin. */
  address: string;
  proxyId: string;
  /** The workload the proxy serves, shown as a node even before it has traffic. */
  workload?: { name: string; namespace: string; app?: string; version?: string };
  /** `name.namespace` of the proxy, as the ejections name the client that ejects. */
  name?: string;
  /** The proxy's IP addresses: an ejected endpoint on one of them is this proxy's workload. */
  ips?: readonly string[];
}

export interface StatsCollectorOptions {
  /** The proxies to scrape, asked before every collection. */
  targets: () => readonly ScrapeTarget[];
  intervalMs?: number;
  retentionMs?: number;
  /** The graph's window, in intervals (default 6: 30 s). */
  windowTicks?: number;
  maxEntities?: number;
  scrapeTimeoutMs?: number;
  /** Fetches a proxy's exposition text (tests replace it). */
  scrape?: (address: string, timeoutMs: number) => Promise<string>;
  /** Fetches a proxy's /clusters text (tests replace it). */
  fetchClusters?: (address: string, timeoutMs: number) => Promise<string>;
  now?: () => number;
  logger?: Logger;
}

const REQUESTS = 'istio_requests_total';
const DURATION_BUCKET = 'istio_request_duration_milliseconds_bucket';
const TCP_SENT = 'istio_tcp_sent_bytes_total';
const TCP_RECEIVED = 'istio_tcp_received_bytes_total';
const TCP_OPENED = 'istio_tcp_connections_opened_total';
const WANTED: ReadonlySet<string> = new Set([
  REQUESTS,
  DURATION_BUCKET,
  TCP_SENT,
  TCP_RECEIVED,
  TCP_OPENED,
  LOCALITY_BYTES,
  LOCALITY_REQUESTS,
]);
/** Envoy's gauge of endpoints ejected now, per cluster (Prometheus name ends so whatever the prefix). */
const EJECTIONS_ACTIVE_SUFFIX = 'outlier_detection_ejections_active';
const SCRAPE_PATH =
  '/stats/prometheus?filter=' +
  encodeURIComponent(
    '^istio_(requests_total|request_duration_milliseconds|tcp_)|^weft_locality_|\\.outlier_detection\\.ejections_active$',
  );
const CLUSTERS_PATH = '/clusters';
/** More ejected hosts than this in one proxy are not listed (a pool that large ejecting is news already). */
export const MAX_EJECTIONS_PER_PROXY = 256;
const MAX_SCRAPE_BYTES = 32 * 1024 * 1024;
const UNKNOWN = 'unknown';
/** The `le` label of a bucket line (its value is a plain float: no quote or escape inside). */
const LE = /(?:^|,)le="([^"]*)"/;

/** Sums over one interval (or a window of them); rates are per second. */
interface Acc {
  /** Requests/s; TCP connections opened/s for TCP. */
  rate: number;
  requests: number;
  errors: number;
  /** le → count at or below it (deltas). */
  buckets: Map<number, number>;
  tcpBytesRate: number;
  mtlsYes: number;
  mtlsNo: number;
  /** Requests answered 429 (rate limited). */
  limited: number;
}

const newAcc = (): Acc => ({
  rate: 0,
  requests: 0,
  errors: 0,
  buckets: new Map(),
  tcpBytesRate: 0,
  mtlsYes: 0,
  mtlsNo: 0,
  limited: 0,
});

function addInto(into: Acc, a: Acc): void {
  into.rate += a.rate;
  into.requests += a.requests;
  into.errors += a.errors;
  for (const [le, n] of a.buckets) into.buckets.set(le, (into.buckets.get(le) ?? 0) + n);
  into.tcpBytesRate += a.tcpBytesRate;
  into.mtlsYes += a.mtlsYes;
  into.mtlsNo += a.mtlsNo;
  into.limited += a.limited;
}

const active = (a: Acc): boolean => a.rate > 0 || a.requests > 0 || a.tcpBytesRate > 0;

function stats(a: Acc, ticks: number): EdgeStats {
  const n = Math.max(1, ticks);
  return {
    rps: a.rate / n,
    errorPct: a.requests > 0 ? (100 * a.errors) / a.requests : null,
    p50Ms: histogramQuantile(0.5, a.buckets),
    p90Ms: histogramQuantile(0.9, a.buckets),
    p99Ms: histogramQuantile(0.99, a.buckets),
    tcpBytesPerSecond: a.tcpBytesRate / n,
  };
}

function point(a: Acc): Point {
  const s = stats(a, 1);
  return {
    rps: s.rps,
    errorPct: s.errorPct ?? NaN,
    p50Ms: s.p50Ms ?? NaN,
    p90Ms: s.p90Ms ?? NaN,
    p99Ms: s.p99Ms ?? NaN,
    tcpBytesPerSecond: s.tcpBytesPerSecond,
  };
}

interface WorkloadRef {
  name: string;
  namespace: string;
  app: string;
  version: string;
}

/** One request path as Istio's labels name it, without the reporter. */
interface Path {
  source: WorkloadRef;
  service: { host: string; name: string; namespace: string };
  destination: WorkloadRef;
  protocol: EdgeProtocol;
}

interface Reported {
  path: Path;
  source?: Acc;
  destination?: Acc;
}

type EntityKind = 'call' | 'split' | 'service' | 'in' | 'out';

interface Entity {
  kind: EntityKind;
  key: string;
  ring: SignalRing;
  /** The last `windowTicks` interval sums, newest last. */
  recent: Acc[];
  pending: Acc | null;
  lastActiveTick: number;
  mtls: boolean | null;
  reporter: 'source' | 'destination';
  path: Path;
}

/** An endpoint a proxy's outlier detection ejects now. */
interface Ejection {
  cluster: string;
  endpoint: string;
  since: number;
}

interface TargetState {
  previous: Map<string, number>;
  lastAt: number;
  error?: string;
  /** The sum of the proxy's ejections_active gauges at its last scrape. */
  ejectionsActive: number;
  /** By `cluster::endpoint`. */
  ejections: Map<string, Ejection>;
}

const newState = (): TargetState => ({
  previous: new Map(),
  lastAt: 0,
  ejectionsActive: 0,
  ejections: new Map(),
});

/** 429 counts per interval of one caller of one service. */
interface Limited {
  host: string;
  source: string;
  counts: Float64Array;
  pending: number;
  lastActiveTick: number;
  /** The first tick it was counted in: its rate is over the ticks since, up to the window. */
  firstTick: number;
}

/** The service host of an Istio cluster name (`outbound|9080|v1|catalog.default.svc.cluster.local`). */
export function clusterServiceHost(cluster: string): string {
  const parts = cluster.split('|');
  return parts.length === 4 && parts[3] !== '' ? parts[3] : cluster;
}

/**
 * The hosts /clusters flags `failed_outlier_check`: lines `CLUSTER::HOST::health_flags::FLAGS`. The host
 * (an IPv6 one holds `::` too) is what lies between the first `::` and the last `::health_flags::`.
 */
export function parseEjectedHosts(text: string): { cluster: string; endpoint: string }[] {
  const out: { cluster: string; endpoint: string }[] = [];
  const marker = '::health_flags::';
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(marker);
    if (at < 0 || !line.slice(at + marker.length).includes('failed_outlier_check')) continue;
    const first = line.indexOf('::');
    if (first <= 0 || first >= at) continue;
    out.push({ cluster: line.slice(0, first), endpoint: line.slice(first + 2, at) });
  }
  return out;
}

/** How the cost view names the caller a proxy stands for. */
function flowSource(t: ScrapeTarget): FlowSource {
  return {
    proxyId: t.proxyId,
    source: t.workload ? `${t.workload.namespace}/${t.workload.name}` : (t.name ?? t.proxyId),
  };
}

export const workloadNodeId = (w: { name: string; namespace: string }): string =>
  `workload:${w.namespace}/${w.name}`;
export const serviceNodeId = (host: string): string => `service:${host}`;

function workloadRef(l: Map<string, string>, side: 'source' | 'destination'): WorkloadRef {
  return {
    name: l.get(`${side}_workload`) || UNKNOWN,
    namespace: l.get(`${side}_workload_namespace`) || UNKNOWN,
    app: l.get(`${side}_canonical_service`) || l.get(`${side}_app`) || UNKNOWN,
    version: l.get(`${side}_canonical_revision`) || l.get(`${side}_version`) || UNKNOWN,
  };
}

function pathOf(l: Map<string, string>, protocol: EdgeProtocol): Path {
  const host = l.get('destination_service') || UNKNOWN;
  return {
    source: workloadRef(l, 'source'),
    service: {
      host,
      name: l.get('destination_service_name') || host.split('.')[0],
      namespace: l.get('destination_service_namespace') || UNKNOWN,
    },
    destination: workloadRef(l, 'destination'),
    protocol,
  };
}

const pathKey = (p: Path): string =>
  [
    p.source.namespace,
    p.source.name,
    p.service.host,
    p.destination.namespace,
    p.destination.name,
    p.protocol,
  ].join('\u0000');

function protocolOf(l: Map<string, string>, family: string): EdgeProtocol {
  if (family.startsWith('istio_tcp_')) return 'tcp';
  return l.get('request_protocol') === 'grpc' ? 'grpc' : 'http';
}

/** 5xx, and for gRPC a status other than OK (Istio's and Kiali's definition of an error). */
function isError(l: Map<string, string>): boolean {
  const code = Number(l.get('response_code'));
  if (code >= 500) return true;
  const grpc = l.get('grpc_response_status') ?? '';
  return grpc !== '' && grpc !== '0';
}

/** The destination reports the connection's security; a caller knows the peer's identity it verified. */
function mtlsOf(l: Map<string, string>, reporter: string): boolean | null {
  const policy = l.get('connection_security_policy');
  if (policy === 'mutual_tls') return true;
  if (policy === 'none') return false;
  if (reporter === 'source') return (l.get('destination_principal') ?? '').startsWith('spiffe://');
  return null;
}

export function httpGetText(address: string, timeoutMs: number, path = SCRAPE_PATH): Promise<string> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_SCRAPE_BYTES) req.destroy(new Error(`more than ${MAX_SCRAPE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export class StatsCollector {
  readonly intervalMs: number;
  readonly windowTicks: number;
  readonly maxEntities: number;
  readonly #targets: () => readonly ScrapeTarget[];
  readonly #scrape: (address: string, timeoutMs: number) => Promise<string>;
  readonly #fetchClusters: (address: string, timeoutMs: number) => Promise<string>;
  readonly #scrapeTimeoutMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #ticks: TickRing;
  readonly #states = new Map<string, TargetState>();
  readonly #entities = new Map<string, Entity>();
  /** By `host\0source`. */
  readonly #limited = new Map<string, Limited>();
  /** This interval's sums, per path, per reporter. */
  #current = new Map<string, Reported>();
  #known: readonly ScrapeTarget[] = [];
  #byAddress = new Map<string, FlowSource>();
  readonly #flows: LocalityFlows;
  #timer: NodeJS.Timeout | undefined;
  #collecting = false;
  #lastCollection = 0;
  /** Things not tracked because `maxEntities` was reached. */
  dropped = 0;

  constructor(opts: StatsCollectorOptions) {
    this.intervalMs = opts.intervalMs ?? 5000;
    const retention = opts.retentionMs ?? 15 * 60_000;
    this.#ticks = new TickRing(Math.max(1, Math.round(retention / this.intervalMs)));
    this.#flows = new LocalityFlows(this.#ticks.capacity);
    this.windowTicks = opts.windowTicks ?? 6;
    this.maxEntities = opts.maxEntities ?? 2000;
    this.#targets = opts.targets;
    this.#scrape = opts.scrape ?? httpGetText;
    this.#fetchClusters = opts.fetchClusters ?? ((a, t) => httpGetText(a, t, CLUSTERS_PATH));
    this.#scrapeTimeoutMs = opts.scrapeTimeoutMs ?? Math.min(3000, this.intervalMs);
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger ?? createLogger('dashboard');
  }

  /** Slots per signal ring (retention / interval). */
  get capacity(): number {
    return this.#ticks.capacity;
  }

  get entityCount(): number {
    return this.#entities.size;
  }

  start(): void {
    if (this.#timer) return;
    const run = (): void => {
      this.collect().catch((err: unknown) =>
        this.#log.warn('stats collection failed', { error: (err as Error).message }),
      );
    };
    run();
    this.#timer = setInterval(run, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The last scrape error of a proxy's admin, if its last scrape failed. */
  scrapeError(address: string): string | undefined {
    return this.#states.get(address)?.error;
  }

  /** When the proxy at `address` was last scraped (ms since the epoch); undefined before its first scrape. */
  scrapedAt(address: string): number | undefined {
    const at = this.#states.get(address)?.lastAt;
    return at === undefined || at === 0 ? undefined : at;
  }

  /**
   * The locality flows over the last `windowSeconds` (default and at most the retention), with the seconds
   * the window actually covers (less while the collector has run for less).
   */
  costWindow(windowSeconds?: number): FlowWindow {
    const filled = this.#ticks.slots();
    const want =
      windowSeconds === undefined
        ? filled.length
        : Math.max(1, Math.ceil((windowSeconds * 1000) / this.intervalMs));
    const slots = filled.slice(Math.max(0, filled.length - want));
    if (slots.length === 0) return { flows: [], seconds: 0 };
    const times = this.#ticks.times;
    const last = times[slots[slots.length - 1]];
    const before = filled.length > slots.length ? times[filled[filled.length - slots.length - 1]] : undefined;
    const seconds = before !== undefined ? (last - before) / 1000 : (slots.length * this.intervalMs) / 1000;
    return this.#flows.window(slots, seconds);
  }

  /** Flows not tracked because MAX_FLOWS was reached. */
  get droppedFlows(): number {
    return this.#flows.dropped;
  }

  /** Scrapes every target (in parallel, each bounded by the scrape timeout), then closes the interval. */
  async collect(): Promise<void> {
    if (this.#collecting) return;
    this.#collecting = true;
    try {
      const targets = this.#targets();
      this.#known = targets;
      this.#byAddress = new Map(targets.map((t) => [t.address, flowSource(t)]));
      const addresses = new Set(targets.map((t) => t.address));
      for (const a of this.#states.keys()) if (!addresses.has(a)) this.#states.delete(a);
      await Promise.all(
        [...addresses].map(async (address) => {
          try {
            const text = await this.#scrape(address, this.#scrapeTimeoutMs);
            this.ingest(address, text, this.#now());
          } catch (err) {
            const state = this.#states.get(address);
            const error = (err as Error).message;
            if (state) state.error = error;
            else this.#states.set(address, { ...newState(), error });
            return;
          }
          await this.#readEjections(address);
        }),
      );
      this.tick(this.#now());
    } finally {
      this.#collecting = false;
    }
  }

  /** Reads /clusters of a proxy whose last scrape showed ejections; a failed read keeps what was known. */
  async #readEjections(address: string): Promise<void> {
    const state = this.#states.get(address);
    if (!state) return;
    if (state.ejectionsActive <= 0) {
      state.ejections.clear();
      return;
    }
    let text: string;
    try {
      text = await this.#fetchClusters(address, this.#scrapeTimeoutMs);
    } catch (err) {
      this.#log.debug('dashboard: /clusters read failed', { address, error: (err as Error).message });
      return;
    }
    this.ingestClusters(address, text, this.#now());
  }

  /** Replaces the ejections known of the proxy at `address` with those its /clusters text flags. */
  ingestClusters(address: string, text: string, now: number): void {
    const state = this.#states.get(address);
    if (!state) return;
    const next = new Map<string, Ejection>();
    for (const { cluster, endpoint } of parseEjectedHosts(text)) {
      if (next.size >= MAX_EJECTIONS_PER_PROXY) break;
      const key = `${cluster}::${endpoint}`;
      next.set(key, { cluster, endpoint, since: state.ejections.get(key)?.since ?? now });
    }
    state.ejections = next;
  }

  /** Folds one scrape of the proxy at `address` into the current interval. */
  ingest(address: string, text: string, now: number): void {
    let state = this.#states.get(address);
    if (!state) {
      state = newState();
      this.#states.set(address, state);
    }
    let ejectionsActive = 0;
    const who = this.#byAddress.get(address) ?? { proxyId: address, source: address };
    const baseline = state.lastAt === 0;
    const seconds = (now - state.lastAt) / 1000;
    const previous = state.previous;
    const next = new Map<string, number>();
    // A histogram's buckets are taken whole (zero deltas too: the quantile needs every bound) when it moved.
    const histograms = new Map<string, { moved: boolean; deltas: [number, number][] }>();
    readSamples(
      text,
      (name) => WANTED.has(name) || name.endsWith(EJECTIONS_ACTIVE_SUFFIX),
      (name, labelText, value) => {
        if (!Number.isFinite(value)) return;
        if (!WANTED.has(name)) {
          ejectionsActive += value;
          return;
        }
        const key = `${name}{${labelText}`;
        next.set(key, value);
        if (baseline || !(seconds > 0)) return;
        const before = previous.get(key);
        // A series new since the last scrape started from zero; a lower value means the counter restarted.
        const delta = before === undefined || value < before ? value : value - before;
        if (name === LOCALITY_BYTES || name === LOCALITY_REQUESTS) {
          if (delta > 0) this.#flows.add(who, name, parseLabels(labelText), delta);
        } else if (name === DURATION_BUCKET) {
          const m = LE.exec(labelText);
          if (m === null) return;
          const rest = (labelText.slice(0, m.index) + labelText.slice(m.index + m[0].length)).replace(
            /^,/,
            '',
          );
          let h = histograms.get(rest);
          if (!h) histograms.set(rest, (h = { moved: false, deltas: [] }));
          h.deltas.push([m[1] === '+Inf' ? Infinity : Number(m[1]), delta]);
          h.moved ||= delta > 0;
        } else if (delta > 0) this.#add(name, parseLabels(labelText), delta, seconds);
      },
    );
    for (const [labelText, h] of histograms) {
      if (!h.moved) continue;
      const acc = this.#accFor(DURATION_BUCKET, parseLabels(labelText));
      for (const [le, delta] of h.deltas)
        if (!Number.isNaN(le)) acc.buckets.set(le, (acc.buckets.get(le) ?? 0) + delta);
    }
    state.previous = next;
    state.lastAt = now;
    state.error = undefined;
    state.ejectionsActive = ejectionsActive;
  }

  /** This interval's sums for the path and reporter the labels name. */
  #accFor(family: string, labels: Map<string, string>): Acc {
    const reporter = labels.get('reporter') === 'destination' ? 'destination' : 'source';
    const path = pathOf(labels, protocolOf(labels, family));
    const key = pathKey(path);
    let r = this.#current.get(key);
    if (!r) {
      r = { path };
      this.#current.set(key, r);
    }
    return (r[reporter] ??= newAcc());
  }

  #add(family: string, labels: Map<string, string>, delta: number, seconds: number): void {
    const reporter = labels.get('reporter') === 'destination' ? 'destination' : 'source';
    const acc = this.#accFor(family, labels);
    switch (family) {
      case REQUESTS: {
        acc.rate += delta / seconds;
        acc.requests += delta;
        if (isError(labels)) acc.errors += delta;
        if (labels.get('response_code') === '429') acc.limited += delta;
        const mtls = mtlsOf(labels, reporter);
        if (mtls === true) acc.mtlsYes += delta;
        else if (mtls === false) acc.mtlsNo += delta;
        break;
      }
      case TCP_OPENED: {
        acc.rate += delta / seconds;
        const mtls = mtlsOf(labels, reporter);
        if (mtls === true) acc.mtlsYes += delta;
        else if (mtls === false) acc.mtlsNo += delta;
        break;
      }
      default:
        acc.tcpBytesRate += delta / seconds;
    }
  }

  /** Closes the current interval at `now`: one point for every tracked thing. */
  tick(now: number): void {
    const slot = this.#ticks.advance(now);
    const tickNo = this.#ticks.ticks;
    this.#flows.tick(slot, tickNo);
    /** 429s per (service, caller) as each side reported them. */
    const limited = new Map<string, { host: string; source: string; src: number; dst: number }>();
    for (const r of this.#current.values()) {
      // The caller's view when its proxy reported (it sees failures that never reached the server).
      const useSource = r.source !== undefined && active(r.source);
      const chosen = useSource ? r.source! : (r.destination ?? r.source!);
      const acc: Acc = { ...chosen, buckets: new Map(chosen.buckets) };
      // Only the server sees the connection's security; the caller's inference is the fallback.
      const security =
        r.destination && r.destination.mtlsYes + r.destination.mtlsNo > 0 ? r.destination : r.source;
      acc.mtlsYes = security?.mtlsYes ?? 0;
      acc.mtlsNo = security?.mtlsNo ?? 0;
      const reporter = useSource || !r.destination ? 'source' : 'destination';
      const p = r.path;
      this.#fold(
        'call',
        `${workloadNodeId(p.source)}>${serviceNodeId(p.service.host)}|${p.protocol}`,
        p,
        acc,
        reporter,
      );
      if (p.destination.name !== UNKNOWN)
        this.#fold(
          'split',
          `${serviceNodeId(p.service.host)}>${workloadNodeId(p.destination)}|${p.protocol}`,
          p,
          acc,
          reporter,
        );
      this.#fold('service', serviceNodeId(p.service.host), p, acc, reporter);
      if (p.destination.name !== UNKNOWN) this.#fold('in', workloadNodeId(p.destination), p, acc, reporter);
      if (p.source.name !== UNKNOWN) this.#fold('out', workloadNodeId(p.source), p, acc, reporter);
      const src = r.source?.limited ?? 0;
      const dst = r.destination?.limited ?? 0;
      if (src + dst > 0) {
        const source = workloadNodeId(p.source);
        const key = `${p.service.host}\u0000${source}`;
        const l = limited.get(key) ?? { host: p.service.host, source, src: 0, dst: 0 };
        l.src += src;
        l.dst += dst;
        limited.set(key, l);
      }
    }
    // Grouped by caller, not by path: the two sides may disagree on the destination workload (a caller
    // does not learn who refused it), and the same 429s must not count twice. The server's count when it
    // reported any (the limit is its own), else the caller's.
    for (const l of limited.values()) this.#countLimited(l.host, l.source, l.dst > 0 ? l.dst : l.src);
    this.#current = new Map();
    for (const [key, l] of this.#limited) {
      l.counts[slot] = l.pending;
      if (l.pending > 0) l.lastActiveTick = tickNo;
      l.pending = 0;
      if (tickNo - l.lastActiveTick >= this.#ticks.capacity) this.#limited.delete(key);
    }
    for (const [key, e] of this.#entities) {
      const acc = e.pending ?? newAcc();
      e.pending = null;
      e.ring.write(slot, point(acc));
      e.recent.push(acc);
      if (e.recent.length > this.windowTicks) e.recent.shift();
      if (active(acc)) e.lastActiveTick = tickNo;
      if (acc.mtlsYes > 0) e.mtls = true;
      else if (acc.mtlsNo > 0) e.mtls = false;
      if (tickNo - e.lastActiveTick >= this.#ticks.capacity) this.#entities.delete(key);
    }
    this.#lastCollection = now;
  }

  #countLimited(host: string, source: string, n: number): void {
    const key = `${host}\u0000${source}`;
    let l = this.#limited.get(key);
    if (!l) {
      if (this.#limited.size >= Math.max(1, Math.floor(this.maxEntities / 4))) return;
      l = {
        host,
        source,
        counts: new Float64Array(this.#ticks.capacity),
        pending: 0,
        lastActiveTick: this.#ticks.ticks,
        firstTick: this.#ticks.ticks + 1,
      };
      this.#limited.set(key, l);
    }
    l.pending += n;
  }

  #fold(kind: EntityKind, id: string, path: Path, acc: Acc, reporter: 'source' | 'destination'): void {
    const key = `${kind}|${id}`;
    let e = this.#entities.get(key);
    if (!e) {
      if (this.#entities.size >= this.maxEntities) {
        if (this.dropped++ === 0)
          this.#log.warn('dashboard: too many edges and workloads to track; ignoring new ones', {
            max: this.maxEntities,
          });
        return;
      }
      e = {
        kind,
        key,
        ring: new SignalRing(this.#ticks.capacity),
        recent: [],
        pending: null,
        lastActiveTick: this.#ticks.ticks,
        mtls: null,
        reporter,
        path,
      };
      this.#entities.set(key, e);
    }
    e.reporter = reporter;
    e.pending ??= newAcc();
    addInto(e.pending, acc);
  }

  #window(e: Entity): EdgeStats {
    const sum = newAcc();
    for (const a of e.recent) addInto(sum, a);
    return stats(sum, e.recent.length);
  }

  #edge(e: Entity): GraphEdge {
    const p = e.path;
    const service = serviceNodeId(p.service.host);
    const [source, target] =
      e.kind === 'call' ? [workloadNodeId(p.source), service] : [service, workloadNodeId(p.destination)];
    return {
      id: e.key,
      kind: e.kind === 'call' ? 'call' : 'split',
      source,
      target,
      protocol: p.protocol,
      mtls: e.mtls,
      reporter: e.reporter,
      ...this.#window(e),
    };
  }

  graph(): GraphResponse {
    const nodes = new Map<string, GraphNode>();
    const addWorkload = (w: WorkloadRef | NonNullable<ScrapeTarget['workload']>, proxied: boolean): void => {
      const id = workloadNodeId(w);
      const had = nodes.get(id);
      if (had) {
        had.proxied ||= proxied;
        return;
      }
      nodes.set(id, {
        id,
        kind: 'workload',
        name: w.name,
        namespace: w.namespace,
        ...(w.app && w.app !== UNKNOWN ? { app: w.app } : {}),
        ...(w.version && w.version !== UNKNOWN ? { version: w.version } : {}),
        proxied,
      });
    };
    for (const t of this.#known) if (t.workload) addWorkload(t.workload, true);
    const edges: GraphEdge[] = [];
    for (const e of this.#entities.values()) {
      if (e.kind !== 'call' && e.kind !== 'split') continue;
      const p = e.path;
      addWorkload(e.kind === 'call' ? p.source : p.destination, false);
      const sid = serviceNodeId(p.service.host);
      if (!nodes.has(sid))
        nodes.set(sid, { id: sid, kind: 'service', name: p.service.name, namespace: p.service.namespace });
      edges.push(this.#edge(e));
    }
    return {
      timestamp: this.#lastCollection,
      windowSeconds: (this.windowTicks * this.intervalMs) / 1000,
      nodes: [...nodes.values()],
      edges,
    };
  }

  #series(e: Entity | undefined): SeriesResponse {
    const slots = this.#ticks.slots();
    const read = (s: Parameters<SignalRing['read']>[0]): (number | null)[] =>
      e ? e.ring.read(s, slots) : slots.map(() => null);
    return {
      intervalSeconds: this.intervalMs / 1000,
      timestamps: slots.map((i) => this.#ticks.times[i]),
      rps: read('rps'),
      errorPct: read('errorPct'),
      p50Ms: read('p50Ms'),
      p90Ms: read('p90Ms'),
      p99Ms: read('p99Ms'),
      tcpBytesPerSecond: read('tcpBytesPerSecond'),
    };
  }

  /** Endpoints ejected now, merged over the proxies that eject them, oldest ejection first. */
  ejections(): EjectedEndpoint[] {
    const byAddress = new Map(this.#known.map((t) => [t.address, t]));
    const byIp = new Map<string, ScrapeTarget>();
    for (const t of this.#known) if (t.workload) for (const ip of t.ips ?? []) byIp.set(ip, t);
    const merged = new Map<string, EjectedEndpoint>();
    for (const [address, state] of this.#states) {
      const t = byAddress.get(address);
      const client = t?.name ?? t?.proxyId ?? address;
      for (const e of state.ejections.values()) {
        const service = clusterServiceHost(e.cluster);
        const key = `${service}\u0000${e.endpoint}`;
        let m = merged.get(key);
        if (!m) {
          const ip = e.endpoint.slice(0, e.endpoint.lastIndexOf(':')).replace(/^\[|\]$/g, '');
          const w = byIp.get(ip)?.workload;
          m = {
            service,
            endpoint: e.endpoint,
            ...(w ? { workload: workloadNodeId(w) } : {}),
            ejectedBy: [],
            since: e.since,
          };
          merged.set(key, m);
        }
        if (!m.ejectedBy.includes(client)) m.ejectedBy.push(client);
        m.since = Math.min(m.since, e.since);
      }
    }
    for (const m of merged.values()) m.ejectedBy.sort();
    return [...merged.values()].sort((a, b) => a.since - b.since || a.endpoint.localeCompare(b.endpoint));
  }

  /** Callers of `host` answered 429 in the retention: per second over the window, and in all. */
  rateLimited(host: string): RateLimitedClient[] {
    const slots = this.#ticks.slots();
    const out: RateLimitedClient[] = [];
    for (const l of this.#limited.values()) {
      if (l.host !== host) continue;
      const ticks = Math.max(1, Math.min(this.windowTicks, this.#ticks.ticks - l.firstTick + 1));
      const recent = slots.slice(-ticks);
      const seconds = ticks * (this.intervalMs / 1000);
      let total = 0;
      for (const i of slots) total += l.counts[i];
      let windowed = 0;
      for (const i of recent) windowed += l.counts[i];
      if (total > 0) out.push({ source: l.source, rps: windowed / seconds, total });
    }
    return out.sort((a, b) => b.total - a.total || a.source.localeCompare(b.source));
  }

  /** A service's inbound series and its edges; undefined when no traffic to it is known. */
  service(
    namespace: string,
    name: string,
  ): { host: string; inbound: SeriesResponse; edges: GraphEdge[] } | undefined {
    const e = [...this.#entities.values()].find(
      (x) => x.kind === 'service' && x.path.service.namespace === namespace && x.path.service.name === name,
    );
    if (!e) return undefined;
    const host = e.path.service.host;
    const edges = [...this.#entities.values()]
      .filter((x) => (x.kind === 'call' || x.kind === 'split') && x.path.service.host === host)
      .map((x) => this.#edge(x));
    return { host, inbound: this.#series(e), edges };
  }

  /** A workload's inbound and outbound series and edges; undefined when nothing is known of it. */
  workload(
    namespace: string,
    name: string,
  ): { inbound: SeriesResponse; outbound: SeriesResponse; edges: GraphEdge[] } | undefined {
    const id = workloadNodeId({ name, namespace });
    const inbound = this.#entities.get(`in|${id}`);
    const outbound = this.#entities.get(`out|${id}`);
    const proxied = this.#known.some((t) => t.workload && workloadNodeId(t.workload) === id);
    if (!inbound && !outbound && !proxied) return undefined;
    const edges = [...this.#entities.values()]
      .filter(
        (x) =>
          (x.kind === 'call' && workloadNodeId(x.path.source) === id) ||
          (x.kind === 'split' && workloadNodeId(x.path.destination) === id),
      )
      .map((x) => this.#edge(x));
    return { inbound: this.#series(inbound), outbound: this.#series(outbound), edges };
  }
}
