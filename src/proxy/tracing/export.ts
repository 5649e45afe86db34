/**
 * Span export through the OpenTelemetry SDK, loaded only when a tracing provider is configured (a sidecar pays
 * RSS for every module it loads). One pipeline per (provider, collector, service name), shared by every
 * listener of the proxy: a TracerProvider whose id generator hands out the ids the proxy already propagated, a
 * BatchSpanProcessor with a bounded queue, and an exporter that finds the collector in its cluster at export
 * time. Nothing here is awaited on the request path: record() only appends to a queue.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import type { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Counter, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { Host } from '../upstream/types.ts';
import type { TracingProviderConfig } from './config.ts';
import type { FinishedSpan } from './types.ts';

export const MAX_QUEUE_SIZE = 2048;
const MAX_EXPORT_BATCH_SIZE = 512;
const SCHEDULED_DELAY_MS = 1000;
const EXPORT_TIMEOUT_MS = 10_000;
/**
 * Export requests allowed in flight per pipeline. The Zipkin exporter sets no timeout of its own, so a
 * collector that accepts and never answers would otherwise collect one open request per batch.
 */
const MAX_EXPORTS_IN_FLIGHT = 2;
/** Exporters kept per pipeline, one per collector URL the cluster has resolved to recently. */
const MAX_EXPORTERS = 4;

const SUCCESS = 0;
const FAILED = 1;
interface ExportResult {
  code: number;
  error?: Error;
}

export interface SpanSink {
  record(span: FinishedSpan): void;
  /** Exports what is queued, bounded by `timeoutMs`, then stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** The counters of one provider kind, with Envoy's names where Envoy has them (tracing.zipkin.spans_sent...). */
export interface ExportStats {
  readonly spansSent: Counter;
  /** Spans lost: queue full, or their batch failed to export. */
  readonly spansDropped: Counter;
  readonly reportsSent: Counter;
  /** Export requests that failed (connection error, timeout, non-2xx). */
  readonly reportsFailed: Counter;
  /** Export batches not sent because too many requests were still in flight. */
  readonly reportsDropped: Counter;
  readonly reportsSkippedNoCluster: Counter;
}

export function exportStats(stats: StatsStore, kind: TracingProviderConfig['kind']): ExportStats {
  const p = `tracing.${kind}.`;
  return {
    spansSent: stats.counter(`${p}spans_sent`),
    spansDropped: stats.counter(`${p}spans_dropped`),
    reportsSent: stats.counter(`${p}reports_sent`),
    reportsFailed: stats.counter(`${p}reports_failed`),
    reportsDropped: stats.counter(`${p}reports_dropped`),
    reportsSkippedNoCluster: stats.counter(`${p}reports_skipped_no_cluster`),
  };
}

type Sdk = Awaited<ReturnType<typeof loadSdk>>;

async function loadSdk(kind: TracingProviderConfig['kind']) {
  const [api, sdk, resources, exporter] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/resources'),
    kind === 'zipkin'
      ? import('@opentelemetry/exporter-zipkin')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  return { api, sdk, resources, exporter };
}

/** Hands the SDK the ids the proxy chose (and already sent upstream) instead of drawing new ones. */
class PresetIds {
  traceId = '';
  spanId = '';
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

/** A collector URL per export: a healthy host of the cluster, round robin, resolved when the batch leaves. */
class ClusterSpanExporter implements SpanExporter {
  private readonly provider: TracingProviderConfig;
  private readonly clusters: ClusterManager;
  private readonly stats: ExportStats;
  private readonly create: (url: string) => SpanExporter;
  private readonly exporters = new Map<string, SpanExporter>();
  private next = 0;
  private inFlight = 0;

