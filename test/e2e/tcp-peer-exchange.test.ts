/**
 * Istio's in-band TCP peer metadata exchange (istio.metadata_exchange before istio.stats and tcp_proxy)
 * between two real Weft proxies over mTLS with ALPN istio-peer-exchange: each reporter names the other
 * side's workload, application bytes pass unchanged both ways (a server-first protocol too), and a TLS
 * client without the ALPN still gets through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import {
  certificateFiles,
  CLIENT_ID,
  downstreamTransportSocket,
  makeTestPki,
  SERVER_ID,
  upstreamTransportSocket,
} from '../../src/proxy/tls/testing.ts';
import type { TestPki } from '../../src/proxy/tls/testing.ts';

const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';
const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const BANNER = 'HELLO from the app\n';

const node = (workload: string, app: string): Record<string, unknown> => ({
  id: `sidecar~127.0.0.1~${workload}-1.default~default.svc.cluster.local`,
  cluster: `${app}.default`,
  metadata: {
    NAMESPACE: 'default',
    WORKLOAD_NAME: workload,
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app, version: 'v1' },
  },
});

const FILTERS = (cluster: string, statPrefix: string): Record<string, unknown>[] => [
  {
    name: 'istio.metadata_exchange',
    typed_config: {
      '@type': TYPED_STRUCT,
      type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange',
      value: { protocol: 'istio-peer-exchange' },
    },
  },
  {
    name: 'istio.stats',
    typed_config: { '@type': TYPED_STRUCT, type_url: 'type.googleapis.com/stats.PluginConfig', value: {} },
  },
  {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster },
  },
];

const uriSan = (v: string): Record<string, unknown> => ({ san_type: 'URI', matcher: { exact: v } });
const ADMIN = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };

function prometheus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/stats/prometheus' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** The value of the one series of `family` whose labels include every `labels` pair (undefined if none). */
function sample(text: string, family: string, labels: Record<string, string>): number | undefined {
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith(family + '{'))
    .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  assert.ok(lines.length <= 1, `one series expected:\n${lines.join('\n')}`);
  return lines.length === 0 ? undefined : Number(lines[0].slice(lines[0].lastIndexOf(' ') + 1));
}

