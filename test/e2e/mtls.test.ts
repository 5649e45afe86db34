/**
 * Mutual TLS between sidecars, end to end with every part real: the control plane's CA signs each sidecar's
 * own key (bootstrap tokens), the trust bundle arrives over SDS, auto mTLS picks the mTLS socket for
 * workloads that have a sidecar, PeerAuthentication decides what the inbound side accepts, and
 * AuthorizationPolicy reads the caller's SPIFFE ID. openssl and curl play the outsiders.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { adminStat, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort, startHttp2Upstream, startHttpUpstream } from '../support/servers.ts';
import http2 from 'node:http2';
import { tampered, testSigner } from '../../src/proxy/http/filters/jwt-authn-testing.ts';
import { makeTestPki } from '../../src/proxy/tls/testing.ts';

const API_IP = '127.0.0.2';
const WEB_IP = '127.0.0.3';
const OTHER_IP = '127.0.0.4';
const API_HOST = 'api.default.svc.cluster.local';
const GRPC_HOST = 'grpc.default.svc.cluster.local';
const RPC_HOST = 'rpc.default.svc.cluster.local';

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

function mesh(o: {
  appPort: number;
  ingressPort: number;
  grpcAppPort: number;
  grpcPort: number;
  rpcPort: number;
  extra?: string;
}): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [${API_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${o.ingressPort}, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grpc}
spec:
  hosts: [${GRPC_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${o.grpcPort}, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rpc}
spec:
  hosts: [${RPC_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${o.rpcPort}, name: rpc}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: ${o.ingressPort}, name: http, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:${o.appPort}
  - port: {number: ${o.grpcPort}, name: grpc, protocol: GRPC}
    defaultEndpoint: 127.0.0.1:${o.grpcAppPort}
  - port: {number: ${o.rpcPort}, name: rpc}
    defaultEndpoint: 127.0.0.1:${o.grpcAppPort}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web}
spec:
  workloadSelector: {labels: {app: web}}
  egress:
  - port: {number: ${o.rpcPort}, name: rpc}
    bind: ${WEB_IP}
    hosts: [./${RPC_HOST}]
  - hosts: ['./*']
${o.extra ?? ''}`;
}

describe('mutual TLS between sidecars, from the control plane CA', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mtls-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  let cp: ControlPlane;
  let app: Awaited<ReturnType<typeof startHttpUpstream>>;
  const proxies = new Map<string, MeshSidecar>();
  let settings: {
    appPort: number;
    ingressPort: number;
    grpcAppPort: number;
    grpcPort: number;
    rpcPort: number;
  };
  let grpcApp: Awaited<ReturnType<typeof startHttp2Upstream>>;

  const write = (extra = ''): void =>
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), mesh({ ...settings, extra }));

  async function sidecar(name: string, sa: string, ip: string, labels: string): Promise<void> {
    const p = await startSidecar({ name, serviceAccount: sa, ip, labels, xdsPort, stateDir, workDir: dir });
    proxies.set(name, p);
  }

  const stat = (name: string, key: string): Promise<number> => adminStat(proxies.get(name)!, key);

  /** GET http://api/ through a client sidecar's outbound listener. */
  const viaMesh = (client: string, p = '/'): ReturnType<typeof request> => {
    const c = proxies.get(client)!;
    const ip = client === 'web' ? WEB_IP : OTHER_IP;
    return request(c.outbound, {
      host: ip,
      path: p,
      headers: { host: `${API_HOST}:${settings.ingressPort}` },
    });
  };

  let xdsPort = 0;

  before(async () => {
    fs.mkdirSync(configDir);
    app = await startHttpUpstream({ name: 'api' });
    // A gRPC-shaped h2c app: every call answered with grpc-status 0 and the caller's identity.
    grpcApp = await startHttp2Upstream((stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from(String(headers['x-forwarded-client-cert'] ?? '')));
    });
    settings = {
      appPort: app.port,
      ingressPort: await closedPort(),
      grpcAppPort: grpcApp.port,
      grpcPort: await closedPort(),
      rpcPort: await closedPort(),
    };
    write();
    cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20, stateDir });
    xdsPort = (await cp.start()).xdsPort;
    await sidecar('api', 'api', API_IP, 'app=api');
    await sidecar('web', 'web', WEB_IP, 'app=web');
    await sidecar('other', 'other', OTHER_IP, 'app=other');
    for (const client of ['web', 'other'])
      await waitFor(
        async () => (await viaMesh(client)).status === 200,
        30_000,
        `${client} → api through the mesh`,
      );
  });

  after(async () => {
    for (const p of proxies.values()) p.kill();
    await Promise.all([...proxies.values()].map((p) => p.exited));
    await cp?.stop();
    await app?.close();
    await grpcApp?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('calls between sidecars go over mTLS, and the app learns its caller from x-forwarded-client-cert', async () => {
    const before = await stat('api', `listener.${API_IP}_${settings.ingressPort}.ssl.handshake`);
    const r = await viaMesh('web', '/who');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    const xfcc = seen.headers['x-forwarded-client-cert'] ?? '';
    assert.match(xfcc, /By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/api/);
    assert.match(xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
    assert.ok((await stat('api', `listener.${API_IP}_${settings.ingressPort}.ssl.handshake`)) >= before);
    assert.ok(
      (await stat('web', `cluster.outbound|${settings.ingressPort}||${API_HOST}.ssl.handshake`)) >= 1,
    );
  });

  it('admin /certs lists the workload certificate and the trust bundle once, however many clusters use them', async () => {
    const r = await request(proxies.get('web')!.admin, { path: '/certs' });
    const certs = (
      JSON.parse(r.body) as {
        certificates: {
          ca_cert: { path: string }[];
          cert_chain: {
            path: string;
            subject_alt_names: { uri?: string }[];
            days_until_expiration: string;
          }[];
        }[];
      }
    ).certificates;
    const chains = certs.flatMap((c) => c.cert_chain);
    assert.deepEqual(
      chains.map((c) => [c.path, c.subject_alt_names]),
      [['secret:default', [{ uri: 'spiffe://cluster.local/ns/default/sa/web' }]]],
    );
    assert.match(chains[0].days_until_expiration, /^\d+$/);
    assert.deepEqual(
      certs.flatMap((c) => c.ca_cert.map((ca) => ca.path)),
      ['secret:ROOTCA'],
    );
  });

  it('PERMISSIVE (the default) also takes plaintext on the same port', async () => {
    const r = await request(settings.ingressPort, { host: API_IP, path: '/plain' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-forwarded-client-cert'], undefined);
  });

  it('an outsider with a certificate from another CA is refused at the handshake', async () => {
    const key = path.join(dir, 'rogue.key');
    const crt = path.join(dir, 'rogue.crt');
    const made = await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '1',
      '-subj',
      '/O=rogue',
      '-addext',
      'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/web',
    ]);
    assert.equal(made.code, 0, made.out);
    const r = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `${API_IP}:${settings.ingressPort}`,
        '-cert',
        crt,
        '-key',
        key,
        '-alpn',
        'http/1.1',
        '-quiet',
      ],
      'GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n',
    );
    assert.doesNotMatch(r.out, /HTTP\/1\.1 200/);
    assert.match(r.out, /alert|error/i);
  });

  it('STRICT refuses plaintext, and openssl s_client sees the proxy demand a client certificate', async () => {
    write(`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
`);
    await waitFor(
      async () => {
        try {
          await request(settings.ingressPort, { host: API_IP, path: '/plain' });
          return false;
        } catch {
          return true;
        }
      },
      15_000,
      'plaintext to be refused',
    );
    assert.equal((await viaMesh('web')).status, 200);
    // Without a client certificate: the server asks for one (CertificateRequest), and nothing is served.
    const r = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `${API_IP}:${settings.ingressPort}`,
        '-alpn',
        'http/1.1',
        '-state',
        '-ign_eof',
      ],
      'GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n',
    );
    assert.match(r.out, /read server certificate request/);
    assert.doesNotMatch(r.out, /HTTP\/1\.1 200/);
  });

  it('AuthorizationPolicy allows a caller by its SPIFFE ID and denies the others with 403', async () => {
    write(`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/web]}}]
`);
    await waitFor(async () => (await viaMesh('other')).status === 403, 15_000, 'the policy to apply');
    const denied = await viaMesh('other');
    assert.equal(denied.body, 'RBAC: access denied');
    assert.equal((await viaMesh('web')).status, 200);
  });

  it('a caller that expects another identity for the service refuses the server (503, UF)', async () => {
    write(`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: ${API_HOST}
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/not-api]}
`);
    await waitFor(async () => (await viaMesh('web')).status === 503, 15_000, 'the SAN check to fail');
    assert.ok(
      (await stat('web', `cluster.outbound|${settings.ingressPort}||${API_HOST}.ssl.fail_verify_san`)) >= 1,
    );
    write();
    await waitFor(async () => (await viaMesh('web')).status === 200, 15_000, 'the default again');
  });

  it('RequestAuthentication (JWKS fetched by the control plane) and requestPrincipals: 200, 401 or 403', async () => {
    const signer = await testSigner();
    const jwksServer = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(signer.jwks);
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    try {
      write(`---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  jwtRules: [{issuer: https://issuer.example, audiences: [api], jwksUri: ${jwksUri}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules: [{from: [{source: {requestPrincipals: [https://issuer.example/alice]}}]}]
`);
      const claims = { iss: 'https://issuer.example', sub: 'alice', aud: 'api' };
      const good = await signer.sign(claims);
      const withToken = (token: string): ReturnType<typeof request> =>
        request(proxies.get('web')!.outbound, {
          host: WEB_IP,
          path: '/jwt',
          headers: { host: `${API_HOST}:${settings.ingressPort}`, authorization: `Bearer ${token}` },
        });
      await waitFor(async () => (await viaMesh('web')).status === 403, 15_000, 'the policies to apply');
      // Until the control plane has fetched the keys, tokens fail closed (401); then they verify.
      await waitFor(
        async () => (await withToken(good)).status === 200,
        15_000,
        'the JWKS fetched and pushed',
      );
      const seen = JSON.parse((await withToken(good)).body) as { headers: Record<string, string> };
      assert.equal(seen.headers.authorization, undefined, 'the token is not forwarded to the app');
      // No token: no request principal, so the ALLOW policy does not match (checked above: 403).
      const bad = [
        ['tampered', tampered(good, { sub: 'mallory' })],
        ['expired', await signer.sign(claims, { expiresInSec: -120 })],
        ['wrong audience', await signer.sign({ ...claims, aud: 'billing' })],
        ['another signer', await (await testSigner('k2')).sign(claims)],
      ] as const;
      for (const [what, token] of bad) {
        const r = await withToken(token);
        assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
      }
      const bob = await signer.sign({ ...claims, sub: 'bob' });
      assert.equal((await withToken(bob)).status, 403, 'a valid token of another principal');
    } finally {
      write();
      jwksServer.close();
    }
  });

  it('originates SIMPLE and MUTUAL TLS to external services from DestinationRule files; a wrong CA is refused', async () => {
    const pki = await makeTestPki();
    const serve = async (mutual: boolean): Promise<https.Server> => {
      const server = https.createServer(
        {
          cert: fs.readFileSync(pki.server.certFile),
          key: fs.readFileSync(pki.server.keyFile),
          ...(mutual ? { ca: fs.readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: true } : {}),
        },
        (req, res) => {
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`tls ${mutual ? `client=${peer.subjectaltname ?? 'none'}` : 'simple'}`);
        },
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return server;
    };
    const simple = await serve(false);
    const mutual = await serve(true);
    const port = (server: https.Server): number => (server.address() as AddressInfo).port;
    const external = (name: string, server: https.Server, tls: string): string => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}}
