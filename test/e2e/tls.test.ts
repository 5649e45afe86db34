import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  bootstrapDoc,
  HTTP2_PROTOCOL_OPTIONS,
  httpListener,
  staticCluster,
  tcpListener,
} from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import type { SeenRequest, Upstream } from '../support/servers.ts';
import { curl, request } from '../support/http.ts';
import {
  CLIENT_ID,
  certificateFiles,
  downstreamTransportSocket,
  makeTestPki,
  OTHER_ID,
  SERVER_ID,
  upstreamTransportSocket,
} from '../../src/proxy/tls/testing.ts';
import type { TestCert, TestPki } from '../../src/proxy/tls/testing.ts';

/** A listener whose single filter chain terminates TLS with `context`. */
function tlsListener(
  name: string,
  context: Record<string, unknown>,
  hcm: Record<string, unknown> = {},
): Record<string, unknown> {
  const l = httpListener({ name, hcm }) as { filter_chains: Record<string, unknown>[] };
  l.filter_chains[0].transport_socket = downstreamTransportSocket(context);
  return l;
}

const exact = (v: string): Record<string, unknown> => ({ san_type: 'URI', matcher: { exact: v } });

function curlTls(port: number, pki: TestPki, extra: string[] = []): ReturnType<typeof curl> {
  return curl(
    [
      '--cacert',
      pki.caFile,
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{http_version}',
      ...extra,
      `https://localhost:${port}/`,
    ],
    10_000,
  );
}

function clientCert(c: TestCert): string[] {
  return ['--cert', c.certFile, '--key', c.keyFile];
}

