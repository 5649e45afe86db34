import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../../../test/support/http.ts';
import { startProxy, waitFor } from '../../../test/support/proxy.ts';
import type { RunningProxy } from '../../../test/support/proxy.ts';
import { startTcpUpstream } from '../../../test/support/servers.ts';
import type { Upstream } from '../../../test/support/servers.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import { checkExposition } from '../stats/exposition-check.ts';
import { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { Host, Locality } from '../upstream/types.ts';
import { IstioMetrics } from './istio-metrics.ts';
import { LOCALITY_BYTES_FAMILY, LOCALITY_REQUESTS_FAMILY, localityBytesOf } from './locality-bytes.ts';
import { compileIstioStats } from './stats-config.ts';
import { IstioStatsFilter } from './stats-filter.ts';
import type { TrafficDirection } from './stats-filter.ts';
import { IstioTcpStats } from './tcp-stats.ts';

const clusters = { get: () => undefined } as unknown as ClusterManager;
const HERE: Locality = { region: 'eu-west1', zone: 'eu-west1-a', subZone: '' };
const NODE: NodeInfo = { id: 'n', cluster: 'c', metadata: {}, locality: HERE };

function host(locality: Locality): Host {
  return { key: '10.0.0.1:80', address: '10.0.0.1', port: 80, locality } as unknown as Host;
}

/** The samples of the family: labels (in order) → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(LOCALITY_BYTES_FAMILY + '{')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(LOCALITY_BYTES_FAMILY.length + 1, cut - 1), Number(line.slice(cut + 1)));
  }
  return out;
}

function key(
  dst: [string, string],
  protocol: string,
  direction: string,
  src = HERE,
  service = 'unknown',
): string {
  return (
    `source_region="${src.region}",source_zone="${src.zone}",destination_region="${dst[0]}",` +
    `destination_zone="${dst[1]}",destination_service="${service}",request_protocol="${protocol}",` +
    `direction="${direction}"`
  );
}

/** The samples of weft_locality_requests_total: labels → value. */
function requestSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(LOCALITY_REQUESTS_FAMILY + '{')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(LOCALITY_REQUESTS_FAMILY.length + 1, cut - 1), Number(line.slice(cut + 1)));
  }
  return out;
}

function httpFilter(stats: StatsStore, direction: TrafficDirection, node: NodeInfo | undefined = NODE) {
  return new IstioStatsFilter('istio.stats', compileIstioStats({}, 'c'), {
    metrics: new IstioMetrics(),
    clusters,
    node,
    trafficDirection: direction,
    stats,
  });
}

function completed(f: Partial<Record<keyof HttpStream, unknown>>): HttpStream {
  return {
    clusterName: '',
    upstreamHost: null,
    upstreamHeaders: { 'content-length': '5' },
    upstreamTrailers: null,
    authority: 'svc',
    path: '/p',
    method: 'GET',
    http2: false,
    headers: { host: 'svc' },
    responseStatus: 200,
    isGrpc: false,
    flags: '',
    bytesReceived: 0,
    bytesSent: 5,
    startMs: 0,
    endMs: 1,
    ...f,
  } as unknown as HttpStream;
}