spec:
  hosts: [${name}.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${port(server)}}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${name}.example.com
  trafficPolicy: {tls: ${tls}}
`;
    const call = (name: string): ReturnType<typeof request> =>
      request(proxies.get('web')!.outbound, {
        host: WEB_IP,
        path: '/',
        headers: { host: `${name}.example.com` },
      });
    try {
      write(
        external(
          'simple',
          simple,
          `{mode: SIMPLE, caCertificates: ${pki.caFile}, sni: localhost, subjectAltNames: [localhost]}`,
        ) +
          external(
            'mutual',
            mutual,
            `{mode: MUTUAL, caCertificates: ${pki.caFile}, clientCertificate: ${pki.client.certFile}, privateKey: ${pki.client.keyFile}, sni: localhost}`,
          ) +
          external('wrongca', simple, `{mode: SIMPLE, caCertificates: ${pki.otherCaFile}, sni: localhost}`),
      );
      await waitFor(async () => (await call('simple')).status === 200, 15_000, 'TLS origination');
      assert.equal((await call('simple')).body, 'tls simple');
      const m = await call('mutual');
      assert.equal(m.status, 200);
      assert.equal(m.body, 'tls client=URI:spiffe://cluster.local/ns/default/sa/client');
      const wrong = await call('wrongca');
      assert.equal(wrong.status, 503);
      assert.match(wrong.body, /connection failure|TLS|certificate/i);
    } finally {
      write();
      simple.close();
      mutual.close();
    }
  });

  it('a per-principal rate limit counts each caller by its verified SPIFFE ID, not by a header it sends', async () => {
    write(`---
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  local:
    perClient: {key: {principal: {}}, requestsPerUnit: 2, unit: HOUR}
