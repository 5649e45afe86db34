import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import type { HttpStream } from '../http/stream.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { bootstrapDoc, httpListener, staticCluster } from '../../../test/support/bootstrap.ts';
import { startProxy, waitFor } from '../../../test/support/proxy.ts';
import type { RunningProxy } from '../../../test/support/proxy.ts';
import { startHttpUpstream } from '../../../test/support/servers.ts';
import { request } from '../../../test/support/http.ts';
import { compileHttpTracing, OPENTELEMETRY_CONFIG_TYPE, ZIPKIN_CONFIG_TYPE } from './config.ts';
import { createHttpTracer, TracingRuntime } from './tracer.ts';
import { startSpanCollector } from './testing.ts';
import type { SpanCollector } from './testing.ts';
import { MAX_QUEUE_SIZE } from './export.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

function zipkinTracing(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: {
      name: 'envoy.tracers.zipkin',
      typed_config: {
        '@type': ZIPKIN_CONFIG_TYPE,
        collector_cluster: 'zipkin',
        collector_endpoint: '/api/v2/spans',
        collector_endpoint_version: 'HTTP_JSON',
        trace_id_128bit: true,
      },
    },
    ...extra,
  };
}

function otelTracing(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': OPENTELEMETRY_CONFIG_TYPE,
        http_service: { http_uri: { uri: 'http://otel:4318/v1/traces', cluster: 'otel', timeout: '2s' } },
      },
    },
    ...extra,
  };
}

/** A tracer over fake streams: onRequest only reads and writes headers. */
function sampler(tracing: Record<string, unknown>, dice: number[]) {
  const stats = new StatsStore();
  const tracer = createHttpTracer(compileHttpTracing(tracing, 'tracing'), {
    runtime: new TracingRuntime(new ClusterManager(stats), stats),
    trafficDirection: 'OUTBOUND',
    random: () => {
      const d = dice.shift();
      if (d === undefined) throw new Error('no dice left');
      return d;
    },
  })!;
  return (headers: http.IncomingHttpHeaders) => {
    const stream = { headers } as unknown as HttpStream;
    tracer.onRequest(stream);
    return stream.trace!;
  };
}

