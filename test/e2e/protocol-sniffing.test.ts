/**
 * Protocol sniffing end to end: a real Weft proxy whose listeners run tls_inspector and http_inspector
 * and pick filter chains by what they detect (HTTP/1.1, h2c, TLS with SNI/ALPN, other TCP, silent clients).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { bootstrapDoc, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { rawExchange, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const INSPECTORS = [
  {
    name: 'envoy.filters.listener.tls_inspector',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
    },
  },
  {
    name: 'envoy.filters.listener.http_inspector',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
    },
  },
];
/** Far longer than any test here may take: a connection that waited for it would fail its test. */
const HUGE = '3600s';

function tcpChain(cluster: string, match?: Record<string, unknown>): Record<string, unknown> {
  return {
    ...(match ? { filter_chain_match: match } : {}),
    filters: [
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: { '@type': TCP, stat_prefix: cluster, cluster },
      },
    ],
  };
}

function httpChain(): Record<string, unknown> {
  return {
    filter_chain_match: { application_protocols: ['http/1.0', 'http/1.1', 'h2c'] },
    filters: [
      {
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM,
          stat_prefix: 'sniffed_http',
          route_config: {
            virtual_hosts: [
              {
                name: 'all',
                domains: ['*'],
                routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }],
              },
            ],
          },
          http_filters: [{ name: 'envoy.filters.http.router' }],
        },
      },
    ],
  };
}

function listener(
  name: string,
  opts: { sniff: boolean; timeout: string; continueOnTimeout?: boolean; defaultCluster: string },
): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    ...(opts.sniff ? { listener_filters: INSPECTORS } : {}),
    listener_filters_timeout: opts.timeout,
    continue_on_listener_filters_timeout: opts.continueOnTimeout ?? false,
    filter_chains: opts.sniff
      ? [tcpChain('tls', { server_names: ['tls.test'], transport_protocol: 'tls' }), httpChain()]
      : [tcpChain(opts.defaultCluster)],
    ...(opts.sniff ? { default_filter_chain: tcpChain(opts.defaultCluster) } : {}),
  };
}

/** Connects and resolves with the first bytes the proxy relays, or rejects when the connection closes first. */
function firstBytes(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString());
    });
    s.once('close', () => reject(new Error('closed without data')));
    s.on('error', () => undefined);
  });
}

describe('protocol sniffing (tls_inspector, http_inspector)', { timeout: 30_000 }, () => {
  let proxy: RunningProxy;
  let web: Upstream;
  let echo: Upstream;
  let greeting: Upstream;
  let tlsServer: tls.Server;
  const stat = (name: string): number => proxy.server.stats.counter(`listener.127.0.0.1_0.${name}`).value;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weft-sniff-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=tls.test',
        '-addext',
        'subjectAltName=DNS:tls.test',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(path.join(dir, 'cert.pem'));
    tlsServer = tls.createServer(
      { key: readFileSync(path.join(dir, 'key.pem')), cert, ALPNProtocols: ['x-test', 'http/1.1'] },
      (s) => {
        s.on('error', () => undefined);
        s.end(`tls hello ${s.servername} ${s.alpnProtocol}`);
      },
    );
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    web = await startHttpUpstream({ name: 'web' });
    echo = await startTcpUpstream((s) => s.on('data', (d: Buffer) => s.end(`echo:${d.toString()}`)));
    greeting = await startTcpUpstream((s) => s.write('220 greetings\r\n'));
    proxy = await startProxy(
      bootstrapDoc(
        [
          listener('sniff', { sniff: true, timeout: HUGE, defaultCluster: 'echo' }),
          listener('sniff-continue', {
            sniff: true,
            timeout: '0.2s',
            continueOnTimeout: true,
            defaultCluster: 'greeting',
          }),
          listener('sniff-close', { sniff: true, timeout: '0.2s', defaultCluster: 'greeting' }),
          listener('declared-tcp', { sniff: false, timeout: HUGE, defaultCluster: 'greeting' }),
        ],
        [
          staticCluster('web', [{ port: web.port }]),
          staticCluster('echo', [{ port: echo.port }]),
          staticCluster('greeting', [{ port: greeting.port }]),
          staticCluster('tls', [{ port: (tlsServer.address() as AddressInfo).port }]),
        ],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    await Promise.all([web?.close(), echo?.close(), greeting?.close()]);
    tlsServer?.close();
  });

  it('routes an HTTP/1.1 client through the HTTP connection manager, without waiting for the timeout', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port: proxy.port('sniff'), path: '/h1', agent: false },
        (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
    });
    const seen = JSON.parse(body) as { name: string; url: string };
    assert.equal(seen.name, 'web');
    assert.equal(seen.url, '/h1');
    assert.ok(stat('http_inspector.http11_found') >= 1);
  });

  it('routes an h2c prior-knowledge client through the HTTP connection manager', async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.port('sniff')}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/h2' });
        let b = '';
        req.on('data', (c: Buffer) => (b += c.toString()));
        req.on('end', () => resolve(b));
        req.on('error', reject);
      });
      assert.equal((JSON.parse(body) as { url: string }).url, '/h2');
      assert.ok(stat('http_inspector.http2_found') >= 1);
    } finally {
      session.close();
    }
  });

  it('passes TLS through untouched to the chain matched by server name and transport protocol', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: proxy.port('sniff'),
        servername: 'tls.test',
        ALPNProtocols: ['x-test'],
        rejectUnauthorized: false,
      });
      let b = '';
      s.on('data', (c: Buffer) => (b += c.toString()));
      s.on('end', () => resolve(b));
      s.on('error', reject);
    });
    assert.equal(text, 'tls hello tls.test x-test');
    assert.ok(stat('tls_inspector.tls_found') >= 1);
    assert.ok(stat('tls_inspector.sni_found') >= 1);
  });

  it('sends other client-first TCP to the default tcp_proxy chain, bytes unchanged', async () => {
    assert.equal(await rawExchange(proxy.port('sniff'), 'hello raw\r\n'), 'echo:hello raw\r\n');
    // A handshake record that is not a ClientHello is not TLS to tls_inspector: the default chain again.
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x02, 0x0e, 0x00]);
    assert.equal(await rawExchange(proxy.port('sniff'), hello), `echo:${hello.toString()}`);
    assert.ok(stat('http_inspector.http_not_found') >= 1);
  });

  it('gives a silent client the server-first greeting after the detection timeout (continue on timeout)', async () => {
    assert.equal(await firstBytes(proxy.port('sniff-continue')), '220 greetings\r\n');
    assert.ok(stat('downstream_pre_cx_timeout') >= 1);
  });

  it('closes a silent client at the detection timeout when continue_on_listener_filters_timeout is false', async () => {
    await assert.rejects(firstBytes(proxy.port('sniff-close')), /closed without data/);
  });

  it('never waits on a listener without listener filters (a declared TCP port)', async () => {
    // The listener's own listener_filters_timeout is an hour: the greeting arriving at all proves no wait.
    assert.equal(await firstBytes(proxy.port('declared-tcp')), '220 greetings\r\n');
  });
});