/** Connects, reads `expect` bytes (the banner and then echoes), writes `send` after the banner. */
function converse(socket: net.Socket, send: string, expect: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    let sent = false;
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      got += c;
      if (!sent && got.length >= BANNER.length) {
        sent = true;
        socket.write(send);
      }
      if (got.length >= expect.length) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(got));
    setTimeout(() => socket.destroy(), 5000).unref();
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TCP peer metadata exchange between two weft proxies', { timeout: 60_000 }, () => {
  let app: Upstream;
  let pki: TestPki;
  let server: RunningProxy;
  let client: RunningProxy;

  before(async () => {
    // A server-first protocol: the app speaks before the client does, then echoes.
    app = await startTcpUpstream((s) => {
      s.write(BANNER);
      s.pipe(s);
    });
    pki = await makeTestPki();
    const trust = { trusted_ca: { filename: pki.caFile } };
    server = await startProxy({
      node: node('echo-v1', 'echo'),
      admin: ADMIN,
      static_resources: {
        listeners: [
          {
            name: 'inbound_tcp',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            traffic_direction: 'INBOUND',
            filter_chains: [
              {
                transport_socket: downstreamTransportSocket({
                  require_client_certificate: true,
                  common_tls_context: {
                    alpn_protocols: ['istio-peer-exchange', 'h2', 'http/1.1'],
                    tls_certificates: [certificateFiles(pki.server)],
                    validation_context: { ...trust, match_typed_subject_alt_names: [uriSan(CLIENT_ID)] },
                  },
                }),
                filters: FILTERS('inbound|7070||', 'inbound_tcp'),
              },
            ],
          },
        ],
        clusters: [staticCluster('inbound|7070||', [{ port: app.port }])],
      },
    });
    client = await startProxy({
      node: node('sleep', 'sleep'),
      admin: ADMIN,
      static_resources: {
        listeners: [
          {
            name: 'outbound_tcp',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            traffic_direction: 'OUTBOUND',
            filter_chains: [
              { filters: FILTERS('outbound|7070||echo.default.svc.cluster.local', 'outbound_tcp') },
            ],
          },
        ],
        clusters: [
          // No istio.workload endpoint metadata: the server's workload can only come from the exchange.
          staticCluster(
            'outbound|7070||echo.default.svc.cluster.local',
            [{ port: server.port('inbound_tcp') }],
            {
              transport_socket: upstreamTransportSocket({
                common_tls_context: {
                  alpn_protocols: ['istio-peer-exchange', 'istio'],
                  tls_certificates: [certificateFiles(pki.client)],
                  validation_context: { ...trust, match_typed_subject_alt_names: [uriSan(SERVER_ID)] },
                },
              }),
            },
          ),
        ],
      },
    });
  });

  after(async () => {
    await client?.stop();
    await server?.stop();
    await app?.close();
  });

  it('both reporters name the other workload; bytes pass unchanged both ways', async () => {
    const payload = 'ping '.repeat(1000);
    const got = await converse(
      net.connect(client.port('outbound_tcp'), '127.0.0.1'),
      payload,
      BANNER + payload,
    );
    assert.equal(got, BANNER + payload, 'the banner first, then the echo, nothing else');
    const opened = 'istio_tcp_connections_opened_total';
    await until(
      async () =>
        sample(await prometheus(server.adminPort), 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
        }) === 1,
      'the server reporter to see the close',
    );
    const s = await prometheus(server.adminPort);
    const fromSleep = { reporter: 'destination', source_workload: 'sleep', source_app: 'sleep' };
    assert.equal(sample(s, opened, { ...fromSleep, destination_workload: 'echo-v1' }), 1, s);
    assert.equal(sample(s, opened, { ...fromSleep, source_principal: CLIENT_ID }), 1);
    assert.equal(
      sample(s, 'istio_tcp_received_bytes_total', fromSleep),
      payload.length,
      'frames not counted',
    );
    assert.equal(sample(s, 'istio_tcp_sent_bytes_total', fromSleep), BANNER.length + payload.length);
    await until(
      async () =>
        sample(await prometheus(client.adminPort), 'istio_tcp_connections_closed_total', {
          reporter: 'source',
        }) === 1,
      'the client reporter to see the close',
    );
    const c = await prometheus(client.adminPort);
    const toEcho = {
      reporter: 'source',
      source_workload: 'sleep',
      destination_workload: 'echo-v1',
      destination_app: 'echo',
    };
    assert.equal(sample(c, opened, toEcho), 1, c);
    // Bytes are counted on the downstream (the app) side: what the app sent is received.
    assert.equal(sample(c, 'istio_tcp_received_bytes_total', toEcho), payload.length);
    assert.equal(sample(c, 'istio_tcp_sent_bytes_total', toEcho), BANNER.length + payload.length);
  });

  it('a TLS client without the ALPN still gets through, known by its identity only', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: server.port('inbound_tcp'),
      ca: readFileSync(pki.caFile),
      cert: readFileSync(pki.client.certFile),
      key: readFileSync(pki.client.keyFile),
      checkServerIdentity: () => undefined,
    });
    const got = await converse(socket, 'plain', BANNER + 'plain');
    assert.equal(got, BANNER + 'plain');
    await until(
      async () =>
        sample(await prometheus(server.adminPort), 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
          source_workload: 'unknown',
        }) === 1,
      'the close of the plain TLS connection',
    );
    const s = await prometheus(server.adminPort);
    const unknown = { reporter: 'destination', source_workload: 'unknown' };
    assert.equal(sample(s, 'istio_tcp_received_bytes_total', unknown), 'plain'.length);
    assert.equal(sample(s, 'istio_tcp_sent_bytes_total', unknown), BANNER.length + 'plain'.length);
  });
});