describe('sampling decisions', () => {
  it('samples at the edge with random_sampling, then overall_sampling, from the dice', () => {
    const decide = sampler(
      zipkinTracing({ random_sampling: { value: 10 }, overall_sampling: { value: 50 } }),
      [0.05, 0.4, 0.05, 0.6, 0.11],
    );
    assert.equal(decide({}).sampled, true); // 5 < 10, then 40 < 50
    assert.equal(decide({}).sampled, false); // 5 < 10, then 60 >= 50
    assert.equal(decide({}).sampled, false); // 11 >= 10
  });

  it('uses client_sampling when the client sent x-client-trace-id', () => {
    const decide = sampler(
      zipkinTracing({ random_sampling: { value: 0 }, client_sampling: { value: 30 } }),
      [0.2],
    );
    assert.equal(decide({ 'x-client-trace-id': 'abc' }).sampled, true);
  });

  it('never rolls the dice for 100% (the default) or for an incoming decision', () => {
    const decide = sampler(zipkinTracing({ random_sampling: { value: 0 } }), []);
    assert.equal(decide({ traceparent: `00-${T}-${S}-01` }).sampled, true);
    assert.equal(decide({ 'x-b3-sampled': '0' }).sampled, false);
    assert.equal(decide({ 'x-b3-flags': '1' }).sampled, true);
    assert.equal(sampler(zipkinTracing(), [])({}).sampled, true);
  });

  it('0% at the edge samples nothing; an incoming context keeps its trace id and becomes the parent', () => {
    const decide = sampler(zipkinTracing({ random_sampling: { value: 0 } }), [0, 0, 0]);
    const headers: http.IncomingHttpHeaders = {};
    const t = decide(headers);
    assert.equal(t.sampled, false);
    assert.equal(headers['x-b3-sampled'], '0');
    const child = decide({ ...headers });
    assert.equal(child.traceId, t.traceId);
    assert.equal(child.parentSpanId, t.spanId);
    assert.equal(child.sampled, false);
  });

  it('starts 64-bit traces for Zipkin without trace_id_128bit', () => {
    const tracing = zipkinTracing();
    (tracing.provider as { typed_config: Record<string, unknown> }).typed_config.trace_id_128bit = false;
    const headers: http.IncomingHttpHeaders = {};
    assert.match(sampler(tracing, [])(headers).traceId, /^0{16}[0-9a-f]{16}$/);
    assert.match(String(headers['x-b3-traceid']), /^[0-9a-f]{16}$/);
  });

  it('without a provider (Istio disableSpanReporting) still decides and propagates', () => {
    const decide = sampler({ random_sampling: { value: 50 } }, [0.3, 0.7]);
    const headers: http.IncomingHttpHeaders = {};
    assert.equal(decide(headers).sampled, true);
    assert.match(String(headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.equal(decide({}).sampled, false);
    const stats = new StatsStore();
    const none = createHttpTracer(compileHttpTracing(undefined, 't'), {
      runtime: new TracingRuntime(new ClusterManager(stats), stats),
      trafficDirection: 'INBOUND',
    });
    assert.equal(none, null);
  });
});

describe('lazy loading', () => {
  it('the proxy and a tracer with a provider load no OpenTelemetry module until a span is reported', async () => {
    const url = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({
        resolve(spec, ctx, next) {
          if (spec.startsWith('@opentelemetry/')) seen.push(spec);
          return next(spec, ctx);
        },
      });
      await import(${url('../server.ts')});
      const { createHttpTracer, TracingRuntime } = await import(${url('./tracer.ts')});
      const { compileHttpTracing } = await import(${url('./config.ts')});
      const { StatsStore } = await import(${url('../stats/store.ts')});
      const { ClusterManager } = await import(${url('../upstream/cluster-manager.ts')});
      const stats = new StatsStore();
      const tracer = createHttpTracer(compileHttpTracing(${JSON.stringify(otelTracing())}, 't'), {
        runtime: new TracingRuntime(new ClusterManager(stats), stats),
        trafficDirection: 'OUTBOUND',
      });
      const stream = { headers: { traceparent: '00-${T}-${S}-00' } };
      tracer.onRequest(stream);
      tracer.onComplete(stream);
      console.log(JSON.stringify(seen));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { timeout: 20_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), []);
  });
});

function tracedProxyDoc(
  tracing: Record<string, unknown>,
  upstreamPort: number,
  collectorPort: number,
  direction: 'INBOUND' | 'OUTBOUND',
  collectorCluster: string,
) {
  const listener = { ...httpListener({ hcm: { tracing } }), traffic_direction: direction };
  const doc = bootstrapDoc(
    [listener],
    [
      staticCluster('backend', [{ port: upstreamPort }]),
      staticCluster(collectorCluster, [{ port: collectorPort }]),
    ],
  );
  doc.node = {
    id: 'sidecar~10.0.0.1~shop-1.ns1~ns1.svc.cluster.local',
    cluster: 'shop.ns1',
    locality: { zone: 'z1' },
    metadata: { NAMESPACE: 'ns1', MESH_ID: 'mesh1', LABELS: { 'service.istio.io/canonical-name': 'shop' } },
  };
  return doc;
}

describe('spans from a proxy (OTLP/HTTP)', { timeout: 30_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let collector: SpanCollector;
  let proxy: RunningProxy | undefined;
  const seen: http.IncomingHttpHeaders[] = [];
  before(async () => {
    up = await startHttpUpstream({
      handler: (req, res) => {
        seen.push(req.headers);
        res.writeHead(req.url?.startsWith('/fail') ? 503 : 200);
        res.end('ok');
      },
    });
    collector = await startSpanCollector();
    proxy = await startProxy(
      tracedProxyDoc(
        otelTracing({
          custom_tags: [{ tag: 'tenant', request_header: { name: 'x-tenant' } }],
          max_path_tag_length: 12,
        }),
        up.port,
        collector.port,
        'INBOUND',
        'otel',
      ),
    );
  });
  after(async () => {
    await proxy?.stop();
    await up?.close();
    await collector?.close();
  });

  it('reports a SERVER span parented to the incoming context, with Envoy-like attributes', async () => {
    const r = await request(proxy!.port(), {
      path: '/items/long/path?q=1',
      headers: {
        host: 'shop.ns1:8080',
        traceparent: `00-${T}-${S}-01`,
        'x-tenant': 'acme',
        'user-agent': 'ua/1',
      },
    });
    assert.equal(r.status, 200);
    await waitFor(() => collector.spans.length >= 1, 10_000, 'span');
    const [span] = collector.spans;
    assert.equal(span.traceId, T);
    assert.equal(span.parentSpanId, S);
    assert.equal(span.kind, 'SERVER');
    assert.equal(span.name, 'shop.ns1:8080/items/long/path');
    assert.equal(span.serviceName, 'shop.ns1');
    const a = span.attributes;
    assert.equal(a['http.method'], 'GET');
    assert.equal(a['http.url'], 'http://shop.ns1:8080/items/long/');
    assert.equal(a['http.status_code'], '200');
    assert.equal(a['http.protocol'], 'HTTP/1.1');
    assert.equal(a.upstream_cluster, 'backend');
    assert.equal(a.upstream_address, `127.0.0.1:${up.port}`);
    assert.equal(a.response_flags, '-');
    assert.equal(a.node_id, 'sidecar~10.0.0.1~shop-1.ns1~ns1.svc.cluster.local');
    assert.equal(a.zone, 'z1');
    assert.equal(a['istio.canonical_service'], 'shop');
    assert.equal(a['istio.namespace'], 'ns1');
    assert.equal(a['istio.mesh_id'], 'mesh1');
    assert.equal(a.component, 'proxy');
    assert.equal(a.tenant, 'acme');
    assert.equal(a.user_agent, 'ua/1');
    assert.equal(a['peer.address'], '127.0.0.1');
    assert.equal(a.response_size, 2);
    assert.match(String(a['guid:x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(span.error, false);
    // The upstream saw this proxy's span as its parent, in both formats.
    const h = seen.at(-1)!;
    assert.equal(h.traceparent, `00-${T}-${span.spanId}-01`);
    assert.equal(h['x-b3-traceid'], T);
    assert.equal(h['x-b3-spanid'], span.spanId);
    assert.equal(h['x-b3-parentspanid'], S);
    assert.equal(h['x-b3-sampled'], '1');
  });

  it('marks 5xx responses as errors', async () => {
    collector.spans.length = 0;
    await request(proxy!.port(), { path: '/fail', headers: { traceparent: `00-${T}-${S}-01` } });
    await waitFor(() => collector.spans.length >= 1, 10_000, 'span');
    const [span] = collector.spans;
    assert.equal(span.error, true);
    assert.equal(span.attributes.error, 'true');
    assert.equal(span.attributes['http.status_code'], '503');
  });

  it('reports nothing for an unsampled request, yet propagates', async () => {
    collector.spans.length = 0;
    const before = collector.requests;
    await request(proxy!.port(), { headers: { traceparent: `00-${T}-${S}-00` } });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(collector.requests, before);
    assert.match(String(seen.at(-1)!.traceparent), /-00$/);
    assert.equal(proxy!.server.stats.counter('tracing.opentelemetry.spans_sent').value, 2);
  });
});

describe('export never slows requests', { timeout: 60_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  after(async () => {
    await up?.close();
  });
  before(async () => {
    up = await startHttpUpstream({
      handler: (_req, res) => {
        res.writeHead(200);
        res.end('ok');
      },
    });
  });

  async function load(port: number, n: number, concurrency: number): Promise<number> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    let worst = 0;
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const t0 = performance.now();
        const r = await request(port, { agent });
        assert.equal(r.status, 200);
        worst = Math.max(worst, performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    agent.destroy();
    return worst;
  }

  it('with a collector that accepts and never answers: bounded reports in flight, queue drops counted', async () => {
    const collector = await startSpanCollector('hang');
    const proxy = await startProxy(
      tracedProxyDoc(zipkinTracing(), up.port, collector.port, 'OUTBOUND', 'zipkin'),
    );
    try {
      const n = MAX_QUEUE_SIZE + 1000;
      const worst = await load(proxy.port(), n, 16);
      // A request waiting on the exporter would take the export timeout (10 s); none comes near it.
      assert.ok(worst < 3000, `slowest request took ${worst} ms`);
      const stats = proxy.server.stats;
      await waitFor(() => collector.requests >= 1, 5000, 'an export attempt');
      assert.ok(collector.requests <= 2, `${collector.requests} reports in flight`);
      const dropped = stats.counter('tracing.zipkin.spans_dropped').value;
      // Only the queue and at most two hung batches are kept; every other span is dropped and counted (a batch
      // refused because two are in flight counts as dropped too, so there is no tighter upper bound).
      assert.ok(dropped >= n - MAX_QUEUE_SIZE - 2 * 512, `dropped ${dropped}`);
      assert.ok(dropped <= n, `dropped ${dropped}`);
      assert.equal(stats.counter('tracing.zipkin.spans_sent').value, 0);
    } finally {
      const t0 = performance.now();
      await proxy.stop();
      const stopMs = performance.now() - t0;
      await collector.close();
      // shutdown's flush is bounded (3 s) even though the collector never answers.
      assert.ok(stopMs < 8000, `stop took ${stopMs} ms`);
    }
  });

  it('with a collector that refuses connections: reports fail, spans dropped, requests unaffected', async () => {
    const gone = await startSpanCollector();
    const port = gone.port;
    await gone.close();
    const proxy = await startProxy(tracedProxyDoc(zipkinTracing(), up.port, port, 'OUTBOUND', 'zipkin'));
    try {
      const worst = await load(proxy.port(), 200, 8);
      assert.ok(worst < 3000, `slowest request took ${worst} ms`);
      const stats = proxy.server.stats;
      await waitFor(
        () => stats.counter('tracing.zipkin.reports_failed').value >= 1,
        10_000,
        'a failed report',
      );
      await waitFor(
        () => stats.counter('tracing.zipkin.spans_dropped').value === 200,
        10_000,
        'all spans dropped',
      );
    } finally {
      await proxy.stop();
    }
  });
});
