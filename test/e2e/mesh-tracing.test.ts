/**
 * Traces and access logs configured the Istio way, end to end: a MeshConfig names a Zipkin provider and a file
 * access log, a Telemetry resource turns tracing to 100% in one namespace, and the control plane turns both into
 * the sidecars' tracing and access_log. A call from one workload to another through both sidecars must arrive
 * at the collector as one trace of two spans (the caller's CLIENT span parenting the callee's SERVER span),
 * the headers the application sees carry that context, and both sidecars log the call.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { meshService, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import { startSpanCollector } from '../../src/proxy/tracing/testing.ts';
import type { SpanCollector } from '../../src/proxy/tracing/testing.ts';

const WEB_IP = '127.0.0.31';
const API_IP = '127.0.0.32';
const API_HOST = 'api.default.svc.cluster.local';
const ZIPKIN_HOST = 'zipkin.istio-system.svc.cluster.local';

describe(
  'tracing and access logs from MeshConfig and Telemetry, through the control plane',
  { timeout: 120_000 },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-tracing-'));
    const configDir = path.join(dir, 'config');
    const accessLog = path.join(dir, 'access.log');
    let cp: ControlPlane;
    let collector: SpanCollector;
    let app: http.Server;
    const seen: http.IncomingHttpHeaders[] = [];
    const sidecars: MeshSidecar[] = [];
    let apiPort = 0;

    before(async () => {
      fs.mkdirSync(configDir);
      collector = await startSpanCollector();
      app = http.createServer((req, res) => {
        seen.push(req.headers);
        req.resume();
        res.end('api');
      });
      await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
      apiPort = await closedPort();
      const zipkinPort = await closedPort();
      fs.writeFileSync(
        path.join(configDir, 'mesh.yaml'),
        `${meshService({ name: 'api', host: API_HOST, port: apiPort, appPort: (app.address() as AddressInfo).port })}
---
# The collector, outside the mesh: the provider's service resolves through the registry like any other.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zipkin, namespace: istio-system}
spec:
  hosts: [${ZIPKIN_HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: ${zipkinPort}, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${collector.port}}}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: trace-everything, namespace: default}
spec:
  tracing: [{randomSamplingPercentage: 100}]
`,
      );
      cp = new ControlPlane({
        configPaths: [configDir],
        xdsPort: 0,
        debugPort: 0,
        debounceMs: 20,
        stateDir: path.join(dir, 'state'),
        meshConfig: {
          defaultProviders: { tracing: ['zipkin'], accessLogging: ['file'] },
          extensionProviders: [
            { name: 'zipkin', zipkin: { service: ZIPKIN_HOST, port: zipkinPort } },
            { name: 'file', envoyFileAccessLog: { path: accessLog } },
          ],
        },
      });
      const xdsPort = (await cp.start()).xdsPort;
      for (const [name, ip] of [
        ['web', WEB_IP],
        ['api', API_IP],
      ] as const)
        sidecars.push(
          await startSidecar({
            name,
            serviceAccount: name,
            ip,
            labels: `app=${name}`,
            xdsPort,
            stateDir: path.join(dir, 'state'),
            workDir: dir,
          }),
        );
      await waitFor(
        async () => (await call().catch(() => ({ status: 0 }))).status === 200,
        30_000,
        'web → api',
      );
    });

    after(async () => {
      for (const s of sidecars) s.kill();
      await Promise.all(sidecars.map((s) => s.exited));
      await cp?.stop();
      await collector?.close();
      app?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const call = (p = '/'): ReturnType<typeof request> =>
      request(sidecars[0].outbound, { host: WEB_IP, path: p, headers: { host: `${API_HOST}:${apiPort}` } });

    it('reports one trace of a CLIENT span and its SERVER child, and hands the context to the app', async () => {
      const r = await call('/traced?x=1');
      assert.equal(r.status, 200);
      const headers = seen[seen.length - 1];
      const traceparent = String(headers.traceparent);
      const [, traceId, parentId, flags] =
        /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent) ?? [];
      assert.ok(traceId, `traceparent ${traceparent}`);
      assert.equal(flags, '01', 'sampled at the edge (100% in this namespace)');
      assert.equal(headers['x-b3-traceid'], traceId);
      assert.equal(headers['x-b3-sampled'], '1');
      assert.equal(headers['x-envoy-peer-metadata'], undefined, 'peer metadata never reaches the app');

      const spans = await waitFor(
        () => {
          const mine = collector.spans.filter((s) => s.traceId === traceId);
          return mine.length >= 2 ? mine : undefined;
        },
        20_000,
        'both spans at the collector',
      );
      assert.ok(spans);
      assert.equal(spans.length, 2);
      const client = spans.find((s) => s.kind === 'CLIENT');
      const server = spans.find((s) => s.kind === 'SERVER');
      assert.ok(client && server, JSON.stringify(spans));
      assert.equal(server.parentSpanId, client.spanId, 'the callee span is the child of the caller span');
      assert.equal(server.spanId, parentId, "the app's parent is the callee sidecar's span");
      assert.equal(client.parentSpanId, '', 'the caller started the trace');
      assert.match(client.name, /api\.default\.svc\.cluster\.local.*\/traced/);
      assert.equal(client.serviceName, 'web.default');
      assert.equal(server.serviceName, 'api.default');
      assert.equal(server.attributes['http.status_code'], '200');
    });

    it('writes both sidecars’ lines in Istio’s default text format to the MeshConfig’s file', async () => {
      const r = await call('/logged');
      assert.equal(r.status, 200);
      const lines = await waitFor(
        () => {
          const text = fs.existsSync(accessLog) ? fs.readFileSync(accessLog, 'utf8') : '';
          const mine = text.split('\n').filter((l) => l.includes('"GET /logged HTTP/1.1" 200'));
          return mine.length >= 2 ? mine : undefined;
        },
        10_000,
        'two access log lines',
      );
      assert.ok(lines);
      // Istio's default format: `[START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS ...`; the caller's line
      // names the outbound cluster, the callee's the inbound one.
      assert.ok(
        lines.every((l) =>
          /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/logged HTTP\/1\.1" 200 - via_upstream /.test(l),
        ),
      );
      assert.ok(
        lines.some((l) => l.includes(`outbound|${apiPort}||${API_HOST}`)),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.includes(`inbound|${apiPort}||`)),
        lines.join('\n'),
      );
    });
  },
);
