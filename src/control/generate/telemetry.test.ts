/**
 * Telemetry merge (root namespace → namespace → workload, per side) and its proxy config: the istio.stats
 * value, access logs and their filters, tracing and sampling, and what makes a Telemetry invalid.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';
import type { Telemetry } from '../../api/istio/telemetry.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode, snapshotFromYaml } from './testing.ts';
import type { SideTelemetry } from './telemetry.ts';
import { collectorClusters, proxyTelemetry, telemetryProblems } from './telemetry.ts';
import { ISTIO_TEXT_LOG_FORMAT } from './telemetry-providers.ts';

function telemetry(name: string, namespace: string, spec: string): string {
  return `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
---
`;
}

const MESH: MeshConfig = {
  extensionProviders: [
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
    {
      name: 'otel',
      opentelemetry: {
        service: 'otel.observability.svc.cluster.local',
        port: 4318,
        http: { path: '/v1/traces' },
      },
    },
    {
      name: 'json-log',
      envoyFileAccessLog: { path: '/tmp/access.json', logFormat: { labels: { code: '%RESPONSE_CODE%' } } },
    },
    { name: 'prom2', prometheus: {} },
  ],
};

function sides(yaml: string, labels: Record<string, string> = {}, mesh: MeshConfig = MESH) {
  const snap = snapshotFromYaml(yaml, { meshConfig: mesh });
  return proxyTelemetry(sidecarNode('reviews', 'shop', labels), snap);
}

function statsValue(side: SideTelemetry): JsonObject | undefined {
  const f = side.httpFilters.find((x) => x.name === 'istio.stats');
  return f ? ((f.typed_config as JsonObject).value as JsonObject) : undefined;
}

describe('Telemetry merge', () => {
  it('defaults as Istio: prometheus stats on both sides, no access log, no tracing', () => {
    const t = sides('');
    assert.deepEqual(
      t.client.httpFilters.map((f) => f.name),
      ['istio.metadata_exchange', 'istio.stats'],
    );
    assert.deepEqual(statsValue(t.client), {});
    assert.deepEqual(statsValue(t.server), { disable_host_header_fallback: true });
    assert.deepEqual(
      ((t.server.httpFilters[0].typed_config as JsonObject).value as JsonObject).downstream_discovery,
      [{ istio_headers: {} }, { workload_discovery: {} }],
    );
    assert.deepEqual(
      t.client.tcpFilters.map((f) => f.name),
      ['istio.stats'],
    );
    assert.deepEqual([t.client.accessLog, t.client.tracing], [[], undefined]);
  });

  it('root namespace, then namespace, then workload: the most specific providers win, overrides accumulate', () => {
    const yaml =
      telemetry(
        'mesh',
        'istio-system',
        'metrics:\n- overrides:\n  - match: { metric: REQUEST_COUNT }\n    tagOverrides: { a: { value: "request.method" }, b: { value: "\'x\'" } }',
      ) +
      telemetry(
        'ns',
        'shop',
        'metrics:\n- overrides:\n  - match: { metric: REQUEST_COUNT, mode: SERVER }\n    tagOverrides: { a: { operation: REMOVE } }\n  - match: { metric: REQUEST_SIZE }\n    disabled: true',
      ) +
      telemetry(
        'wl',
        'shop',
        'selector: { matchLabels: { app: reviews } }\nmetrics:\n- overrides:\n  - match: { metric: REQUEST_SIZE, mode: CLIENT }\n    disabled: false\n  - match: { customMetric: my_metric }\n    tagOverrides: { c: { operation: UPSERT, value: "response.code" } }',
      );
    const t = sides(yaml);
    assert.deepEqual(statsValue(t.client)!.metrics, [
      { name: 'requests_total', dimensions: { a: 'request.method', b: "'x'" } },
      { name: 'request_bytes' },
      { name: 'my_metric', dimensions: { c: 'response.code' } },
    ]);
    assert.deepEqual(statsValue(t.server)!.metrics, [
      { name: 'requests_total', dimensions: { b: "'x'" }, tags_to_remove: ['a'] },
      { name: 'request_bytes', drop: true },
      { name: 'my_metric', dimensions: { c: 'response.code' } },
    ]);
    // Another workload of the namespace gets the root and namespace levels only.
    const other = proxyTelemetry(
      sidecarNode('ratings', 'shop'),
      snapshotFromYaml(yaml, { meshConfig: MESH }),
    );
    assert.deepEqual(statsValue(other.client)!.metrics, [
      { name: 'requests_total', dimensions: { a: 'request.method', b: "'x'" } },
      { name: 'request_bytes', drop: true },
    ]);
    // A workload of another namespace: the root level only.
    const elsewhere = proxyTelemetry(sidecarNode('x', 'other'), snapshotFromYaml(yaml, { meshConfig: MESH }));
    assert.deepEqual(statsValue(elsewhere.server)!.metrics, [
      { name: 'requests_total', dimensions: { a: 'request.method', b: "'x'" } },
    ]);
  });

  it('metrics without a prometheus provider: no stats and no metadata exchange filter; ALL_METRICS and the interval', () => {
    const off = sides(telemetry('ns', 'shop', 'metrics:\n- providers: [{ name: zipkin }]'));
    // zipkin is not a metrics provider: the resource is invalid (and would be left out by the control plane).
    assert.equal(off.client.httpFilters.length, 0);
    const none = sides('', {}, { defaultProviders: { metrics: [] } });
    assert.deepEqual(
      [none.client.httpFilters, none.client.tcpFilters, none.server.httpFilters],
      [[], [], []],
    );
    const renamed = sides(
      telemetry(
        'ns',
        'shop',
        'metrics:\n- providers: [{ name: prom2 }]\n  reportingInterval: 1m\n  overrides:\n  - disabled: true',
      ),
      {},
      { ...MESH, defaultProviders: { metrics: [] } },
    );
    assert.deepEqual(statsValue(renamed.client), {
      metrics: [{ drop: true }],
      tcp_reporting_duration: '60s',
    });
  });

  it('access logs: accessLogFile turns the built-in provider on; Telemetry picks providers, disables per side, filters', () => {
    const file = sides('', {}, { accessLogFile: '/var/log/access.log' });
    assert.deepEqual(file.client.accessLog, [
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: '/var/log/access.log',
          log_format: { text_format_source: { inline_string: ISTIO_TEXT_LOG_FORMAT } },
        },
      },
    ]);
    const json = sides('', {}, { accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' });
    const format = (json.server.accessLog[0].typed_config as JsonObject).log_format as JsonObject;
    assert.equal((format.json_format as JsonObject).response_code, '%RESPONSE_CODE%');
    const t = sides(
      telemetry(
        'mesh',
        'istio-system',
        'accessLogging:\n- providers: [{ name: envoy }, { name: json-log }]\n  filter: { expression: "response.code >= 500" }',
      ) +
        telemetry(
          'wl',
          'shop',
          'selector: { matchLabels: { app: reviews } }\naccessLogging:\n- match: { mode: SERVER }\n  disabled: true',
        ),
    );
    assert.deepEqual(t.server.accessLog, []);
    assert.deepEqual(
      t.client.accessLog.map((a) => [(a.typed_config as JsonObject).path, a.filter]),
      [
        [
          '/dev/stdout',
          {
            status_code_filter: {
              comparison: { op: 'GE', value: { default_value: 500, runtime_key: 'access_log.status_code' } },
            },
          },
        ],
        [
          '/tmp/access.json',
          {
            status_code_filter: {
              comparison: { op: 'GE', value: { default_value: 500, runtime_key: 'access_log.status_code' } },
            },
          },
        ],
      ],
    );
  });

  it('tracing: off without a provider; sampling from MeshConfig (1% by default), overridden by Telemetry per side', () => {
    assert.equal(
      sides('', {}, { ...MESH, defaultConfig: { tracing: { sampling: 50 } } }).client.tracing,
      undefined,
    );
    const byDefault = sides('', {}, { ...MESH, defaultProviders: { tracing: ['zipkin'] } });
    assert.deepEqual(byDefault.client.tracing!.random_sampling, { value: 1 });
    const zipkin = (byDefault.server.tracing!.provider as JsonObject).typed_config as JsonObject;
    assert.equal(zipkin.collector_cluster, 'outbound|9411||zipkin.istio-system.svc.cluster.local');
    const t = sides(
      telemetry(
        'mesh',
        'istio-system',
        'tracing:\n- providers: [{ name: otel }]\n  randomSamplingPercentage: 10\n  customTags: { env: { environment: { name: STAGE, defaultValue: dev } } }',
      ) +
        telemetry(
          'wl',
          'shop',
          'selector: { matchLabels: { app: reviews } }\ntracing:\n- match: { mode: CLIENT }\n  randomSamplingPercentage: 100\n  disableSpanReporting: true',
        ),
      { 'service.istio.io/canonical-name': 'reviews-svc' },
      { ...MESH, defaultConfig: { tracing: { sampling: 50 } } },
    );
    assert.deepEqual(t.server.tracing, {
      provider: {
        name: 'envoy.tracers.opentelemetry',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
          http_service: {
            http_uri: {
              uri: 'http://otel.observability.svc.cluster.local:4318/v1/traces',
              cluster: 'outbound|4318||otel.observability.svc.cluster.local',
              timeout: '5s',
            },
          },
          service_name: 'reviews-svc.shop',
        },
      },
      random_sampling: { value: 10 },
      custom_tags: [{ tag: 'env', environment: { name: 'STAGE', default_value: 'dev' } }],
    });
    // The client side samples everything and reports no span.
    assert.deepEqual(t.client.tracing, {
      random_sampling: { value: 100 },
      custom_tags: [{ tag: 'env', environment: { name: 'STAGE', default_value: 'dev' } }],
    });
  });

  it('equal telemetry keys share one result; a collector outside the registry gets a DNS cluster', () => {
    const yaml = telemetry('mesh', 'istio-system', 'tracing:\n- providers: [{ name: zipkin }]');
    const snap = snapshotFromYaml(yaml, { meshConfig: MESH });
    // Zipkin is the same for every workload: proxies of a namespace share their telemetry.
    assert.equal(
      proxyTelemetry(sidecarNode('a-1', 'shop', { app: 'a' }), snap),
      proxyTelemetry(sidecarNode('b-1', 'shop', { app: 'b' }), snap),
    );
    // OpenTelemetry in use names the workload's service: then only the same app shares.
    const otel = snapshotFromYaml(
      telemetry('mesh', 'istio-system', 'tracing:\n- providers: [{ name: otel }]'),
      {
        meshConfig: MESH,
      },
    );
    assert.equal(
      proxyTelemetry(sidecarNode('a-1', 'shop', { app: 'a' }), otel),
      proxyTelemetry(sidecarNode('a-2', 'shop', { app: 'a' }), otel),
    );
    assert.notEqual(
      proxyTelemetry(sidecarNode('a-1', 'shop', { app: 'a' }), otel),
      proxyTelemetry(sidecarNode('b-1', 'shop', { app: 'b' }), otel),
    );
    assert.deepEqual(
      collectorClusters(snap).map((c) => [c.name, c.type]),
      [['outbound|9411||zipkin.istio-system.svc.cluster.local', 'STRICT_DNS']],
    );
    const gen = generatorFromYaml(yaml, { meshConfig: MESH });
    const clusters = gen.generate(sidecarNode('a', 'shop'), TYPE_URL.cluster, null);
    assert.ok(clusters.has('outbound|9411||zipkin.istio-system.svc.cluster.local'));
  });
});

describe('Telemetry problems', () => {
  const resource = (spec: Telemetry): IstioResource<Telemetry> => ({
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: { name: 't', namespace: 'shop', labels: {}, annotations: {} },
    spec,
    source: { file: 't.yaml', line: 1, column: 1 },
  });

  it('names the field: unknown or misplaced providers, several tracers, formatter tags, CEL outside the subset', () => {
    assert.deepEqual(
      telemetryProblems(
        resource({
          metrics: [{ providers: [{ name: 'nope' }] }],
          tracing: [
            {
              providers: [{ name: 'zipkin' }, { name: 'otel' }],
              customTags: { f: { formatter: { value: '%X%' } } },
            },
          ],
          accessLogging: [
            { providers: [{ name: 'prometheus' }] },
            { filter: { expression: 'response.duration > 10' } },
          ],
        }),
        MESH,
      ).map((p) => p.field),
      [
        'metrics[0].providers[0].name',
        'tracing[0].providers',
        'tracing[0].customTags.f.formatter',
        'accessLogging[0].providers[0].name',
        'accessLogging[1].filter.expression',
      ],
    );
    assert.deepEqual(
      telemetryProblems(
        resource({ accessLogging: [{ filter: { expression: 'response.code >= 400' } }] }),
        MESH,
      ),
      [],
    );
  });
});
