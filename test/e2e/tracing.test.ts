/**
 * Distributed tracing across real `weft proxy` processes: client → OUTBOUND proxy → INBOUND proxy → app →
 * OUTBOUND proxy → upstream. The app forwards the trace headers, as instrumented applications must. Each
 * proxy exports its span to a collector in the test (OTLP/HTTP protobuf, then Zipkin v2 JSON).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { spawnProxy, waitFor, writeBootstrap } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';
import { startSpanCollector } from '../../src/proxy/tracing/testing.ts';
import type { ReceivedSpan, SpanCollector } from '../../src/proxy/tracing/testing.ts';
import { OPENTELEMETRY_CONFIG_TYPE, ZIPKIN_CONFIG_TYPE } from '../../src/proxy/tracing/config.ts';

type Provider = 'opentelemetry' | 'zipkin';

function tracing(provider: Provider, randomSampling: number): Record<string, unknown> {
  const typed =
    provider === 'zipkin'
      ? {
          '@type': ZIPKIN_CONFIG_TYPE,
          collector_cluster: 'collector',
          collector_endpoint: '/api/v2/spans',
          collector_endpoint_version: 'HTTP_JSON',
          trace_id_128bit: true,
        }
      : {
          '@type': OPENTELEMETRY_CONFIG_TYPE,
          http_service: {
            http_uri: { uri: 'http://collector:4318/v1/traces', cluster: 'collector', timeout: '2s' },
          },
        };
  return {
    random_sampling: { value: randomSampling },
    provider: { name: `envoy.tracers.${provider}`, typed_config: typed },
  };
}

const TRACE_HEADERS = [
  'traceparent',
  'tracestate',
  'x-request-id',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
];

async function readyPort(p: ProxyProcess): Promise<number> {
  const line = (await waitFor(() => /proxy ready (\{.*\})/.exec(p.output()), 20_000, 'proxy ready'))!;
  const info = JSON.parse(line[1]) as { listeners: string[] };
  return Number(info.listeners[0].split(':').pop());
}

interface Chain {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the three proxies and the app, last hop first so each knows the next one's port. */
async function startChain(
  provider: Provider,
  collectorPort: number,
  upstreamPort: number,
  edgeSampling: number,
): Promise<Chain> {
  const procs: ProxyProcess[] = [];
  const proxy = async (name: string, direction: 'INBOUND' | 'OUTBOUND', target: number, sampling: number) => {
    const doc = bootstrapDoc(
      [{ ...httpListener({ hcm: { tracing: tracing(provider, sampling) } }), traffic_direction: direction }],
      [staticCluster('backend', [{ port: target }]), staticCluster('collector', [{ port: collectorPort }])],
    );
    doc.node = { id: `${name}~127.0.0.1`, cluster: name, metadata: { NAMESPACE: 'e2e', MESH_ID: 'mesh' } };
    const p = spawnProxy(writeBootstrap(doc));
    procs.push(p);
    return readyPort(p);
  };
  const appEgress = await proxy('app-out', 'OUTBOUND', upstreamPort, 100);
  const app = http.createServer((req, res) => {
    const headers: http.OutgoingHttpHeaders = { host: 'backend.e2e:9090' };
    for (const h of TRACE_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    request(appEgress, { path: '/backend', headers }).then(
      (r) => {
        res.writeHead(r.status);
        res.end(r.body);
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  const appIngress = await proxy('app-in', 'INBOUND', appPort, 100);
  const clientEgress = await proxy('client', 'OUTBOUND', appIngress, edgeSampling);
  return {
    port: clientEgress,
    stop: async () => {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      app.closeAllConnections();
      await new Promise<void>((r) => app.close(() => r()));
    },
  };
}

function assertChain(spans: ReceivedSpan[]): void {
  assert.equal(spans.length, 3, JSON.stringify(spans, null, 1));
  const traceIds = new Set(spans.map((s) => s.traceId));
  assert.equal(traceIds.size, 1, 'one trace');
  const byService = new Map(spans.map((s) => [s.serviceName, s]));
  const client = byService.get('client')!;
  const server = byService.get('app-in')!;
  const backend = byService.get('app-out')!;
  assert.ok(client && server && backend, `services: ${[...byService.keys()].join(',')}`);
  assert.equal(client.parentSpanId, '', 'the edge span is a root');
  assert.equal(server.parentSpanId, client.spanId, 'server span is a child of the client span');
  assert.equal(backend.parentSpanId, server.spanId, 'the app call is a child of the server span');
  assert.equal(client.kind, 'CLIENT');
  assert.equal(server.kind, 'SERVER');
  assert.equal(backend.kind, 'CLIENT');
  assert.equal(client.name, 'shop.e2e:8080/checkout');
  assert.equal(backend.name, 'backend.e2e:9090/backend');
  for (const s of spans) {
    assert.equal(s.attributes['http.status_code'], '200');
    assert.equal(s.attributes['http.method'], 'GET');
    assert.equal(s.attributes.upstream_cluster, 'backend');
    assert.equal(s.attributes.component, 'proxy');
    assert.equal(s.attributes['istio.namespace'], 'e2e');
    assert.equal(s.error, false);
  }
  assert.equal(client.attributes.node_id, 'client~127.0.0.1');
  assert.equal(client.attributes['http.url'], 'http://shop.e2e:8080/checkout?item=1');
  // Spans nest in time: the client span covers the server span, which covers the backend call.
  assert.ok(client.startUs <= server.startUs && server.startUs <= backend.startUs);
  assert.ok(client.durationUs >= backend.durationUs);
}

for (const provider of ['opentelemetry', 'zipkin'] as const) {
  describe(`tracing across three proxies (${provider})`, { timeout: 90_000 }, () => {
    let up: Awaited<ReturnType<typeof startHttpUpstream>>;
    let collector: SpanCollector;
    let chain: Chain | undefined;
    before(async () => {
      up = await startHttpUpstream({ name: 'backend' });
      collector = await startSpanCollector();
      chain = await startChain(provider, collector.port, up.port, 100);
    });
    after(async () => {
      await chain?.stop();
      await up?.close();
      await collector?.close();
    });

    it('reports one trace of three correctly parented spans', async () => {
      const r = await request(chain!.port, { path: '/checkout?item=1', headers: { host: 'shop.e2e:8080' } });
      assert.equal(r.status, 200, r.body);
      const seen = up.seen.at(-1)!.headers;
      await waitFor(() => collector.spans.length >= 3, 20_000, 'three spans');
      await new Promise((res) => setTimeout(res, 300));
      assertChain(collector.spans);
      // What reached the upstream continues the same trace, with the last proxy's span as parent.
      const backend = collector.spans.find((s) => s.serviceName === 'app-out')!;
      assert.equal(seen.traceparent, `00-${backend.traceId}-${backend.spanId}-01`);
      assert.equal(seen['x-b3-spanid'], backend.spanId);
      assert.equal(seen['x-b3-sampled'], '1');
    });
  });
}

describe('0% sampling at the edge', { timeout: 90_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let collector: SpanCollector;
  let chain: Chain | undefined;
  before(async () => {
    up = await startHttpUpstream({ name: 'backend' });
    collector = await startSpanCollector();
    chain = await startChain('opentelemetry', collector.port, up.port, 0);
  });
  after(async () => {
    await chain?.stop();
    await up?.close();
    await collector?.close();
  });

  it('means no spans anywhere downstream, though they sample 100%, and the decision propagates', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await request(chain!.port, { path: '/checkout', headers: { host: 'shop.e2e:8080' } });
      assert.equal(r.status, 200);
      const seen = up.seen.at(-1)!.headers;
      assert.equal(seen['x-b3-sampled'], '0');
      assert.match(String(seen.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
    // Three batch delays (1 s each) and the proxies' shutdown flush: anything sampled would have arrived.
    await new Promise((res) => setTimeout(res, 3000));
    await chain!.stop();
    chain = undefined;
    assert.equal(collector.requests, 0);
    assert.equal(collector.spans.length, 0);
  });
});