`);
    try {
      const forged = { 'x-forwarded-client-cert': 'By=x;URI=spiffe://cluster.local/ns/default/sa/other' };
      const call = (client: string, headers: Record<string, string> = {}): Promise<number> =>
        request(proxies.get(client)!.outbound, {
          host: client === 'web' ? WEB_IP : OTHER_IP,
          path: '/limited',
          headers: { host: `${API_HOST}:${settings.ingressPort}`, ...headers },
        }).then((r) => r.status);
      await waitFor(async () => (await call('web')) === 429, 15_000, "web's limit");
      // web claims to be `other` in the header: still counted as web.
      assert.equal(await call('web', forged), 429);
      // other has its own two.
      assert.deepEqual([await call('other'), await call('other'), await call('other')], [200, 200, 429]);
    } finally {
      write();
    }
  });

  /** One gRPC-shaped call to `authority` through the web sidecar's outbound listener, over h2c. */
  function grpcCall(
    session: http2.ClientHttp2Session,
    authority: string,
  ): Promise<{ status: string; grpc: string; body: string }> {
    return new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': '/demo.Echo/Say',
        ':authority': authority,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status = '';
      let grpc = '';
      let body = '';
      req.on('response', (h) => {
        status = String(h[':status']);
        grpc = String(h['grpc-status'] ?? '');
      });
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('trailers', (t) => (grpc = String(t['grpc-status'])));
      req.on('end', () => resolve({ status, grpc, body }));
      req.on('error', reject);
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  }

  it('gRPC on a port with no declared protocol stays HTTP/2 over mTLS, to the application too', async () => {
    // Through the web sidecar's egress listener for that port, which sniffs the protocol.
    const session = http2.connect(`http://${WEB_IP}:${settings.rpcPort}`);
    try {
      const r = await waitFor(
        async () => {
          const got = await grpcCall(session, `${RPC_HOST}:${settings.rpcPort}`);
          return got.grpc === '0' ? got : null;
        },
        30_000,
        'the rpc service to route',
      );
      // An HTTP/1.1 hop anywhere would have lost the trailers (and the h2c app would not have answered).
      assert.ok(r);
      assert.deepEqual([r.status, r.grpc], ['200', '0']);
      assert.match(r.body, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
      assert.ok((await stat('web', `cluster.outbound|${settings.rpcPort}||${RPC_HOST}.ssl.handshake`)) >= 1);
    } finally {
      session.close();
    }
  });

  it('gRPC between sidecars: HTTP/2 over mTLS, negotiated by ALPN', async () => {
    const web = proxies.get('web')!;
    const session = http2.connect(`http://${WEB_IP}:${web.outbound}`);
    try {
      const call = (): Promise<{ status: string; grpc: string; body: string }> =>
        new Promise((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/demo.Echo/Say',
            ':authority': `${GRPC_HOST}:${settings.grpcPort}`,
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = '';
          let body = '';
          req.on('response', (h) => (status = String(h[':status'])));
          req.on('data', (d: Buffer) => (body += d.toString()));
          req.on('trailers', (t) => resolve({ status, grpc: String(t['grpc-status']), body }));
          req.on('error', reject);
          req.end(Buffer.from([0, 0, 0, 0, 0]));
        });
      const r = await call();
      assert.deepEqual([r.status, r.grpc], ['200', '0']);
      assert.match(r.body, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
      // The hop between the proxies was HTTP/2 (ALPN h2) over TLS.
      assert.ok(
        (await stat('api', `http.inbound_${API_IP}_${settings.grpcPort}.downstream_rq_http2_total`)) >= 1,
      );
      assert.ok(
        (await stat('web', `cluster.outbound|${settings.grpcPort}||${GRPC_HOST}.ssl.handshake`)) >= 1,
      );
    } finally {
      session.close();
    }
  });
});