  constructor(
    provider: TracingProviderConfig,
    clusters: ClusterManager,
    stats: ExportStats,
    create: (url: string) => SpanExporter,
  ) {
    this.provider = provider;
    this.clusters = clusters;
    this.stats = stats;
    this.create = create;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const host = this.pickHost();
    if (host === undefined) {
      this.stats.reportsSkippedNoCluster.inc();
      this.stats.spansDropped.inc(spans.length);
      done({
        code: FAILED,
        error: new Error(`no healthy host in cluster ${this.provider.collectorCluster}`),
      });
      return;
    }
    if (this.inFlight >= MAX_EXPORTS_IN_FLIGHT) {
      this.stats.reportsDropped.inc();
      this.stats.spansDropped.inc(spans.length);
      done({ code: FAILED, error: new Error('too many span reports in flight') });
      return;
    }
    const path = this.provider.kind === 'zipkin' ? this.provider.collectorEndpoint : this.provider.path;
    const address = host.address.includes(':') ? `[${host.address}]` : host.address;
    const exporter = this.exporterFor(`http://${address}:${host.port}${path}`);
    this.inFlight++;
    let answered = false;
    // The batch processor gets an answer within the export timeout even when the exporter never calls back;
    // the in-flight slot is released only when the exporter does, which keeps hung requests bounded.
    const timer = setTimeout(
      () => finish({ code: FAILED, error: new Error('span export timed out') }),
      EXPORT_TIMEOUT_MS,
    );
    timer.unref();
    const finish = (result: ExportResult): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (result.code === SUCCESS) {
        this.stats.reportsSent.inc();
        this.stats.spansSent.inc(spans.length);
      } else {
        this.stats.reportsFailed.inc();
        this.stats.spansDropped.inc(spans.length);
      }
      done(result);
    };
    try {
      exporter.export(spans, (result) => {
        this.inFlight--;
        finish(result);
      });
    } catch (err) {
      this.inFlight--;
      finish({ code: FAILED, error: err as Error });
    }
  }

  private pickHost(): Host | undefined {
    const hosts = this.clusters.get(this.provider.collectorCluster)?.cluster.hosts();
    if (hosts === undefined || hosts.length === 0) return undefined;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[(this.next + i) % hosts.length];
      if (h.health === 'HEALTHY' && h.outlierEjected !== true) {
        this.next = (this.next + i + 1) % hosts.length;
        return h;
      }
    }
    return undefined;
  }

  private exporterFor(url: string): SpanExporter {
    let exporter = this.exporters.get(url);
    if (exporter === undefined) {
      if (this.exporters.size >= MAX_EXPORTERS) {
        const [oldestUrl, oldest] = this.exporters.entries().next().value as [string, SpanExporter];
        this.exporters.delete(oldestUrl);
        void oldest.shutdown().catch(() => undefined);
      }
      exporter = this.create(url);
      this.exporters.set(url, exporter);
    }
    return exporter;
  }

  async shutdown(): Promise<void> {
    const all = [...this.exporters.values()];
    this.exporters.clear();
    await Promise.allSettled(all.map((e) => e.shutdown()));
  }

  async forceFlush(): Promise<void> {}
}

/** Spans of one provider + collector + service name, exported in batches. */
export class ExportPipeline implements SpanSink {
  private readonly provider: TracingProviderConfig;
  private readonly serviceName: string;
  private readonly clusters: ClusterManager;
  private readonly stats: ExportStats;
  private readonly loading: Promise<void>;
  /** Spans finished while the SDK was still loading (bounded like the queue). */
  private pending: FinishedSpan[] | null = [];
  private sdk: Sdk | undefined;
  private tracer: ReturnType<InstanceType<Sdk['sdk']['TracerProvider']>['getTracer']> | undefined;
  private providerObj: InstanceType<Sdk['sdk']['TracerProvider']> | undefined;
  private readonly ids = new PresetIds();
  /** Spans handed to the batch processor and not yet taken by the exporter: the queue's length. */
  private queued = 0;
  private closed = false;

  constructor(
    provider: TracingProviderConfig,
    serviceName: string,
    clusters: ClusterManager,
    stats: ExportStats,
  ) {
    this.provider = provider;
    this.serviceName = serviceName;
    this.clusters = clusters;
    this.stats = stats;
    this.loading = loadSdk(provider.kind).then(
      (sdk) => this.start(sdk),
      () => {
        // The packages are dependencies of Weft: failing to load them is a broken install. Spans are dropped.
        this.stats.spansDropped.inc(this.pending?.length ?? 0);
        this.pending = null;
        this.closed = true;
      },
    );
  }