describe('weft_locality_bytes_total: HTTP', () => {
  it('counts request and response bytes per destination locality on the client side', () => {
    const stats = new StatsStore();
    const filter = httpFilter(stats, 'OUTBOUND');
    const b = host({ region: 'eu-west1', zone: 'eu-west1-b', subZone: 'rack1' });
    // GET /p with host: svc and no body: ":method"+"GET" + ":path"+"/p" + "host"+"svc" = 10 + 7 + 7.
    // Response: ":status"+"200" + "content-length"+"5" + 5 body bytes = 10 + 15 + 5.
    for (let i = 0; i < 3; i++) filter.onComplete(completed({ upstreamHost: b }));
    filter.onComplete(
      completed({
        upstreamHost: b,
        method: 'POST',
        headers: { host: 'svc', 'content-length': '100' },
        bytesReceived: 100,
        upstreamHeaders: { 'set-cookie': ['a=1', 'b=22'] },
        upstreamTrailers: { x: 'y' },
        bytesSent: 40,
      }),
    );
    const got = samples(stats.renderPrometheus({}));
    const req = 3 * 24 + (11 + 7 + 7 + 17 + 100);
    const res = 3 * 30 + (10 + 13 + 14 + 2 + 40);
    assert.deepEqual(
      got,
      new Map([
        [key(['eu-west1', 'eu-west1-b'], 'http', 'request'), req],
        [key(['eu-west1', 'eu-west1-b'], 'http', 'response'), res],
      ]),
    );
  });

  it('labels gRPC, HTTP/2 pseudo-headers, and unknown localities', () => {
    const stats = new StatsStore();
    const filter = httpFilter(stats, 'OUTBOUND', { ...NODE, locality: undefined });
    filter.onComplete(
      completed({
        upstreamHost: host({ region: 'us', zone: '', subZone: '' }),
        isGrpc: true,
        http2: true,
        headers: { ':method': 'POST', ':path': '/s/M' },
        bytesReceived: 12,
        upstreamHeaders: {},
        upstreamTrailers: { 'grpc-status': '0' },
        bytesSent: 7,
      }),
    );
    const none: Locality = { region: 'unknown', zone: 'unknown', subZone: '' };
    assert.deepEqual(
      samples(stats.renderPrometheus({})),
      new Map([
        [key(['us', 'unknown'], 'grpc', 'request', none), 7 + 4 + 5 + 4 + 12],
        [key(['us', 'unknown'], 'grpc', 'response', none), 10 + 12 + 7],
      ]),
    );
  });

  it('counts nothing on the server side, for local replies, or for tries that never connected', () => {
    const stats = new StatsStore();
    const b = host({ region: 'eu-west1', zone: 'eu-west1-b', subZone: '' });
    httpFilter(stats, 'INBOUND').onComplete(completed({ upstreamHost: b }));
    const client = httpFilter(stats, 'OUTBOUND');
    client.onComplete(completed({ upstreamHost: null, upstreamHeaders: null, flags: 'UH' }));
    client.onComplete(completed({ upstreamHost: b, upstreamHeaders: null, flags: 'UF' }));
    client.onComplete(completed({ upstreamHost: b, upstreamHeaders: null, flags: 'UO' }));
    assert.equal(stats.renderPrometheus({}).includes(LOCALITY_BYTES_FAMILY), false);
    // A reset after the request went out: the request counts, there is no response.
    client.onComplete(completed({ upstreamHost: b, upstreamHeaders: null, flags: 'UC' }));
    assert.deepEqual(
      samples(stats.renderPrometheus({})),
      new Map([[key(['eu-west1', 'eu-west1-b'], 'http', 'request'), 24]]),
    );
  });

  it('labels the destination service of the cluster, per cluster, and counts requests', () => {
    const stats = new StatsStore();
    const filter = httpFilter(stats, 'OUTBOUND');
    const b = host({ region: 'eu-west1', zone: 'eu-west1-b', subZone: '' });
    const catalog = 'outbound|80||catalog.shop.svc.cluster.local';
    const reviews = 'outbound|9080|v2|reviews.shop.svc.cluster.local';
    for (let i = 0; i < 4; i++) filter.onComplete(completed({ upstreamHost: b, clusterName: catalog }));
    filter.onComplete(completed({ upstreamHost: b, clusterName: reviews }));
    filter.onComplete(completed({ upstreamHost: b, clusterName: 'static-cluster' }));
    const text = stats.renderPrometheus({});
    const dst: [string, string] = ['eu-west1', 'eu-west1-b'];
    assert.deepEqual(
      samples(text),
      new Map([
        [key(dst, 'http', 'request', HERE, 'catalog.shop.svc.cluster.local'), 4 * 24],
        [key(dst, 'http', 'request', HERE, 'reviews.shop.svc.cluster.local'), 24],
        [key(dst, 'http', 'request'), 24],
        [key(dst, 'http', 'response', HERE, 'catalog.shop.svc.cluster.local'), 4 * 30],
        [key(dst, 'http', 'response', HERE, 'reviews.shop.svc.cluster.local'), 30],
        [key(dst, 'http', 'response'), 30],
      ]),
    );
    const noDirection = (service: string): string =>
      key(dst, 'http', 'x', HERE, service).replace(',direction="x"', '');
    assert.deepEqual(
      requestSamples(text),
      new Map([
        [noDirection('catalog.shop.svc.cluster.local'), 4],
        [noDirection('reviews.shop.svc.cluster.local'), 1],
        [noDirection('unknown'), 1],
      ]),
    );
    assert.deepEqual(checkExposition(text), []);
  });

  it('keeps one series per locality pair however many hosts and requests', () => {
    const stats = new StatsStore();
    const filter = httpFilter(stats, 'OUTBOUND');
    // Hosts of one locality share its Locality object (one EDS LocalityLbEndpoints); an update brings new ones.
    const zones = ['a', 'b', 'c'].map((z) => ({ region: 'r', zone: z, subZone: '' }));
    for (let i = 0; i < 3000; i++) {
      const z = i % 3 === 0 ? { ...zones[0] } : zones[i % 3];
      filter.onComplete(completed({ upstreamHost: host(z) }));
    }
    const got = samples(stats.renderPrometheus({}));
    assert.equal(got.size, 6);
    assert.equal(got.get(key(['r', 'a'], 'http', 'request', HERE)), 1000 * 24);
    assert.equal(got.get(key(['r', 'c'], 'http', 'response', HERE)), 1000 * 30);
  });
});

