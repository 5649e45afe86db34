/**
 * Span collectors for tests: an OTLP/HTTP (protobuf) receiver and a Zipkin v2 JSON receiver, both on
 * 127.0.0.1, both turning what they receive into one plain shape so tests can assert on either.
 *
 * OTLP bodies are decoded with opentelemetry-proto's published definitions (see exportTraceServiceRequest).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: 'CLIENT' | 'SERVER' | 'OTHER';
  readonly serviceName: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly error: boolean;
  /** Epoch microseconds. */
  readonly startUs: number;
  readonly durationUs: number;
}

export interface SpanCollector {
  readonly port: number;
  readonly spans: ReceivedSpan[];
  /** Export requests received. */
  requests: number;
  close(): Promise<void>;
}

/**
 * OpenTelemetry's own protobuf definitions (opentelemetry-proto's .proto files, as published in
 * @opentelemetry/otlp-grpc-exporter-base 0.34, a devDependency under the alias opentelemetry-proto-files),
 * loaded once with protobufjs.
 */
const OTLP_PROTO_ROOT = path.join(
  path.dirname(createRequire(import.meta.url).resolve('opentelemetry-proto-files/package.json')),
  'build',
  'protos',
);
let exportRequestType: protobuf.Type | undefined;

function exportTraceServiceRequest(): protobuf.Type {
  if (exportRequestType === undefined) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(OTLP_PROTO_ROOT, target);
    root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: true });
    exportRequestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  }
  return exportRequestType;
}

const OTLP_KIND_SERVER = 2;
const OTLP_KIND_CLIENT = 3;
const OTLP_STATUS_ERROR = 2;

interface KeyValue {
  key: string;
  value?: { string_value?: string; bool_value?: boolean; int_value?: number | string; double_value?: number };
}

function attributesOf(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key] =
      v.string_value ??
      v.bool_value ??
      (v.int_value !== undefined ? Number(v.int_value) : (v.double_value ?? ''));
  }
  return out;
}

/** Decodes an OTLP/HTTP protobuf export request body into spans. */
export function decodeOtlpTraces(body: Buffer): ReceivedSpan[] {
  const type = exportTraceServiceRequest();
  const msg = type.toObject(type.decode(body), { longs: String, bytes: Buffer, defaults: false }) as {
    resource_spans?: {
      resource?: { attributes?: KeyValue[] };
      scope_spans?: {
        spans?: {
          trace_id: Buffer;
          span_id: Buffer;
          parent_span_id?: Buffer;
          name: string;
          kind?: number;
          start_time_unix_nano: string;
          end_time_unix_nano: string;
          attributes?: KeyValue[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  const out: ReceivedSpan[] = [];
  for (const rs of msg.resource_spans ?? []) {
    const serviceName = String(attributesOf(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scope_spans ?? []) {
      for (const s of ss.spans ?? []) {
        const start = BigInt(s.start_time_unix_nano);
        const end = BigInt(s.end_time_unix_nano);
        out.push({
          traceId: s.trace_id.toString('hex'),
          spanId: s.span_id.toString('hex'),
          parentSpanId: s.parent_span_id?.toString('hex') ?? '',
          name: s.name,
          kind: s.kind === OTLP_KIND_CLIENT ? 'CLIENT' : s.kind === OTLP_KIND_SERVER ? 'SERVER' : 'OTHER',
          serviceName,
          attributes: attributesOf(s.attributes),
          error: s.status?.code === OTLP_STATUS_ERROR,
          startUs: Number(start / 1000n),
          durationUs: Number((end - start) / 1000n),
        });
      }
    }
  }
  return out;
}

interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind?: string;
  timestamp: number;
  duration: number;
  localEndpoint?: { serviceName?: string };
  tags?: Record<string, string>;
}

/** Parses a Zipkin v2 JSON span list. */
export function parseZipkinSpans(body: Buffer): ReceivedSpan[] {
  const list = JSON.parse(body.toString('utf8')) as ZipkinSpan[];
  return list.map((s) => ({
    traceId: s.traceId.padStart(32, '0'),
    spanId: s.id,
    parentSpanId: s.parentId ?? '',
    name: s.name,
    kind: s.kind === 'CLIENT' ? 'CLIENT' : s.kind === 'SERVER' ? 'SERVER' : 'OTHER',
    serviceName: s.localEndpoint?.serviceName ?? '',
    attributes: { ...s.tags },
    error: s.tags?.error !== undefined,
    startUs: s.timestamp,
    durationUs: s.duration,
  }));
}

export type CollectorBehaviour = 'answer' | 'hang';

/**
 * A collector on 127.0.0.1: OTLP (`/v1/traces`, protobuf) or Zipkin (any other path, JSON). 'hang' accepts
 * requests and never answers, as a stuck collector does.
 */
export async function startSpanCollector(behaviour: CollectorBehaviour = 'answer'): Promise<SpanCollector> {
  const pending = new Set<http.ServerResponse>();
  const collector: SpanCollector = {
    port: 0,
    spans: [],
    requests: 0,
    close: async () => {
      for (const res of pending) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      collector.requests++;
      if (behaviour === 'hang') {
        pending.add(res);
        return;
      }
      const body = Buffer.concat(chunks);
      try {
        const ct = String(req.headers['content-type']);
        collector.spans.push(...(ct.includes('protobuf') ? decodeOtlpTraces(body) : parseZipkinSpans(body)));
        res.writeHead(ct.includes('protobuf') ? 200 : 202, { 'content-type': 'application/x-protobuf' });
        res.end();
      } catch {
        res.writeHead(400);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  (collector as { port: number }).port = (server.address() as AddressInfo).port;
  return collector;
}