  private start(sdk: Sdk): void {
    this.sdk = sdk;
    const p = this.provider;
    const inner = new ClusterSpanExporter(p, this.clusters, this.stats, (url) => {
      if (p.kind === 'zipkin') {
        const Zipkin = (sdk.exporter as { ZipkinExporter: typeof ZipkinExporter }).ZipkinExporter;
        return new Zipkin({
          url,
          serviceName: this.serviceName,
          headers: { host: p.collectorHostname ?? p.collectorCluster },
        });
      }
      const Otlp = (sdk.exporter as { OTLPTraceExporter: typeof OTLPTraceExporter }).OTLPTraceExporter;
      return new Otlp({
        url,
        headers: { ...p.headers },
        timeoutMillis: p.timeoutMs,
        concurrencyLimit: 2,
      });
    });
    const counting: SpanExporter = {
      export: (spans, done) => {
        this.queued -= spans.length;
        inner.export(spans, done);
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    };
    const batch = new sdk.sdk.BatchSpanProcessor({
      exporter: counting,
      maxQueueSize: MAX_QUEUE_SIZE,
      maxExportBatchSize: MAX_EXPORT_BATCH_SIZE,
      scheduledDelayMillis: SCHEDULED_DELAY_MS,
      exportTimeoutMillis: EXPORT_TIMEOUT_MS,
    });
    this.providerObj = new sdk.sdk.TracerProvider({
      resource: sdk.resources.resourceFromAttributes({ 'service.name': this.serviceName }),
      sampler: new sdk.sdk.AlwaysOnSampler(),
      idGenerator: this.ids,
      spanProcessors: [batch],
    });
    this.tracer = this.providerObj.getTracer('weft-proxy');
    const pending = this.pending ?? [];
    this.pending = null;
    for (const span of pending) this.emit(span);
  }

  record(span: FinishedSpan): void {
    if (this.closed) return;
    if (this.pending !== null) {
      if (this.pending.length >= MAX_QUEUE_SIZE) this.stats.spansDropped.inc();
      else this.pending.push(span);
      return;
    }
    this.emit(span);
  }

  private emit(span: FinishedSpan): void {
    // The batch processor would drop silently past its queue size: the drop is counted here instead.
    if (this.queued >= MAX_QUEUE_SIZE) {
      this.stats.spansDropped.inc();
      return;
    }
    const { api } = this.sdk!;
    const t = span.trace;
    let parent = api.ROOT_CONTEXT;
    if (t.parentSpanId !== undefined) {
      parent = api.trace.setSpanContext(api.ROOT_CONTEXT, {
        traceId: t.traceId,
        spanId: t.parentSpanId,
        traceFlags: api.TraceFlags.SAMPLED,
        isRemote: true,
        ...(t.traceState === undefined ? {} : { traceState: api.createTraceState(t.traceState) }),
      });
    }
    this.ids.traceId = t.traceId;
    this.ids.spanId = t.spanId;
    const s = this.tracer!.startSpan(
      span.name,
      {
        kind: span.kind === 'CLIENT' ? api.SpanKind.CLIENT : api.SpanKind.SERVER,
        startTime: span.startTime,
        attributes: span.attributes,
      },
      parent,
    );
    if (span.error) s.setStatus({ code: api.SpanStatusCode.ERROR });
    this.queued++;
    s.end(span.endTime);
  }

  async shutdown(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    const work = (async () => {
      await this.loading;
      this.closed = true;
      const provider = this.providerObj;
      if (provider === undefined) return;
      await provider.forceFlush().catch(() => undefined);
      await provider.shutdown().catch(() => undefined);
    })();
    await Promise.race([work, bound]);
    this.closed = true;
    clearTimeout(timer);
  }
}
