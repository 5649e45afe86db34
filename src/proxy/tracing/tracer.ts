/** The connection manager's tracer: trace context in and out, sampling, one span per proxied request. */
import type { HttpStream } from '../http/stream.ts';
import type { HttpTracingConfig, TracingProviderConfig } from './config.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { StatsStore } from '../stats/store.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import { isObject } from '../../core/json.ts';
import { newSpanId, newTraceId } from './ids.ts';
import { extractContext, injectContext } from './propagation.ts';
import { ExportPipeline, exportStats } from './export.ts';
import type { ExportStats, SpanSink } from './export.ts';
import type { FinishedSpan, ProxySpanKind, StreamTrace } from './types.ts';

export interface HttpTracer {
  /** Called once the connection manager's header policy ran, before the filters: extracts, decides, injects. */
  onRequest(stream: HttpStream): void;
  /** Called once when the stream is complete: ends and reports the span of a sampled request. */
  onComplete(stream: HttpStream): void;
}

/** Bound on TracingRuntime.shutdown(): a stopping proxy waits this long at most for its last spans to leave. */
const SHUTDOWN_FLUSH_MS = 3000;

/** What tracers of one proxy share: exporters (one batch queue per provider), stats. */
export class TracingRuntime {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  private readonly sinks = new Map<string, SpanSink>();
  private readonly statsByKind = new Map<string, ExportStats>();

  constructor(clusters: ClusterManager, stats: StatsStore) {
    this.clusters = clusters;
    this.stats = stats;
  }

  /** The shared pipeline for a provider, collector and service name; created (and the SDK loaded) on first use. */
  sinkFor(provider: TracingProviderConfig, serviceName: string): SpanSink {
    const key = JSON.stringify([provider, serviceName]);
    let sink = this.sinks.get(key);
    if (sink === undefined) {
      let stats = this.statsByKind.get(provider.kind);
      if (stats === undefined) {
        stats = exportStats(this.stats, provider.kind);
        this.statsByKind.set(provider.kind, stats);
      }
      sink = new ExportPipeline(provider, serviceName, this.clusters, stats);
      this.sinks.set(key, sink);
    }
    return sink;
  }

  /** Exports what is queued (bounded in time) and stops the exporters. */
  async shutdown(timeoutMs = SHUTDOWN_FLUSH_MS): Promise<void> {
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    await Promise.allSettled(sinks.map((s) => s.shutdown(timeoutMs)));
  }
}

export interface TracerContext {
  readonly runtime: TracingRuntime;
  /** The listener's traffic_direction: OUTBOUND spans are CLIENT spans, the rest SERVER spans. */
  readonly trafficDirection: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
  /** The sampling dice, in [0, 1); Math.random unless a test fixes it. */
  readonly random?: () => number;
}

/**
 * A tracer when the connection manager has `tracing`. Without a provider Envoy would not trace at all; Weft
 * still extracts, decides and propagates (reporting nothing), which is what Istio's disableSpanReporting asks
 * for: "does not impact context propagation or trace sampling behavior".
 */
export function createHttpTracer(
  config: HttpTracingConfig | undefined,
  ctx: TracerContext,
): HttpTracer | null {
  if (config === undefined) return null;
  return new ProxyHttpTracer(config, ctx);
}