/** An HTTPS (HTTP/1.1) upstream that asks for a client certificate and records its URI SAN. */
async function startHttpsUpstream(
  pki: TestPki,
  cert: TestCert,
): Promise<Upstream & { peers: (string | undefined)[]; connections: number }> {
  const state = { peers: [] as (string | undefined)[], connections: 0 };
  const server = https.createServer(
    {
      cert: cert.certPem,
      key: cert.keyPem,
      ca: pki.caPem,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    },
    (req, res) => {
      const peer = (req.socket as tls.TLSSocket).getPeerX509Certificate();
      state.peers.push(peer?.subjectAltName?.replace(/^URI:/, ''));
      // Every response closes its connection, so each request needs a new handshake (session reuse).
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end('tls upstream');
    },
  );
  server.on('secureConnection', () => state.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(state, {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    get peersList() {
      return state.peers;
    },
  });
}

describe('TLS transport sockets through real proxies', { timeout: 120_000 }, () => {
  let pki: TestPki;
  let backend: Upstream & { seen: SeenRequest[] };
  let front: RunningProxy;
  let httpsUp: Awaited<ReturnType<typeof startHttpsUpstream>>;
  let h2Up: { port: number; versions: string[]; close(): Promise<void> };
  let serverProxy: RunningProxy;
  let clientProxy: RunningProxy;

  const stat = (p: RunningProxy, name: string): number => p.server.stats.counter(name).value;
  // Listener stats are named by the configured address (port 0 here), as the listener's other stats are.
  const listenerStat = (p: RunningProxy, name: string): number => stat(p, `listener.127.0.0.1_0.ssl.${name}`);

  before(async () => {
    pki = await makeTestPki();
    backend = await startHttpUpstream({ name: 'backend' });
    httpsUp = await startHttpsUpstream(pki, pki.server);
    // An HTTP/2-only TLS upstream (ALPN h2).
    const versions: string[] = [];
    const h2 = http2.createSecureServer(
      { cert: pki.server.certPem, key: pki.server.keyPem, ALPNProtocols: ['h2'] },
      (req, res) => {
        versions.push(req.httpVersion);
        res.end('h2 upstream');
      },
    );
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    h2Up = {
      port: (h2.address() as AddressInfo).port,
      versions,
      close: () => new Promise<void>((r) => h2.close(() => r())),
    };

    const serverCert = { tls_certificates: [certificateFiles(pki.server)] };
    const trust = { trusted_ca: { filename: pki.caFile } };
    const upstreamTls = (sans: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      transport_socket: upstreamTransportSocket({
        common_tls_context: {
          tls_certificates: [certificateFiles(pki.client)],
          validation_context: { ...trust, match_typed_subject_alt_names: [exact(sans)] },
          ...extra,
        },
      }),
    });
    front = await startProxy(
      bootstrapDoc(
        [
          tlsListener('https', { common_tls_context: { ...serverCert, alpn_protocols: ['h2', 'http/1.1'] } }),
          {
            ...tcpListener({ name: 'tcp-tls', cluster: 'tls-tcp' }),
            filter_chains: [
              {
                ...(
                  tcpListener({ name: 'x', cluster: 'tls-tcp' }).filter_chains as Record<string, unknown>[]
                )[0],
                transport_socket: downstreamTransportSocket({ common_tls_context: serverCert }),
              },
            ],
          },
          tlsListener('mtls', {
            require_client_certificate: true,
            common_tls_context: {
              ...serverCert,
              validation_context: { ...trust, match_typed_subject_alt_names: [exact(CLIENT_ID)] },
            },
          }),
          httpListener({
            name: 'to-tls',
            virtualHosts: [
              {
                name: 'all',
                domains: ['*'],
                routes: [
                  { match: { prefix: '/good' }, route: { cluster: 'tls-good' } },
                  { match: { prefix: '/wrong-san' }, route: { cluster: 'tls-wrong-san' } },
                  { match: { prefix: '/h2' }, route: { cluster: 'tls-h2' } },
                ],
              },
            ],
          }),
        ],
        [
          staticCluster('backend', [{ port: backend.port }]),
          staticCluster('tls-good', [{ port: httpsUp.port }], upstreamTls(SERVER_ID)),
          staticCluster('tls-wrong-san', [{ port: httpsUp.port }], upstreamTls(OTHER_ID)),
          staticCluster('tls-h2', [{ port: h2Up.port }], {
            ...HTTP2_PROTOCOL_OPTIONS,
            ...upstreamTls(SERVER_ID),
          }),
          staticCluster('tls-tcp', [{ port: httpsUp.port }], upstreamTls(SERVER_ID)),
        ],
      ),
    );

    // Two proxies with mTLS between them; the server side sets x-forwarded-client-cert.
    serverProxy = await startProxy(
      bootstrapDoc(
        [
          tlsListener(
            'inbound',
            {
              require_client_certificate: true,
              common_tls_context: {
                ...serverCert,
                alpn_protocols: ['h2', 'http/1.1'],
                validation_context: { ...trust, match_typed_subject_alt_names: [exact(CLIENT_ID)] },
              },
            },
            { forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } },
          ),
        ],
        [staticCluster('backend', [{ port: backend.port }])],
      ),
    );
    clientProxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            name: 'outbound',
            routes: [
              { match: { prefix: '/h1' }, route: { cluster: 'mesh-h1' } },
              { match: { prefix: '/h2' }, route: { cluster: 'mesh-h2' } },
            ],
          }),
        ],
        [
          staticCluster('mesh-h1', [{ port: serverProxy.port('inbound') }], upstreamTls(SERVER_ID)),
          staticCluster('mesh-h2', [{ port: serverProxy.port('inbound') }], {
            ...HTTP2_PROTOCOL_OPTIONS,
            ...upstreamTls(SERVER_ID),
          }),
        ],
      ),
    );
  });

  after(async () => {
    await Promise.all([front?.stop(), serverProxy?.stop(), clientProxy?.stop()]);
    await Promise.all([backend?.close(), httpsUp?.close(), h2Up?.close()]);
  });

  describe('downstream', () => {
    it('serves HTTPS over HTTP/1.1 and, by ALPN, HTTP/2', async () => {
      const before = listenerStat(front, 'handshake');
      const h1 = await curlTls(front.port('https'), pki, ['--http1.1']);
      assert.equal(h1.stdout, '200 1.1', h1.stderr);
      const h2 = await curlTls(front.port('https'), pki, ['--http2']);
      assert.equal(h2.stdout, '200 2', h2.stderr);
      assert.equal(listenerStat(front, 'handshake') - before, 2);
      // The backend saw the scheme the client used.
      assert.equal(backend.seen.at(-1)?.headers['x-forwarded-proto'], 'https');
    });

    it('asks for a client certificate when require_client_certificate is set', async () => {
      const out = await new Promise<string>((resolve) => {
        const child = execFile(
          'openssl',
          [
            's_client',
            '-connect',
            `127.0.0.1:${front.port('mtls')}`,
            '-CAfile',
            pki.caFile,
            '-servername',
            'localhost',
          ],
          { timeout: 10_000 },
          (_err, stdout, stderr) => resolve(stdout + stderr),
        );
        child.stdin?.end('');
      });
      assert.match(out, /Acceptable client certificate CA names[\s\S]*CN = root-ca/);
    });

    it('accepts a trusted client certificate with a matching SAN', async () => {
      const r = await curlTls(front.port('mtls'), pki, clientCert(pki.client));
      assert.equal(r.stdout, '200 1.1', r.stderr);
    });

    it('refuses a missing, untrusted, expired or mismatched client certificate, and counts each', async () => {
      const port = front.port('mtls');
      const counts = (): number[] =>
        ['fail_verify_no_cert', 'fail_verify_error', 'fail_verify_san', 'connection_error'].map((n) =>
          listenerStat(front, n),
        );
      const [noCert0, verify0, san0, err0] = counts();
      for (const args of [
        [],
        clientCert(pki.otherCaClient),
        clientCert(pki.expiredClient),
        clientCert(pki.server),
      ]) {
        const r = await curlTls(port, pki, args);
        assert.notEqual(r.code, 0, `curl ${args.join(' ')} should fail, got ${r.stdout}`);
        assert.notEqual(r.stdout.slice(0, 3), '200');
      }
      const [noCert1, verify1, san1, err1] = counts();
      assert.equal(noCert1 - noCert0, 1, 'no certificate');
      assert.equal(verify1 - verify0, 2, 'other CA and expired');
      assert.equal(san1 - san0, 1, 'SAN mismatch');
      assert.equal(err1 - err0, 4);
    });

    it('lists the certificates in use at /certs', async () => {
      const r = await request(front.adminPort, { path: '/certs' });
      const body = JSON.parse(r.body) as {
        certificates: {
          ca_cert: { path: string }[];
          cert_chain: {
            path: string;
            serial_number: string;
            subject_alt_names: unknown[];
            days_until_expiration: string;
          }[];
        }[];
      };
      const serial = new X509Certificate(pki.server.certPem).serialNumber.toLowerCase();
      const chain = body.certificates.flatMap((c) => c.cert_chain);
      const server = chain.find((c) => c.path === pki.server.certFile);
      assert.ok(server, JSON.stringify(body));
      assert.equal(server.serial_number, serial);
      assert.deepEqual(server.subject_alt_names, [
        { uri: SERVER_ID },
        { dns: 'localhost' },
        { ip_address: '127.0.0.1' },
      ]);
      assert.ok(Number(server.days_until_expiration) >= 9);
      assert.ok(body.certificates.some((c) => c.ca_cert.some((ca) => ca.path === pki.caFile)));
      // The test leaf certificates are valid for 10 days, the CA for 30.
      const days = front.server.stats.gauge('server.days_until_first_cert_expiring').value;
      assert.ok(days === 9 || days === 10, `days_until_first_cert_expiring ${days}`);
      const seconds = front.server.stats.gauge('server.seconds_until_first_cert_expiring').value;
      assert.ok(
        seconds > 9 * 86_400 && seconds <= 10 * 86_400,
        `seconds_until_first_cert_expiring ${seconds}`,
      );
    });
  });

  describe('upstream', () => {
    it('verifies the upstream SAN and presents the client certificate', async () => {
      const before = stat(front, 'cluster.tls-good.ssl.handshake');
      const r = await request(front.port('to-tls'), { path: '/good' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'tls upstream');
      assert.equal(httpsUp.peers.at(-1), CLIENT_ID);
      assert.equal(stat(front, 'cluster.tls-good.ssl.handshake') - before, 1);
    });

    it('fails with 503 UF when the upstream SAN does not match', async () => {
      const fail0 = stat(front, 'cluster.tls-wrong-san.upstream_cx_connect_fail');
      const r = await request(front.port('to-tls'), { path: '/wrong-san' });
      assert.equal(r.status, 503);
      assert.match(r.body, /upstream connect error/);
      assert.ok(stat(front, 'cluster.tls-wrong-san.upstream_cx_connect_fail') > fail0);
      assert.ok(stat(front, 'cluster.tls-wrong-san.ssl.fail_verify_san') >= 1);
    });

    it('resumes the TLS session on the next connection to the same host', async () => {
      // The upstream closes each connection, so the second request makes a new handshake.
      await request(front.port('to-tls'), { path: '/good' });
      const reused0 = stat(front, 'cluster.tls-good.ssl.session_reused');
      const r = await request(front.port('to-tls'), { path: '/good' });
      assert.equal(r.status, 200);
      assert.equal(stat(front, 'cluster.tls-good.ssl.session_reused') - reused0, 1);
    });

    it('carries TLS on both sides of a tcp_proxy, half-close included', async () => {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = tls.connect(
          { host: '127.0.0.1', port: front.port('tcp-tls'), servername: 'localhost', ca: pki.caPem },
          () => s.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n'),
        );
        let out = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (out += d));
        s.on('close', () => resolve(out));
        s.on('error', reject);
        s.setTimeout(5000, () => s.destroy(new Error('timeout')));
      });
      assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\ntls upstream\r\n/);
      assert.equal(httpsUp.peers.at(-1), CLIENT_ID);
    });

    it('negotiates h2 by ALPN with an HTTP/2 cluster', async () => {
      const r = await request(front.port('to-tls'), { path: '/h2' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'h2 upstream');
      assert.equal(h2Up.versions.at(-1), '2.0');
    });
  });

  describe('mTLS between two proxies', () => {
    const clientHash = (): string =>
      createHash('sha256').update(new X509Certificate(pki.client.certPem).raw).digest('hex');

    for (const [path, version] of [
      ['/h1', 'HTTP/1.1'],
      ['/h2', 'HTTP/2'],
    ] as const) {
      it(`passes the client's SPIFFE ID in x-forwarded-client-cert over ${version}`, async () => {
        const r = await request(clientProxy.port('outbound'), {
          path,
          // A forged header from the client is replaced (SANITIZE_SET).
          headers: { 'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://evil' },
        });
        assert.equal(r.status, 200, r.body);
        const seen = JSON.parse(r.body) as { headers: Record<string, string> };
        assert.equal(
          seen.headers['x-forwarded-client-cert'],
          `By=${SERVER_ID};Hash=${clientHash()};URI=${CLIENT_ID}`,
        );
        // The hop between the proxies spoke the protocol its cluster asked for, chosen by ALPN.
        const h2Streams = stat(serverProxy, 'http.ingress_http.downstream_rq_http2_total');
        assert.equal(h2Streams > 0, version === 'HTTP/2');
      });
    }
  });
});