describe('weft_locality_bytes_total: TCP', () => {
  function session(locality: Locality): TcpSession & { bytesSent: number; bytesReceived: number } {
    return {
      clusterName: '',
      flags: '',
      upstreamHost: host(locality),
      upstream: {},
      downstreamPeer: undefined,
      upstreamPeer: undefined,
      downstreamSecurity: undefined,
      peerPending: false,
      observerState: new Map(),
      bytesSent: 0,
      bytesReceived: 0,
    } as unknown as TcpSession & { bytesSent: number; bytesReceived: number };
  }
  const tcpStats = (stats: StatsStore, direction: TrafficDirection, period = '5s'): IstioTcpStats =>
    new IstioTcpStats(compileIstioStats({ tcp_reporting_duration: period }, 'c'), {
      metrics: new IstioMetrics(),
      clusters,
      node: NODE,
      trafficDirection: direction,
      stats,
    });

  it('counts each byte once: periodic reports while open (from the connect), the rest at close', async () => {
    const stats = new StatsStore();
    const client = tcpStats(stats, 'OUTBOUND', '0.05s');
    const s = session({ region: 'us-east1', zone: 'us-east1-c', subZone: '' });
    client.onOpen(s);
    // Read from the downstream while the upstream connects, across a periodic report: sent on connect.
    s.bytesReceived = 40;
    await new Promise((r) => setTimeout(r, 120));
    client.onUpstreamConnected(s);
    s.bytesReceived = 300; // from the downstream: went to the upstream
    s.bytesSent = 70;
    await new Promise((r) => setTimeout(r, 200));
    const mid = samples(stats.renderPrometheus({}));
    assert.equal(
      mid.get(key(['us-east1', 'us-east1-c'], 'tcp', 'request')),
      300,
      'reported before the close',
    );
    s.bytesReceived = 310;
    s.bytesSent = 5000;
    client.onClose(s);
    assert.deepEqual(
      samples(stats.renderPrometheus({})),
      new Map([
        [key(['us-east1', 'us-east1-c'], 'tcp', 'request'), 310],
        [key(['us-east1', 'us-east1-c'], 'tcp', 'response'), 5000],
      ]),
    );
  });

  it('counts nothing on the server side or for a connection that never reached its upstream', () => {
    const stats = new StatsStore();
    const server = tcpStats(stats, 'INBOUND');
    const s1 = session(HERE);
    server.onOpen(s1);
    server.onUpstreamConnected(s1);
    s1.bytesReceived = 10;
    server.onClose(s1);
    const client = tcpStats(stats, 'OUTBOUND');
    const s2 = session(HERE);
    client.onOpen(s2);
    s2.bytesReceived = 10;
    (s2 as { flags: string }).flags = 'UF';
    client.onClose(s2);
    assert.equal(stats.renderPrometheus({}).includes(LOCALITY_BYTES_FAMILY), false);
  });
});

