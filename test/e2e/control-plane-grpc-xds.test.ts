/**
 * Proof with a client nobody here wrote: @grpc/grpc-js-xds resolves `xds:///echo.default.svc.cluster.local:7070`
 * from Weft's control plane and follows Istio VirtualServices/DestinationRules: a header-match route, an 80/20
 * split, a fault-injection abort, a retry policy, and a change written to the config directory while it runs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { REPO, waitFor } from '../support/proxy.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(
    m: Msg,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: Msg) => void,
  ): void;
};

const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const Echo = (
  grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } }
).weft.test.Echo;

/** A gRPC server that answers with its name; `flaky` fails every other call with UNAVAILABLE. */
async function startEcho(
  name: string,
  flaky = false,
): Promise<{ port: number; calls: () => number; server: grpc.Server }> {
  let calls = 0;
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls++;
      if (flaky && calls % 2 === 1) {
        cb({ code: grpc.status.UNAVAILABLE, details: `${name} is flaky` });
        return;
      }
      cb(null, { text: name, n: call.request.n });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, calls: () => calls, server };
}

function mesh(ports: { v1: number; v2: number; flaky: number }, split: { v1: number; v2: number }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 7070, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1}
spec: {address: 127.0.0.1, ports: {grpc: ${ports.v1}}, labels: {app: echo, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v2}
spec: {address: 127.0.0.1, ports: {grpc: ${ports.v2}}, labels: {app: echo, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-flaky}
spec: {address: 127.0.0.1, ports: {grpc: ${ports.flaky}}, labels: {app: echo, version: flaky}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: flaky, labels: {version: flaky}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{headers: {x-scenario: {exact: abort}}}]
    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
    route: [{destination: {host: echo, subset: v1}}]
  - match: [{headers: {x-scenario: {exact: retry}}}]
    retries: {attempts: 3, retryOn: unavailable}
    route: [{destination: {host: echo, subset: flaky}}]
  - match: [{headers: {x-scenario: {exact: no-retry}}}]
    retries: {attempts: 0}
    route: [{destination: {host: echo, subset: flaky}}]
  - route:
    - {destination: {host: echo, subset: v1}, weight: ${split.v1}}
    - {destination: {host: echo, subset: v2}, weight: ${split.v2}}
`;
}

describe(
  'gRPC proxyless clients (@grpc/grpc-js-xds) against the Weft control plane',
  { timeout: 90_000 },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-grpc-xds-'));
    let cp: ControlPlane;
    let client: EchoClient;
    const servers: Awaited<ReturnType<typeof startEcho>>[] = [];
    let ports: { v1: number; v2: number; flaky: number };

    const call = (headers: Record<string, string> = {}): Promise<{ text?: string; code: number }> =>
      new Promise((resolve) => {
        const md = new grpc.Metadata();
        for (const [k, v] of Object.entries(headers)) md.set(k, v);
        client.Unary({ text: 'hi', n: 1 }, md, { deadline: Date.now() + 5000 }, (err, res) =>
          resolve(err ? { code: err.code } : { text: res?.text, code: grpc.status.OK }),
        );
      });

    before(async () => {
      const [v1, v2, flaky] = await Promise.all([startEcho('v1'), startEcho('v2'), startEcho('flaky', true)]);
      servers.push(v1, v2, flaky);
      ports = { v1: v1.port, v2: v2.port, flaky: flaky.port };
      fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(ports, { v1: 80, v2: 20 }));
      cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
      const { xdsPort } = await cp.start();
      // The bootstrap gRPC's xDS client reads; set before the first xds: channel is created.
      process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
        xds_servers: [
          {
            server_uri: `127.0.0.1:${xdsPort}`,
            channel_creds: [{ type: 'insecure' }],
            server_features: ['xds_v3'],
          },
        ],
        node: {
          id: 'grpc-test-client',
          metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' },
          locality: { zone: 'z1' },
        },
      });
      const xds = await import('@grpc/grpc-js-xds');
      xds.register();
      client = new Echo(
        'xds:///echo.default.svc.cluster.local:7070',
        grpc.credentials.createInsecure(),
      ) as unknown as EchoClient;
    });

    after(async () => {
      client?.close();
      for (const s of servers) s.server.forceShutdown();
      await cp?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('resolves the service from xDS and calls an endpoint', async () => {
      const first = await call();
      assert.equal(first.code, grpc.status.OK);
      assert.ok(first.text === 'v1' || first.text === 'v2', String(first.text));
      const status = cp.ads.status();
      assert.ok(status.some((s) => s.node.id === 'grpc-test-client'));
    });

    it('follows a header-match route', async () => {
      for (let i = 0; i < 20; i++) assert.equal((await call({ 'x-version': 'v2' })).text, 'v2');
    });

    it('splits traffic 80/20 between subsets', async () => {
      const counts = { v1: 0, v2: 0 };
      const n = 400;
      for (let i = 0; i < n; i++) {
        const r = await call();
        assert.equal(r.code, grpc.status.OK);
        counts[r.text as 'v1' | 'v2']++;
      }
      // Binomial(400, 0.8): standard deviation 2%; [70%, 90%] is five of them either side.
      assert.ok(counts.v1 / n > 0.7 && counts.v1 / n < 0.9, JSON.stringify(counts));
    });

    it('applies a fault-injection abort', async () => {
      const before = servers[0].calls();
      for (let i = 0; i < 10; i++)
        assert.equal((await call({ 'x-scenario': 'abort' })).code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(servers[0].calls(), before, 'aborted calls never reach the server');
    });

    it('retries per the VirtualService retry policy, and not when attempts is 0', async () => {
      const flaky = servers[2];
      const start = flaky.calls();
      for (let i = 0; i < 10; i++) assert.equal((await call({ 'x-scenario': 'retry' })).code, grpc.status.OK);
      assert.equal(flaky.calls() - start, 20, 'each call failed once and was retried once');
      const results: number[] = [];
      for (let i = 0; i < 10; i++) results.push((await call({ 'x-scenario': 'no-retry' })).code);
      assert.equal(
        results.filter((c) => c === (grpc.status.UNAVAILABLE as number)).length,
        5,
        JSON.stringify(results),
      );
    });

    it('follows a change to the config directory (split moved to 0/100)', async () => {
      fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh(ports, { v1: 0, v2: 100 }));
      // Under the old 80/20 split, 20 v2 answers in a row happen with probability 0.2^20.
      const twentyV2 = async (): Promise<boolean> => {
        for (let i = 0; i < 20; i++) if ((await call()).text !== 'v2') return false;
        return true;
      };
      await waitFor(twentyV2, 15_000, 'all traffic on v2');
      for (let i = 0; i < 30; i++) assert.equal((await call()).text, 'v2');
    });
  },
);