type Attributes = Record<string, string | number | boolean>;

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function metadataString(md: unknown, key: string): string | undefined {
  if (!isObject(md)) return undefined;
  const v = md[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Span attributes that are the same for every request of this tracer: the node's, and the literal custom tags. */
function staticAttributes(config: HttpTracingConfig, node: NodeInfo | undefined): Attributes {
  const a: Attributes = { component: 'proxy' };
  if (node !== undefined) {
    a.node_id = node.id;
    if (node.locality?.zone) a.zone = node.locality.zone;
    const md = node.metadata;
    const labels = isObject(md) ? md.LABELS : undefined;
    const canonical =
      metadataString(labels, 'service.istio.io/canonical-name') ?? metadataString(labels, 'app');
    if (canonical !== undefined) a['istio.canonical_service'] = canonical;
    const ns = metadataString(md, 'NAMESPACE');
    if (ns !== undefined) a['istio.namespace'] = ns;
    const mesh = metadataString(md, 'MESH_ID');
    if (mesh !== undefined) a['istio.mesh_id'] = mesh;
  }
  for (const tag of config.customTags) if (tag.kind === 'literal') a[tag.tag] = tag.value;
  return a;
}

class ProxyHttpTracer implements HttpTracer {
  private readonly config: HttpTracingConfig;
  private readonly provider: TracingProviderConfig | undefined;
  private readonly runtime: TracingRuntime;
  private readonly kind: ProxySpanKind;
  private readonly random: () => number;
  private readonly traceId128: boolean;
  private readonly headerTags: HttpTracingConfig['customTags'];
  /** Resolved on the first sampled request, once the node is known (it comes with the connection manager). */
  private sink: SpanSink | undefined;
  private base: Attributes | undefined;

  constructor(config: HttpTracingConfig, ctx: TracerContext) {
    const provider = config.provider;
    this.config = config;
    this.provider = provider;
    this.runtime = ctx.runtime;
    this.kind = ctx.trafficDirection === 'OUTBOUND' ? 'CLIENT' : 'SERVER';
    this.random = ctx.random ?? Math.random;
    this.traceId128 = provider?.kind === 'zipkin' ? provider.traceId128bit : true;
    this.headerTags = config.customTags.filter((t) => t.kind === 'request_header');
  }

  onRequest(stream: HttpStream): void {
    const headers = stream.headers;
    const incoming = extractContext(headers);
    const sampled = incoming?.sampled ?? this.sampleAtEdge(headers['x-client-trace-id'] !== undefined);
    const trace: StreamTrace = {
      sampled,
      traceId: incoming?.traceId ?? newTraceId(this.traceId128),
      spanId: newSpanId(),
      parentSpanId: incoming?.spanId,
      debug: incoming?.debug ?? false,
      traceState: incoming?.traceState,
    };
    stream.trace = trace;
    injectContext(headers, trace);
  }

  /**
   * Envoy's decision for a request that brings none: client_sampling when the client asked for a trace
   * (x-client-trace-id), random_sampling otherwise, then overall_sampling as an upper bound. Envoy's extra
   * condition that x-request-id be "traceable" is not modelled.
   */
  private sampleAtEdge(clientAsked: boolean): boolean {
    const c = this.config;
    const pct = clientAsked ? c.clientSampling : c.randomSampling;
    if (!(pct >= 100 || this.random() * 100 < pct)) return false;
    return c.overallSampling >= 100 || this.random() * 100 < c.overallSampling;
  }

  onComplete(stream: HttpStream): void {
    const trace = stream.trace;
    const provider = this.provider;
    if (trace === undefined || !trace.sampled || provider === undefined) return;
    if (this.sink === undefined) {
      const node = stream.hcm.telemetry.node;
      const serviceName =
        (provider.kind === 'opentelemetry' ? provider.serviceName : undefined) ??
        (node?.cluster || 'weft-proxy');
      this.sink = this.runtime.sinkFor(provider, serviceName);
      this.base = staticAttributes(this.config, node);
    }
    this.sink.record(this.finishedSpan(stream, trace));
  }

  private finishedSpan(stream: HttpStream, trace: StreamTrace): FinishedSpan {
    const headers = stream.headers;
    const q = stream.path.indexOf('?');
    const pathOnly = q === -1 ? stream.path : stream.path.slice(0, q);
    const status = stream.responseStatus;
    const error = status === 0 || status >= 500;
    const a: Attributes = { ...this.base };
    a['http.method'] = stream.method;
    const max = this.config.maxPathTagLength;
    a['http.url'] =
      `${stream.scheme}://${stream.authority}${stream.path.length > max ? stream.path.slice(0, max) : stream.path}`;
    a['http.protocol'] = stream.http2 ? 'HTTP/2' : `HTTP/${stream.req.httpVersion}`;
    a['http.status_code'] = String(status);
    a.response_flags = stream.flags === '' ? '-' : stream.flags;
    a.upstream_cluster = stream.clusterName === '' ? '-' : stream.clusterName;
    a['upstream_cluster.name'] = a.upstream_cluster;
    if (stream.upstreamHost !== null) a.upstream_address = stream.upstreamHost.key;
    const requestId = headerString(headers['x-request-id']);
    if (requestId !== undefined) a['guid:x-request-id'] = requestId;
    a.user_agent = headerString(headers['user-agent']) ?? '-';
    a.downstream_cluster = headerString(headers['x-envoy-downstream-service-cluster']) ?? '-';
    a['peer.address'] = stream.sourceIp;
    a.request_size = stream.bytesReceived;
    a.response_size = stream.bytesSent;
    const grpc = stream.grpcStatus;
    if (grpc !== undefined) a['grpc.status_code'] = grpc;
    const peer = stream.downstreamSecurity?.peerPrincipal;
    if (peer !== undefined) a['peer.identity'] = peer;
    for (const tag of this.headerTags) {
      if (tag.kind !== 'request_header') continue;
      const v = headerString(headers[tag.header]) ?? tag.defaultValue;
      if (v !== undefined) a[tag.tag] = v;
    }
    if (error) a.error = 'true';
    const origin = performance.timeOrigin;
    const endMs = stream.endMs === 0 ? performance.now() : stream.endMs;
    return {
      name: `${stream.authority}${pathOnly}`,
      kind: this.kind,
      trace,
      startTime: origin + stream.startMs,
      endTime: origin + endMs,
      attributes: a,
      error,
    };
  }
}