describe('weft_locality_bytes_total exposition', () => {
  it('has HELP and TYPE, honours ?filter=, and passes promtool', () => {
    const stats = new StatsStore();
    const m = localityBytesOf(stats);
    assert.equal(localityBytesOf(stats), m, 'one per store');
    assert.equal(stats.renderPrometheus({}).includes(LOCALITY_BYTES_FAMILY), false, 'nothing before a byte');
    m.counters(HERE, { region: 'r"x', zone: 'z\\1', subZone: '' }, 2).request.value = 12;
    const text = stats.renderPrometheus({});
    assert.match(text, /^# HELP weft_locality_bytes_total \S.*$/m);
    assert.match(text, /^# TYPE weft_locality_bytes_total counter$/m);
    assert.match(text, /destination_region="r\\"x",destination_zone="z\\\\1"/);
    assert.deepEqual(checkExposition(text), []);
    assert.equal(stats.renderPrometheus({ filter: /^envoy_/ }).includes(LOCALITY_BYTES_FAMILY), false);
    assert.match(stats.renderPrometheus({ filter: /locality_bytes/ }), /weft_locality_bytes_total\{/);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.error, undefined, 'promtool must be installed (scripts/install-test-deps.sh)');
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

/** A real client-side proxy: the counters against bytes written on the wire by both ends. */
describe('weft_locality_bytes_total through a proxy', () => {
  const RESPONSE_BODY = 'r'.repeat(3000);
  const RESPONSE_HEAD = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3000\r\nconnection: close\r\n\r\n`;
  let upstream: Upstream;
  let tcpUpstream: Upstream;
  let proxy: RunningProxy;

  before(async () => {
    // Answers every request with the same bytes, so the response size is known exactly.
    upstream = await startTcpUpstream((s) => {
      let seen = '';
      s.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        const end = seen.indexOf('\r\n\r\n');
        if (end < 0) return;
        const cl = Number(/content-length: (\d+)/i.exec(seen.slice(0, end))?.[1] ?? 0);
        if (seen.length >= end + 4 + cl) s.end(RESPONSE_HEAD + RESPONSE_BODY);
      });
    });
    // Reads 1234 bytes, answers 5000 and closes.
    tcpUpstream = await startTcpUpstream((s) => {
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 1234) s.end('t'.repeat(5000));
      });
    });
    const cluster = (
      name: string,
      locality: Record<string, string>,
      port = upstream.port,
    ): Record<string, unknown> => ({
      name,
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: name,
        endpoints: [
          {
            locality,
            lb_endpoints: [
              {
                endpoint: {
                  address: { socket_address: { address: '127.0.0.1', port_value: port } },
                },
              },
            ],
          },
        ],
      },
    });
    proxy = await startProxy({
      node: { id: 'client', cluster: 'client', locality: { region: 'eu-west1', zone: 'eu-west1-a' } },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      static_resources: {
        listeners: [
          {
            name: 'http',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            traffic_direction: 'OUTBOUND',
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: {
                      '@type':
                        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      stat_prefix: 'out',
                      route_config: {
                        name: 'r',
                        virtual_hosts: [
                          {
                            name: 'all',
                            domains: ['*'],
                            routes: [
                              { match: { prefix: '/b' }, route: { cluster: 'zone-b' } },
                              { match: { prefix: '/' }, route: { cluster: 'other-region' } },
                            ],
                          },
                        ],
                      },
                      http_filters: [
                        {
                          name: 'istio.stats',
                          typed_config: {
                            '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
                            type_url: 'type.googleapis.com/stats.PluginConfig',
                            value: {},
                          },
                        },
                        {
                          name: 'envoy.filters.http.router',
                          typed_config: {
                            '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
          {
            name: 'tcp',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            traffic_direction: 'OUTBOUND',
            filter_chains: [
              {
                filters: [
                  {
                    name: 'istio.stats',
                    typed_config: {
                      '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
                      type_url: 'type.googleapis.com/stats.PluginConfig',
                      value: {},
                    },
                  },
                  {
                    name: 'envoy.filters.network.tcp_proxy',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                      stat_prefix: 'tcp',
                      cluster: 'tcp-echo',
                    },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [
          cluster('tcp-echo', { region: 'eu-west1', zone: 'eu-west1-c' }, tcpUpstream.port),
          cluster('zone-b', { region: 'eu-west1', zone: 'eu-west1-b' }),
          cluster('other-region', { region: 'us-east1' }),
        ],
      },
    });
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.close();
    await tcpUpstream?.close();
  });

  /** Writes a request whose every header is given (nothing for the proxy to add) and reads the reply. */
  function send(path: string, body: string): Promise<string> {
    const head =
      `POST ${path} HTTP/1.1\r\nhost: svc\r\ncontent-length: ${body.length}\r\n` +
      `x-forwarded-proto: http\r\nx-request-id: 7\r\nconnection: close\r\n\r\n`;
    return new Promise((resolve, reject) => {
      const s = net.connect(proxy.port('http'), '127.0.0.1');
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.write(head + body);
    });
  }

  it('matches the bytes of each request and response, on /stats/prometheus and /stats?format=prometheus', async () => {
    for (let i = 0; i < 3; i++) assert.match(await send('/b/x', 'q'.repeat(500)), /^HTTP\/1\.1 200/);
    assert.match(await send('/us', 'q'.repeat(20)), /^HTTP\/1\.1 200/);
    // Headers as names + values: host svc, content-length N, x-forwarded-proto http, x-request-id 7,
    // connection close; then :method POST and :path.
    const headers = (len: number, path: string): number =>
      4 + 3 + 14 + String(len).length + 17 + 4 + 12 + 1 + 10 + 5 + 7 + 4 + 5 + path.length;
    // :status 200, content-type text/plain, content-length 3000, connection close, and the body.
    const response = 10 + 12 + 10 + 14 + 4 + 10 + 5 + 3000;
    for (const path of ['/stats/prometheus', '/stats?format=prometheus']) {
      const text = (await request(proxy.adminPort, { path })).body;
      assert.deepEqual(checkExposition(text), []);
      const src: Locality = { region: 'eu-west1', zone: 'eu-west1-a', subZone: '' };
      assert.deepEqual(
        samples(text),
        new Map([
          [key(['eu-west1', 'eu-west1-b'], 'http', 'request', src), 3 * (headers(500, '/b/x') + 500)],
          [key(['eu-west1', 'eu-west1-b'], 'http', 'response', src), 3 * response],
          [key(['us-east1', 'unknown'], 'http', 'request', src), headers(20, '/us') + 20],
          [key(['us-east1', 'unknown'], 'http', 'response', src), response],
        ]),
      );
    }
  });

  it('counts a TCP connection through tcp_proxy against its upstream locality', async () => {
    const got = await new Promise<number>((resolve, reject) => {
      const s = net.connect(proxy.port('tcp'), '127.0.0.1');
      let n = 0;
      s.on('data', (d: Buffer) => (n += d.length));
      s.on('close', () => resolve(n));
      s.on('error', reject);
      s.write('u'.repeat(1234));
    });
    assert.equal(got, 5000);
    const src: Locality = { region: 'eu-west1', zone: 'eu-west1-a', subZone: '' };
    const want = new Map([
      [key(['eu-west1', 'eu-west1-c'], 'tcp', 'request', src), 1234],
      [key(['eu-west1', 'eu-west1-c'], 'tcp', 'response', src), 5000],
    ]);
    // The connection's last report is made once both sides have closed.
    await waitFor(
      async () => {
        const all = samples((await request(proxy.adminPort, { path: '/stats/prometheus' })).body);
        return [...want].every(([k, v]) => all.get(k) === v);
      },
      5000,
      'the TCP bytes',
    );
  });
});
