/**
 * `weft up`'s explicit mode, end to end: applications reach their sidecar through the standard proxy
 * variables, and the sidecar's outbound listener (virtualOutbound) serves absolute-form requests and
 * CONNECT tunnels to HTTP, gRPC and TCP services, the hop between the two sidecars staying mutual TLS
 * (STRICT PeerAuthentication, so the server side takes nothing else). Real clients: curl -x, curl -p -x,
 * @grpc/grpc-js with grpc_proxy, and Node's fetch with NODE_USE_ENV_PROXY=1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { curl } from '../support/http.ts';
import { startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { SeenRequest, Upstream } from '../support/servers.ts';

const API_IP = '127.0.0.5';
const WEB_IP = '127.0.0.6';
const WEB_IDENTITY = 'spiffe://cluster.local/ns/default/sa/web';

const bytes = (b: Buffer): Buffer => b;
/** A unary gRPC method on raw bytes: no .proto needed. */
const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: '/weft.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

type EchoMethod = (
  request: Buffer,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  done: (err: grpc.ServiceError | null, out?: Buffer) => void,
) => void;

function serviceEntry(name: string, port: number, protocol: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  workloadSelector: {labels: {app: api}}
---`;
}

describe(
  'explicit proxy: HTTP_PROXY, grpc_proxy and CONNECT through a sidecar pair',
  { timeout: 120_000 },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-explicit-'));
    const configDir = path.join(dir, 'config');
    const stateDir = path.join(dir, 'state');
    const ports = { reviews: 0, ratings: 0, db: 0 };
    let cp: ControlPlane;
    let web: Upstream & { seen: SeenRequest[] };
    let db: Upstream;
    let ratings: grpc.Server;
    const sidecars: MeshSidecar[] = [];
    let proxyUrl = '';

    before(async () => {
      fs.mkdirSync(configDir);
      web = await startHttpUpstream({ name: 'reviews' });
      db = await startTcpUpstream((s) => s.on('data', (d: Buffer) => s.write(`db:${d.toString()}`)));
      ratings = new grpc.Server();
      ratings.addService(ECHO_SERVICE, {
        Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
          const xfcc = String(call.metadata.get('x-forwarded-client-cert')[0] ?? '');
          done(null, Buffer.from(`${call.request.toString()}|${xfcc}`));
        },
      });
      const ratingsApp = await new Promise<number>((resolve, reject) =>
        ratings.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        ),
      );
      ports.reviews = await closedPort();
      ports.ratings = await closedPort();
      ports.db = await closedPort();
      fs.writeFileSync(
        path.join(configDir, 'mesh.yaml'),
        `${serviceEntry('reviews', ports.reviews, 'HTTP')}
${serviceEntry('ratings', ports.ratings, 'GRPC')}
${serviceEntry('db', ports.db, 'TCP')}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - {port: {number: ${ports.reviews}, name: http, protocol: HTTP}, defaultEndpoint: 127.0.0.1:${web.port}}
  - {port: {number: ${ports.ratings}, name: grpc, protocol: GRPC}, defaultEndpoint: 127.0.0.1:${ratingsApp}}
  - {port: {number: ${ports.db}, name: tcp, protocol: TCP}, defaultEndpoint: 127.0.0.1:${db.port}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
`,
      );
      cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20, stateDir });
      const xdsPort = (await cp.start()).xdsPort;
      for (const [name, ip] of [
        ['api', API_IP],
        ['web', WEB_IP],
      ] as const)
        sidecars.push(
          await startSidecar({
            name,
            serviceAccount: name,
            ip,
            labels: `app=${name}`,
            xdsPort,
            stateDir,
            workDir: dir,
          }),
        );
      proxyUrl = `http://${WEB_IP}:${sidecars[1].outbound}`;
      await waitFor(
        async () =>
          (await curl(['-x', proxyUrl, `http://reviews:${ports.reviews}/ready`], 3000)).stdout.includes(
            'reviews',
          ),
        30_000,
        'the mesh',
      );
    });

    after(async () => {
      for (const s of sidecars) s.kill();
      ratings?.forceShutdown();
      await cp?.stop();
      await web?.close();
      await db?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('serves absolute-form requests (curl -x) over mTLS', async () => {
      const r = await curl(['-x', proxyUrl, `http://reviews.default:${ports.reviews}/abs?x=1`]);
      assert.equal(r.code, 0, r.stderr);
      const echoed = JSON.parse(r.stdout) as { url: string; headers: Record<string, string> };
      assert.equal(echoed.url, '/abs?x=1');
      assert.match(echoed.headers['x-forwarded-client-cert'] ?? '', new RegExp(`URI=${WEB_IDENTITY}`));
      assert.equal(echoed.headers['proxy-connection'], undefined);
    });

    it('tunnels HTTP through CONNECT (curl -p -x), still over mTLS', async () => {
      const r = await curl([
        ...['-p', '-x', proxyUrl],
        `http://reviews.default.svc.cluster.local:${ports.reviews}/tunnel`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const echoed = JSON.parse(r.stdout) as { url: string; headers: Record<string, string> };
      assert.equal(echoed.url, '/tunnel');
      assert.match(echoed.headers['x-forwarded-client-cert'] ?? '', new RegExp(`URI=${WEB_IDENTITY}`));
    });

    it('carries a grpc-js call made with grpc_proxy set', async () => {
      const saved = process.env.grpc_proxy;
      process.env.grpc_proxy = proxyUrl;
      const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
      const client = new Client(`ratings:${ports.ratings}`, grpc.credentials.createInsecure());
      try {
        const echoCall = (client as unknown as { Echo: EchoMethod }).Echo.bind(client);
        const reply = await new Promise<Buffer>((resolve, reject) =>
          echoCall(Buffer.from('ping'), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, out) =>
            err ? reject(err) : resolve(out!),
          ),
        );
        const [echo, xfcc] = reply.toString().split('|');
        assert.equal(echo, 'ping');
        assert.match(
          xfcc,
          new RegExp(`URI=${WEB_IDENTITY}`),
          'the server sidecar saw the caller’s certificate',
        );
      } finally {
        client.close();
        if (saved === undefined) delete process.env.grpc_proxy;
        else process.env.grpc_proxy = saved;
      }
    });

    it("serves Node's fetch with NODE_USE_ENV_PROXY=1 and HTTP_PROXY", async () => {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const r = await fetch('http://reviews:${ports.reviews}/fetched'); console.log(r.status, (await r.json()).url);`,
          ],
          {
            env: {
              ...process.env,
              NODE_USE_ENV_PROXY: '1',
              HTTP_PROXY: proxyUrl,
              NO_PROXY: 'localhost,127.0.0.1',
            },
            timeout: 15_000,
          },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
      assert.equal(out.trim(), '200 /fetched');
    });

    it('tunnels raw TCP to a TCP service (with the peer metadata exchange on the mTLS hop)', async () => {
      const s = net.connect(sidecars[1].outbound, WEB_IP);
      s.write(`CONNECT db:${ports.db} HTTP/1.1\r\nHost: db:${ports.db}\r\n\r\n`);
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.endsWith('\r\n\r\n')) s.write('hello');
        if (text.includes('db:hello')) s.end();
      });
      await new Promise<void>((resolve) => s.on('close', () => resolve()));
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(
        text.slice(text.indexOf('\r\n\r\n') + 4),
        'db:hello',
        'no exchange frame leaks into the tunnel',
      );
    });

    it('answers bad CONNECTs (400 without a port, 404 for an unknown host) and keeps serving', async () => {
      const port = sidecars[1].outbound;
      const connect = (target: string): Promise<string> =>
        new Promise((resolve) => {
          const s = net.connect(port, WEB_IP);
          let out = '';
          s.on('data', (d: Buffer) => (out += d.toString()));
          s.on('close', () => resolve(out));
          s.on('error', () => resolve(out));
          s.end(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
          setTimeout(() => s.destroy(), 3000).unref();
        });
      assert.match(await connect('reviews'), /^HTTP\/1\.1 400 /);
      assert.match(await connect(`nowhere:${ports.reviews}`), /^HTTP\/1\.1 404 /);
      assert.match(
        await connect(`reviews:${ports.reviews + 1}`),
        /^HTTP\/1\.1 404 /,
        'a port the service lacks',
      );
      const r = await curl(['-x', proxyUrl, `http://reviews:${ports.reviews}/after`]);
      assert.equal(r.code, 0, r.stderr);
    });
  },
);
