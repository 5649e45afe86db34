import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { certificateFiles, downstreamTransportSocket, makeTestPki } from '../../src/proxy/tls/testing.ts';
import type { TestPki } from '../../src/proxy/tls/testing.ts';

/** The local agent's SDS source (Istio's sds-grpc cluster). */
const AGENT_SDS = {
  api_config_source: {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
  },
  resource_api_version: 'V3',
};

function sdsListener(
  name: string,
  secret: string,
  sdsConfig?: Record<string, unknown>,
): Record<string, unknown> {
  const l = httpListener({ name }) as { filter_chains: Record<string, unknown>[] };
  l.filter_chains[0].transport_socket = downstreamTransportSocket({
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: secret, ...(sdsConfig ? { sds_config: sdsConfig } : {}) }],
    },
  });
  return l;
}

/** GET over HTTPS; resolves with the serial of the certificate the proxy presented and whether the socket was reused. */
function get(
  port: number,
  agent: https.Agent,
): Promise<{ status: number; serial: string; reused: boolean; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', servername: 'localhost', port, path: '/', agent },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, serial, reused: req.reusedSocket, socket }),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

describe('TLS secrets: rotation and late arrival', { timeout: 60_000 }, () => {
  let pki: TestPki;
  let backend: Upstream;
  let proxy: RunningProxy;

  before(async () => {
    pki = await makeTestPki();
    backend = await startHttpUpstream();
    const doc = bootstrapDoc(
      [sdsListener('static', 'server-cert'), sdsListener('agent', 'default', AGENT_SDS)],
      [staticCluster('backend', [{ port: backend.port }])],
    );
    (doc.static_resources as Record<string, unknown>).secrets = [
      { name: 'server-cert', tls_certificate: certificateFiles(pki.server) },
    ];
    proxy = await startProxy(doc);
  });

  after(async () => {
    await proxy?.stop();
    await backend?.close();
  });

  it('gives new connections a rotated certificate while a keep-alive connection keeps working', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.caPem });
    try {
      const first = await get(proxy.port('static'), agent);
      assert.equal(first.status, 200);
      assert.equal(first.serial, serialOf(pki.server.certPem));
      proxy.server.secrets.set('server-cert', {
        kind: 'tls_certificate',
        certificateChain: pki.serverRotated.certPem,
        privateKey: pki.serverRotated.keyPem,
      });
      const again = await get(proxy.port('static'), agent);
      assert.equal(again.status, 200);
      // The same TLS connection, so still the certificate it was established with.
      assert.equal(again.reused, true, 'the existing connection was reused');
      assert.equal(again.socket, first.socket);
      const fresh = await get(proxy.port('static'), new https.Agent({ ca: pki.caPem }));
      assert.equal(fresh.serial, serialOf(pki.serverRotated.certPem));
    } finally {
      agent.destroy();
    }
  });

  it('refuses connections until an SDS secret arrives, then serves them', async () => {
    const notReady = proxy.server.stats.counter('listener.127.0.0.1_0.ssl.secret_not_ready');
    const before = notReady.value;
    await assert.rejects(get(proxy.port('agent'), new https.Agent({ ca: pki.caPem })));
    assert.equal(notReady.value - before, 1);
    assert.deepEqual(
      proxy.server.secrets.demands().find((d) => d.name === 'default'),
      { name: 'default', source: 'agent' },
    );
    proxy.server.secrets.set('default', {
      kind: 'tls_certificate',
      certificateChain: pki.server.certPem,
      privateKey: pki.server.keyPem,
    });
    const r = await get(proxy.port('agent'), new https.Agent({ ca: pki.caPem }));
    assert.equal(r.status, 200);
    assert.equal(r.serial, serialOf(pki.server.certPem));
  });
});
