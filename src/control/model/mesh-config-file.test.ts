import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadMeshConfigFile, MeshConfigError, parseMeshConfig } from './mesh-config-file.ts';

function problems(text: string): readonly string[] {
  try {
    parseMeshConfig('mesh.yaml', text);
  } catch (err) {
    assert.ok(err instanceof MeshConfigError);
    return err.problems;
  }
  assert.fail('expected the mesh config to be refused');
}

describe('MeshConfig file', () => {
  it('reads the supported fields, bare or as the `mesh` key of Istio ConfigMap data', () => {
    const text = `accessLogFile: /dev/stdout
accessLogEncoding: JSON
enableTracing: true
defaultConfig: { tracing: { sampling: 10 } }
defaultProviders: { metrics: [prometheus], tracing: [zipkin], accessLogging: [envoy] }
rootNamespace: mesh-root
h2UpgradePolicy: UPGRADE
extensionProviders:
  - name: zipkin
    zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411, maxTagLength: 100 }
  - name: otel
    opentelemetry:
      service: otel.observability.svc.cluster.local
      port: 4318
      http: { path: /v1/traces, timeout: 500ms, headers: [{ name: x-api-key, value: k }] }
  - name: file
    envoyFileAccessLog: { path: /tmp/a.log, logFormat: { labels: { code: '%RESPONSE_CODE%' } } }
  - name: prom
    prometheus: {}
`;
    const config = parseMeshConfig('mesh.yaml', text);
    assert.equal(config.rootNamespace, 'mesh-root');
    assert.equal(config.h2UpgradePolicy, 'UPGRADE');
    assert.equal(config.extensionProviders?.length, 4);
    const wrapped = `mesh: |\n${text
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n')}`;
    assert.deepEqual(parseMeshConfig('configmap.yaml', wrapped), config);
    assert.deepEqual(parseMeshConfig('empty.yaml', ''), {});
  });

  it('refuses unknown fields, OTLP over gRPC, bad values and unknown default providers, naming file, line and field', () => {
    assert.deepEqual(
      problems(`accessLogEncoding: XML
outboundTrafficPolicy: { mode: REGISTRY_ONLY }
defaultProviders: { tracing: [jaeger] }
extensionProviders:
  - name: otel
    opentelemetry: { service: otel, port: 4317, grpc: {} }
  - name: z
    zipkin: { service: zipkin, port: 0 }
  - name: both
    zipkin: { service: zipkin, port: 9411 }
    prometheus: {}
`),
      [
        'mesh.yaml:1: accessLogEncoding: must be one of TEXT, JSON',
        'mesh.yaml:2: outboundTrafficPolicy: is not a MeshConfig field Weft supports (not supported by Weft)',
        'mesh.yaml:6: extensionProviders[0].opentelemetry.grpc: is not supported by Weft: OTLP over HTTP only (set `http`)',
        'mesh.yaml:6: extensionProviders[0].opentelemetry.http: is required',
        'mesh.yaml:8: extensionProviders[1].zipkin.port: must be a port number (1-65535)',
        'mesh.yaml:9: extensionProviders[2]: must set exactly one of zipkin, opentelemetry, envoyFileAccessLog, prometheus (Weft supports these provider kinds)',
      ],
    );
    assert.deepEqual(problems('h2UpgradePolicy: ALWAYS\n'), [
      'mesh.yaml:1: h2UpgradePolicy: must be one of DO_NOT_UPGRADE, UPGRADE',
    ]);
    assert.deepEqual(problems('defaultProviders: { tracing: [jaeger] }\n'), [
      'mesh.yaml:1: defaultProviders.tracing[0]: names no extensionProviders entry ("jaeger")',
    ]);
    assert.deepEqual(problems('accessLogEncoding: JSON\naccessLogFormat: "[%START_TIME%]"\n'), [
      'mesh.yaml:2: accessLogFormat: with accessLogEncoding JSON, must be a JSON object of labels to format strings',
    ]);
    assert.match(problems('a: [\n')[0], /^mesh\.yaml:\d+: YAML: /);
  });

  it('a file that cannot be read is an error naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-'));
    try {
      assert.throws(() => loadMeshConfigFile(path.join(dir, 'missing.yaml')), /missing\.yaml: cannot read/);
      fs.writeFileSync(path.join(dir, 'mesh.yaml'), 'accessLogFile: /dev/stdout\n');
      assert.deepEqual(loadMeshConfigFile(path.join(dir, 'mesh.yaml')), { accessLogFile: '/dev/stdout' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
