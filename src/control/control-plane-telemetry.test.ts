/**
 * Telemetry over a running control plane (real delta xDS streams): a Telemetry applied to a namespace reaches
 * the listeners of that namespace's proxies and no other's; an invalid one is reported (WE0110) and pushes
 * nothing; a MeshConfig file that does not validate stops the control plane before it serves.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, setLogLevel } from '../core/logger.ts';
import { ControlPlane } from './control-plane.ts';
import { MeshConfigError } from './model/mesh-config-file.ts';
import { AdsTestClient, sidecarNode } from './xds/testing.ts';
import { TYPE_URL } from './xds/types.ts';

setLogLevel('error');

type Message = Record<string, unknown>;

/** The resources of a delta response (the test client decodes them) as JSON text. */
function resourcesText(response: Message): string {
  return JSON.stringify(response.resources ?? []);
}

const SERVICE = (ns: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ${ns} }
spec:
  hosts: [api.${ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.1 }]
`;

const ACCESS_LOG = (filter: string): string => `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: logs, namespace: ns-a }
spec:
  accessLogging:
    - providers: [{ name: envoy }]
      filter: { expression: "${filter}" }
`;

describe('Telemetry over a running control plane', { timeout: 30_000 }, () => {
  it('reaches the LDS of the proxies it applies to, and no other; an invalid one is reported, not pushed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-telemetry-'));
    const write = (file: string, text: string): void => {
      fs.writeFileSync(path.join(dir, `.${file}.tmp`), text);
      fs.renameSync(path.join(dir, `.${file}.tmp`), path.join(dir, file));
    };
    write('a.yaml', SERVICE('ns-a'));
    write('b.yaml', SERVICE('ns-b'));
    const cp = new ControlPlane({
      configPaths: [dir],
      xdsPort: 0,
      debugPort: 0,
      logger: createLogger('test-cp'),
      meshConfig: {},
    });
    const { xdsPort } = await cp.start();
    const clients: AdsTestClient[] = [];
    try {
      const subscribe = async (ns: string): Promise<AdsTestClient> => {
        const c = new AdsTestClient(xdsPort, 'delta');
        clients.push(c);
        c.send({ node: sidecarNode(`app-${ns}`, '10.0.0.1', ns), type_url: TYPE_URL.listener });
        const first = await c.next();
        assert.equal(first.type_url, TYPE_URL.listener);
        // Istio's default: stats on, no access log.
        assert.match(resourcesText(first), /istio\.stats/);
        assert.doesNotMatch(resourcesText(first), /access_loggers/);
        c.send({ type_url: TYPE_URL.listener, response_nonce: first.nonce });
        return c;
      };
      const a = await subscribe('ns-a');
      const b = await subscribe('ns-b');
      write('telemetry.yaml', ACCESS_LOG('response.code >= 500'));
      const update = await a.next(5000);
      assert.equal(update.type_url, TYPE_URL.listener);
      const text = resourcesText(update);
      assert.match(text, /envoy\.access_loggers\.file/);
      assert.match(text, /"default_value":500/);
      a.send({ type_url: TYPE_URL.listener, response_nonce: update.nonce });
      await b.none(500);

      // Outside the CEL subset: reported against the resource and field; the last valid version stays (no push).
      write('telemetry.yaml', ACCESS_LOG('response.duration > 10'));
      await a.none(800);
      const found = cp.telemetryDiagnostics;
      assert.equal(found.length, 1);
      assert.equal(found[0].code, 'WE0110');
      assert.equal(found[0].resource, 'Telemetry ns-a/logs');
      assert.equal(found[0].field, 'spec.accessLogging[0].filter.expression');
      // Fixed again: the filter changes, so the listeners do.
      write('telemetry.yaml', ACCESS_LOG('response.code >= 400'));
      assert.match(resourcesText(await a.next(5000)), /"default_value":400/);
      assert.deepEqual(cp.telemetryDiagnostics, []);
    } finally {
      for (const c of clients) c.close();
      await cp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a MeshConfig file that does not validate', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-mesh-'));
    try {
      const file = path.join(dir, 'mesh.yaml');
      fs.writeFileSync(
        file,
        'extensionProviders:\n  - name: otel\n    opentelemetry: { service: o, port: 4317, grpc: {} }\n',
      );
      assert.throws(
        () => new ControlPlane({ configPaths: [dir], meshConfigFile: file, logger: createLogger('test-cp') }),
        (err: unknown) =>
          err instanceof MeshConfigError &&
          /mesh\.yaml:3: extensionProviders\[0\]\.opentelemetry\.grpc: is not supported by Weft/.test(
            err.message,
          ),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
