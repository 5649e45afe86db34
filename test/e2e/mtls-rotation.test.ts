/**
 * Certificate rotation under steady load, with every part real: workload certificates live a minute and
 * the sidecars renew them at about half-life while requests keep flowing between them (new upstream
 * connections all the time: maxRequestsPerConnection), then the operator rotates the root — the old root is
 * trusted beside the new one (the overlap), the plug-in CA files are replaced, the control plane reloads
 * them and pushes the new trust bundle, and the sidecars move to certificates of the new root. Not one
 * request may fail.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { request } from '../support/http.ts';
import { adminStat, meshService, startSidecar } from '../support/mesh.ts';
import type { MeshSidecar } from '../support/mesh.ts';
import { waitFor } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';

const API_IP = '127.0.0.2';
const WEB_IP = '127.0.0.3';
const API_HOST = 'api.default.svc.cluster.local';
const LIFETIME_MS = 60_000;

/** A self-signed P-256 CA in Istio's plug-in layout (the root signs directly). */
function makeRoot(dir: string, name: string): { cert: string; key: string } {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', key, '-out', cert, '-days', '2', '-subj', `/O=${name}/CN=${name} root`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  return { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8') };
}

/** Replaces a file the way an operator's tooling does: write beside it, then rename over it. */
function replace(file: string, text: string): void {
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
}

/** The server certificate a fresh TLS connection to host:port is shown: its serial and issuer. */
function peerCertificate(host: string, port: number): Promise<{ serial: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'sh',
      [
        '-c',
        `openssl s_client -connect ${host}:${port} -alpn http/1.1 </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer`,
      ],
      { timeout: 10_000 },
      (err, stdout) => {
        if (err) return reject(new Error(`openssl: ${err.message}`));
        const serial = /serial=(\S+)/.exec(stdout)?.[1];
        const issuer = /issuer=(.+)/.exec(stdout)?.[1];
        if (!serial || !issuer) return reject(new Error(`no certificate: ${stdout}`));
        resolve({ serial, issuer });
      },
    );
    child.stdin?.end();
  });
}

describe('certificate and root rotation under steady load', { timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rotation-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  const pluginDir = path.join(dir, 'cacerts');
  const extraRoots = path.join(dir, 'extra-roots.pem');
  let cp: ControlPlane;
  let app: Awaited<ReturnType<typeof startHttpUpstream>>;
  let api: MeshSidecar;
  let web: MeshSidecar;
  let ingressPort = 0;
  const load = { ok: 0, failed: [] as string[], running: true, done: Promise.resolve() };

  const issued = async (p: MeshSidecar): Promise<number> => adminStat(p, 'agent.certificate.issued');

  before(async () => {
    fs.mkdirSync(configDir);
    const rootA = makeRoot(path.join(dir, 'a'), 'operator-a');
    fs.mkdirSync(pluginDir);
    for (const [file, text] of [
      ['ca-key.pem', rootA.key],
      ['ca-cert.pem', rootA.cert],
      ['root-cert.pem', rootA.cert],
    ])
      fs.writeFileSync(path.join(pluginDir, file), text);
    fs.writeFileSync(extraRoots, '');
    app = await startHttpUpstream({ name: 'api' });
    ingressPort = await closedPort();
    fs.writeFileSync(
      path.join(configDir, 'mesh.yaml'),
      `${meshService({ name: 'api', host: API_HOST, port: ingressPort, appPort: app.port })}---
# New upstream connections (and handshakes) all the time, not one connection for the whole test.
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: ${API_HOST}
  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 10}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
`,
    );
    cp = new ControlPlane({
      configPaths: [configDir],
      xdsPort: 0,
      debugPort: 0,
      debounceMs: 20,
      stateDir,
      caPluginDir: pluginDir,
      extraTrustedRootsFile: extraRoots,
      workloadCertTtlMs: LIFETIME_MS,
      caReloadIntervalMs: 300,
    });
    const { xdsPort } = await cp.start();
    const common = { xdsPort, stateDir, workDir: dir };
    api = await startSidecar({
      name: 'api',
      serviceAccount: 'api',
      ip: API_IP,
      labels: 'app=api',
      ...common,
    });
    web = await startSidecar({
      name: 'web',
      serviceAccount: 'web',
      ip: WEB_IP,
      labels: 'app=web',
      ...common,
    });
    const call = (): ReturnType<typeof request> =>
      request(web.outbound, { host: WEB_IP, path: '/', headers: { host: `${API_HOST}:${ingressPort}` } });
    await waitFor(async () => (await call()).status === 200, 30_000, 'web → api over mTLS');
    // Steady load: four clients, back to back with a short pause, until the tests are over.
    const worker = async (): Promise<void> => {
      while (load.running) {
        try {
          const r = await call();
          if (r.status === 200) load.ok++;
          else load.failed.push(`${r.status} ${r.body.slice(0, 120)}`);
        } catch (err) {
          load.failed.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    load.done = Promise.all([worker(), worker(), worker(), worker()]).then(() => undefined);
  });

  after(async () => {
    load.running = false;
    await load.done;
    for (const p of [api, web]) p?.kill();
    await Promise.all([api?.exited, web?.exited]);
    await cp?.stop();
    await app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('renews one-minute certificates at about half-life, twice, with no failed request', async () => {
    const first = await peerCertificate(API_IP, ingressPort);
    const okBefore = load.ok;
    await waitFor(
      async () => (await issued(api)) >= 3 && (await issued(web)) >= 3,
      100_000,
      'two renewals on each sidecar',
    );
    const now = await peerCertificate(API_IP, ingressPort);
    assert.notEqual(now.serial, first.serial, 'a new connection is shown the renewed certificate');
    assert.ok(load.ok - okBefore > 500, `requests kept flowing: ${load.ok - okBefore}`);
    assert.deepEqual(load.failed, []);
  });

  it('rotates the root with an overlap: trust both, switch the CA, then drop the old root', async () => {
    const rootB = makeRoot(path.join(dir, 'b'), 'operator-b');
    // 1. Every proxy trusts the old root beside the current one (here: the same, until the switch).
    replace(extraRoots, fs.readFileSync(path.join(pluginDir, 'root-cert.pem'), 'utf8'));
    // 2. The CA switches to the new root; the bundle becomes new + old.
    const [apiBefore, webBefore] = [await issued(api), await issued(web)];
    replace(path.join(pluginDir, 'ca-key.pem'), rootB.key);
    replace(path.join(pluginDir, 'ca-cert.pem'), rootB.cert);
    replace(path.join(pluginDir, 'root-cert.pem'), rootB.cert);
    // 3. Each sidecar renews from the new root at its next half-life; old and new certificates meet meanwhile.
    await waitFor(
      async () => (await issued(api)) > apiBefore && (await issued(web)) > webBefore,
      60_000,
      'a renewal from the new root on each sidecar',
    );
    assert.match((await peerCertificate(API_IP, ingressPort)).issuer, /operator-b/);
    // 4. The old root is no longer needed.
    const okBefore = load.ok;
    replace(extraRoots, '');
    await waitFor(() => load.ok - okBefore > 200, 30_000, 'requests after dropping the old root');
    assert.deepEqual(load.failed, []);
  });
});
