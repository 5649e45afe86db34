/**
 * Istio Gateway TLS servers through a real Weft gateway driven by the Weft control plane: SIMPLE termination
 * for two hosts on one port (each with its own certificate, picked by SNI), MUTUAL on the same port (a client
 * certificate required and checked), httpsRedirect on the HTTP port, and PASSTHROUGH by SNI to a TLS
 * upstream whose own certificate the client sees; an SNI no route names is refused.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { curl } from '../support/http.ts';
import { spawnWeftProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';

interface Cert {
  cert: string;
  key: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(dir: string, name: string): string {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  return path.join(dir, `${name}.key`);
}

function makeCa(dir: string, name: string): Cert {
  const key = newKey(dir, name);
  openssl(dir, [
    ...['req', '-x509', '-new', '-key', key, '-subj', `/O=weft/CN=${name}`, '-days', '2'],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ...['-out', `${name}.pem`],
  ]);
  return { cert: path.join(dir, `${name}.pem`), key };
}

/** A leaf certificate with CN and DNS SAN `dnsName`. */
function makeLeaf(dir: string, name: string, dnsName: string, ca: Cert): Cert {
  const key = newKey(dir, name);
  openssl(dir, ['req', '-new', '-key', key, '-subj', `/O=weft/CN=${dnsName}`, '-out', `${name}.csr`]);
  fs.writeFileSync(
    path.join(dir, `${name}.ext`),
    `subjectAltName=DNS:${dnsName}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  openssl(dir, [
    ...['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', '0x01'],
    ...['-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
  ]);
  return { cert: path.join(dir, `${name}.pem`), key };
}

/** The subject of the certificate a TLS server presents for `servername`. */
function peerSubject(port: number, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername],
      { timeout: 10_000 },
      (_err, stdout) => resolve(/^subject=(.*)$/m.exec(stdout)?.[1] ?? ''),
    );
    child.stdin?.end('');
  });
}

describe('Gateway TLS servers through a Weft gateway', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-gw-tls-'));
  const configDir = path.join(dir, 'config');
  let cp: ControlPlane;
  let gateway: ProxyProcess | undefined;
  let web: Upstream;
  let tlsUpstream: https.Server;
  const ports = { http: 0, https: 0, tls: 0 };
  const ca = { gateway: '', upstream: '' };
  let client: Cert;
  let strangerClient: Cert;

  const get = (host: string, port: number, extra: string[] = [], caFile = ca.gateway) =>
    curl(
      [
        ...['--cacert', caFile, '--resolve', `${host}:${port}:127.0.0.1`],
        ...['-w', '\n%{http_code}', ...extra, `https://${host}:${port}/`],
      ],
      10_000,
    );

  before(async () => {
    fs.mkdirSync(configDir);
    const gwCa = makeCa(dir, 'gateway-ca');
    const upCa = makeCa(dir, 'upstream-ca');
    ca.gateway = gwCa.cert;
    ca.upstream = upCa.cert;
    const a = makeLeaf(dir, 'a', 'a.example.com', gwCa);
    const b = makeLeaf(dir, 'b', 'b.example.com', gwCa);
    const m = makeLeaf(dir, 'm', 'mtls.example.com', gwCa);
    client = makeLeaf(dir, 'client', 'client.example.com', gwCa);
    strangerClient = makeLeaf(dir, 'stranger', 'stranger.example.com', gwCa);
    const secure = makeLeaf(dir, 'secure', 'secure.example.com', upCa);

    web = await startHttpUpstream({ name: 'web' });
    tlsUpstream = https.createServer(
      { cert: fs.readFileSync(secure.cert), key: fs.readFileSync(secure.key) },
      (_req, res) => res.end('secure upstream'),
    );
    await new Promise<void>((r) => tlsUpstream.listen(0, '127.0.0.1', r));
    const tlsPort = (tlsUpstream.address() as AddressInfo).port;
    ports.http = await closedPort();
    ports.https = await closedPort();
    ports.tls = await closedPort();
    const files = (c: Cert): string => `serverCertificate: ${c.cert}, privateKey: ${c.key}`;
    fs.writeFileSync(
      path.join(configDir, 'mesh.yaml'),
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${web.port}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 127.0.0.1, ports: {tls: ${tlsPort}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${ports.http}, name: http, protocol: HTTP}
    hosts: [a.example.com]
    tls: {httpsRedirect: true}
  - port: {number: ${ports.https}, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, ${files(a)}}
  - port: {number: ${ports.https}, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, ${files(b)}, minProtocolVersion: TLSV1_2}
  - port: {number: ${ports.https}, name: https-mtls, protocol: HTTPS}
    hosts: [mtls.example.com]
    tls: {mode: MUTUAL, ${files(m)}, caCertificates: ${gwCa.cert}, subjectAltNames: [client.example.com]}
  - port: {number: ${ports.tls}, name: tls, protocol: TLS}
    hosts: ['*.example.com']
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sites, namespace: istio-system}
spec:
  hosts: [a.example.com, b.example.com, mtls.example.com]
  gateways: [ingress]
  http:
  - route: [{destination: {host: web.default.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: istio-system}
spec:
  hosts: [secure.example.com]
  gateways: [ingress]
  tls:
  - match: [{port: ${ports.tls}, sniHosts: [secure.example.com]}]
    route: [{destination: {host: secure.example.com, port: {number: 443}}}]
`,
    );
    cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20 });
    const started = await cp.start();
    gateway = spawnWeftProxy([
      ...['--xds-address', `127.0.0.1:${started.xdsPort}`],
      ...['--admin-port', String(await closedPort()), '--prometheus-port', '0', '--health-port', '0'],
      ...['--type', 'router', '--name', 'ingress-1', '--namespace', 'istio-system', '--ip', '127.0.0.1'],
      ...['--labels', 'istio=ingressgateway', '--metadata', 'WEFT_GATEWAY_BIND=127.0.0.1'],
    ]);
    await waitFor(
      async () => (await get('a.example.com', ports.https)).stdout.endsWith('\n200'),
      20_000,
      'the gateway to serve https',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${gateway?.output() ?? ''}`);
    });
    await waitFor(
      async () => (await get('secure.example.com', ports.tls, [], ca.upstream)).stdout.endsWith('\n200'),
      20_000,
      'the gateway to pass TLS through',
    );
  });

  after(async () => {
    gateway?.kill();
    await gateway?.exited;
    await cp?.stop();
    await web?.close();
    tlsUpstream?.closeAllConnections();
    await new Promise<void>((r) => (tlsUpstream ? tlsUpstream.close(() => r()) : r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('terminates TLS for two hosts on one port, each with its own certificate', async () => {
    for (const host of ['a.example.com', 'b.example.com']) {
      const r = await get(host, ports.https);
      assert.equal(r.code, 0, r.stderr);
      const [body, status] = r.stdout.split('\n');
      assert.equal(status, '200');
      const echoed = JSON.parse(body) as { name: string; headers: Record<string, string> };
      assert.equal(echoed.name, 'web');
      assert.equal(echoed.headers['x-forwarded-proto'], 'https');
      assert.match(await peerSubject(ports.https, host), new RegExp(`CN ?= ?${host.replaceAll('.', '\\.')}`));
    }
  });

  it('speaks HTTP/2 to clients that offer it (ALPN)', async () => {
    const r = await curl([
      ...['--cacert', ca.gateway, '--resolve', `b.example.com:${ports.https}:127.0.0.1`, '--http2'],
      ...['-o', '/dev/null', '-w', '%{http_code} %{http_version}', `https://b.example.com:${ports.https}/`],
    ]);
    assert.equal(r.stdout, '200 2', r.stderr);
  });

  it('refuses a MUTUAL server client without a certificate or with the wrong SAN, accepts a trusted one', async () => {
    const bare = await get('mtls.example.com', ports.https);
    assert.notEqual(bare.code, 0, `no certificate should fail, got ${bare.stdout}`);
    const stranger = await get('mtls.example.com', ports.https, [
      ...['--cert', strangerClient.cert, '--key', strangerClient.key],
    ]);
    assert.notEqual(stranger.code, 0, `a SAN outside subjectAltNames should fail, got ${stranger.stdout}`);
    const ok = await get('mtls.example.com', ports.https, ['--cert', client.cert, '--key', client.key]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.endsWith('\n200'), ok.stdout);
  });

  it('redirects plain HTTP to https for an httpsRedirect server', async () => {
    const r = await curl([
      ...['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}'],
      ...['-H', 'host: a.example.com', `http://127.0.0.1:${ports.http}/some/path`],
    ]);
    const [status, location] = r.stdout.split(' ');
    assert.equal(status, '301', r.stderr);
    assert.match(location, /^https:\/\/a\.example\.com(:\d+)?\/some\/path$/);
  });

  it("passes TLS through by SNI: the client sees the upstream's own certificate", async () => {
    const r = await get('secure.example.com', ports.tls, [], ca.upstream);
    assert.equal(r.stdout, 'secure upstream\n200', r.stderr);
    assert.match(await peerSubject(ports.tls, 'secure.example.com'), /CN ?= ?secure\.example\.com/);
    // The gateway's CA does not vouch for the upstream: nothing on the way re-terminated the TLS.
    const withGatewayCa = await get('secure.example.com', ports.tls);
    assert.notEqual(withGatewayCa.code, 0);
  });

  it('refuses an SNI no tls route names', async () => {
    const r = await get('unknown.example.com', ports.tls, [], ca.upstream);
    assert.notEqual(r.code, 0, `expected a refused handshake, got ${r.stdout}`);
    assert.equal(await peerSubject(ports.tls, 'unknown.example.com'), '');
  });
});
