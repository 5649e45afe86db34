/**
 * Istio's standard metrics and peer metadata exchange across two real `weft proxy` processes:
 * client app → client proxy (OUTBOUND listeners: metadata exchange + istio.stats) → server proxy (INBOUND
 * listeners) → app, for HTTP, gRPC and TCP. Both proxies' /stats/prometheus must carry Istio's exact label
 * sets, counts equal to what was sent, and pass `promtool check metrics`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_PROTOCOL_OPTIONS, staticCluster } from '../support/bootstrap.ts';
import { REPO, waitFor, writeBootstrap } from '../support/proxy.ts';
import { closedPort, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { SeenRequest, Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';
import { checkExposition } from '../../src/proxy/stats/exposition-check.ts';
import {
  certificateFiles,
  CLIENT_ID,
  downstreamTransportSocket,
  makeTestPki,
  SERVER_ID,
  upstreamTransportSocket,
} from '../../src/proxy/tls/testing.ts';

const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';
const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

const CLIENT_NODE = {
  id: 'sidecar~127.0.0.1~sleep-6d4f.default~default.svc.cluster.local',
  cluster: 'sleep.default',
  metadata: {
    NAME: 'sleep-6d4f',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'sleep',
    CLUSTER_ID: 'Kubernetes',
    MESH_ID: 'cluster.local',
    SERVICE_ACCOUNT: 'sleep',
    LABELS: {
      app: 'sleep',
      version: 'v1',
      'service.istio.io/canonical-name': 'sleep',
      'service.istio.io/canonical-revision': 'v1',
    },
  },
};

const SERVER_NODE = {
  id: 'sidecar~127.0.0.1~echo-v1-7c9b.default~default.svc.cluster.local',
  cluster: 'echo.default',
  metadata: {
    NAME: 'echo-v1-7c9b',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'echo-v1',
    CLUSTER_ID: 'Kubernetes',
    MESH_ID: 'cluster.local',
    SERVICE_ACCOUNT: 'echo',
    LABELS: { app: 'echo', version: 'v2' },
  },
};

const stats = (reporter?: string): Record<string, unknown> => ({
  name: 'istio.stats',
  typed_config: {
    '@type': TYPED_STRUCT,
    type_url: 'type.googleapis.com/stats.PluginConfig',
    value: reporter === undefined ? {} : { reporter },
  },
});

const exchange = (value: Record<string, unknown>): Record<string, unknown> => ({
  name: 'istio.metadata_exchange',
  typed_config: {
    '@type': TYPED_STRUCT,
    type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config',
    value,
  },
});

const OUTBOUND_EXCHANGE = exchange({
  upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
  upstream_propagation: [{ istio_headers: {} }],
});
const INBOUND_EXCHANGE = exchange({
  downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
  downstream_propagation: [{ istio_headers: {} }],
});

function httpListener(
  name: string,
  port: number,
  direction: string,
  cluster: string,
  exchangeFilter: Record<string, unknown>,
): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    traffic_direction: direction,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              route_config: {
                name,
                virtual_hosts: [
                  { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
                ],
              },
              http_filters: [
                exchangeFilter,
                stats(),
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
  };
}

function tcpListener(
  name: string,
  port: number,
  direction: string,
  cluster: string,
): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    traffic_direction: direction,
    filter_chains: [
      {
        filters: [
          stats(),
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster },
          },
        ],
      },
    ],
  };
}

/** A static cluster whose single endpoint carries Istio's workload metadata (when given). */
function cluster(
  name: string,
  port: number,
  opts: { workload?: string; services?: unknown[]; http2?: boolean } = {},
): Record<string, unknown> {
  const c = staticCluster(name, [{ port }], {
    ...(opts.http2 === true ? HTTP2_PROTOCOL_OPTIONS : {}),
    ...(opts.services === undefined
      ? {}
      : { metadata: { filter_metadata: { istio: { services: opts.services } } } }),
  });
  if (opts.workload !== undefined) {
    const la = c.load_assignment as { endpoints: { lb_endpoints: Record<string, unknown>[] }[] };
    la.endpoints[0].lb_endpoints[0].metadata = { filter_metadata: { istio: { workload: opts.workload } } };
  }
  return c;
}

const uriSan = (v: string): Record<string, unknown> => ({ san_type: 'URI', matcher: { exact: v } });

function withTls(
  listener: Record<string, unknown>,
  context: Record<string, unknown>,
): Record<string, unknown> {
  const chains = listener.filter_chains as Record<string, unknown>[];
  chains[0].transport_socket = downstreamTransportSocket(context);
  return listener;
}

interface Proxy {
  readonly child: ChildProcess;
  readonly admin: number;
  readonly ports: Map<string, number>;
  output(): string;
}

async function spawnProxy(doc: unknown): Promise<Proxy> {
  const child = spawn(
    process.execPath,
    [path.join(REPO, 'src/cli/main.ts'), 'proxy', '--bootstrap', writeBootstrap(doc)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let line: RegExpExecArray | null;
  try {
    line = await waitFor(() => /proxy ready (\{.*\})/.exec(out), 20_000, 'proxy ready');
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`the proxy did not start: ${out}`, { cause: e });
  }
  const info = JSON.parse(line![1]) as { listeners: string[]; admin: number };
  const ports = new Map<string, number>();
  for (const l of info.listeners) ports.set(l.split('@')[0], Number(l.split(':').pop()));
  return { child, admin: info.admin, ports, output: () => out };
}

async function stop(p: Proxy | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await exited;
}

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses the exposition lines (the format Weft writes: no timestamps, label values escaped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable line ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (const l of (m[2] ?? '').matchAll(re))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(p: Proxy): Promise<{ text: string; samples: Sample[] }> {
  const text = (await request(p.admin, { path: '/stats/prometheus' })).body;
  return { text, samples: parse(text) };
}

function find(samples: Sample[], name: string, match: Record<string, string>): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

const LABEL_ORDER = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
];

const SLEEP = {
  source_workload: 'sleep',
  source_canonical_service: 'sleep',
  source_canonical_revision: 'v1',
  source_workload_namespace: 'default',
  source_principal: 'unknown',
  source_app: 'sleep',
  source_version: 'v1',
  source_cluster: 'Kubernetes',
};
const ECHO = {
  destination_workload: 'echo-v1',
  destination_workload_namespace: 'default',
  destination_principal: 'unknown',
  destination_app: 'echo',
  destination_version: 'v2',
  destination_canonical_service: 'echo',
  destination_canonical_revision: 'v2',
  destination_cluster: 'Kubernetes',
};

interface Msg {
  text: string;
  n: number;
}

describe('Istio standard metrics between two weft proxies', { timeout: 90_000 }, () => {
  let app: Upstream & { seen: SeenRequest[] };
  let tcpApp: Upstream;
  let grpcServer: grpc.Server;
  let grpcPort = 0;
  let grpcSeen: grpc.Metadata[] = [];
  let client: Proxy | undefined;
  let server: Proxy | undefined;
  let grpcClient: grpc.Client & {
    ServerStream(m: Msg): grpc.ClientReadableStream<Msg>;
    Unary(m: Msg, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
  };

  before(async () => {
    app = await startHttpUpstream({ name: 'echo' });
    tcpApp = await startTcpUpstream((s) => s.pipe(s));
    const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
    const Echo = (
      grpc.loadPackageDefinition(def) as unknown as {
        weft: { test: { Echo: grpc.ServiceClientConstructor } };
      }
    ).weft.test.Echo;
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        grpcSeen.push(call.metadata);
        if (call.request.text === 'fail') cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no' });
        else cb(null, { text: call.request.text, n: call.request.n });
      },
      ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        for (let i = 0; i < call.request.n; i++) call.write({ text: `m${i}`, n: i });
        call.end();
      },
    });
    grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );

    const [sHttp, sGrpc, sTcp, sMtls] = [
      await closedPort(),
      await closedPort(),
      await closedPort(),
      await closedPort(),
    ];
    const pki = await makeTestPki();
    const trust = { trusted_ca: { filename: pki.caFile } };
    server = await spawnProxy({
      node: SERVER_NODE,
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      static_resources: {
        listeners: [
          httpListener('inbound_http', sHttp, 'INBOUND', 'inbound|8080||', INBOUND_EXCHANGE),
          httpListener('inbound_grpc', sGrpc, 'INBOUND', 'inbound|9090||', INBOUND_EXCHANGE),
          tcpListener('inbound_tcp', sTcp, 'INBOUND', 'inbound|7070||'),
          withTls(httpListener('inbound_mtls', sMtls, 'INBOUND', 'inbound|8080||', INBOUND_EXCHANGE), {
            require_client_certificate: true,
            common_tls_context: {
              tls_certificates: [certificateFiles(pki.server)],
              validation_context: { ...trust, match_typed_subject_alt_names: [uriSan(CLIENT_ID)] },
            },
          }),
        ],
        clusters: [
          cluster('inbound|8080||', app.port, {
            services: [{ host: 'echo.default.svc.cluster.local', name: 'echo', namespace: 'default' }],
          }),
          cluster('inbound|9090||', grpcPort, { http2: true }),
          cluster('inbound|7070||', tcpApp.port),
        ],
      },
    });
    client = await spawnProxy({
      node: CLIENT_NODE,
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      static_resources: {
        listeners: [
          httpListener(
            'outbound_http',
            0,
            'OUTBOUND',
            'outbound|80||echo.default.svc.cluster.local',
            OUTBOUND_EXCHANGE,
          ),
          httpListener(
            'outbound_grpc',
            0,
            'OUTBOUND',
            'outbound|9090||grpc-echo.default.svc.cluster.local',
            OUTBOUND_EXCHANGE,
          ),
          tcpListener('outbound_tcp', 0, 'OUTBOUND', 'outbound|7070||tcp-echo.default.svc.cluster.local'),
          httpListener(
            'outbound_mtls',
            0,
            'OUTBOUND',
            'outbound|443||secure.default.svc.cluster.local',
            OUTBOUND_EXCHANGE,
          ),
        ],
        clusters: [
          cluster('outbound|80||echo.default.svc.cluster.local', sHttp, {
            workload: 'echo-v1;default;echo;v2;Kubernetes',
          }),
          cluster('outbound|9090||grpc-echo.default.svc.cluster.local', sGrpc, { http2: true }),
          {
            ...cluster('outbound|443||secure.default.svc.cluster.local', sMtls),
            transport_socket: upstreamTransportSocket({
              common_tls_context: {
                tls_certificates: [certificateFiles(pki.client)],
                validation_context: { ...trust, match_typed_subject_alt_names: [uriSan(SERVER_ID)] },
              },
            }),
          },
          cluster('outbound|7070||tcp-echo.default.svc.cluster.local', sTcp, {
            workload: 'echo-v1;default;echo;v2;Kubernetes',
          }),
        ],
      },
    });
    grpcClient = new Echo(
      `127.0.0.1:${client.ports.get('outbound_grpc')}`,
      grpc.credentials.createInsecure(),
    ) as unknown as typeof grpcClient;
  });

  after(async () => {
    grpcClient?.close();
    await Promise.all([stop(client), stop(server)]);
    grpcServer?.forceShutdown();
    await Promise.all([app?.close(), tcpApp?.close()]);
  });

  it('HTTP: exchanges metadata, strips the headers and counts on both reporters', async () => {
    const port = client!.ports.get('outbound_http')!;
    for (let i = 0; i < 3; i++) {
      const r = await request(port, {
        path: `/hello?i=${i}`,
        // An application's own header must not survive: the proxy replaces it.
        headers: { 'x-envoy-peer-metadata': 'spoofed', host: 'echo.default.svc.cluster.local' },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-envoy-peer-metadata'], undefined, 'stripped before the client');
      assert.equal(r.headers['x-envoy-peer-metadata-id'], undefined);
    }
    const posted = await request(port, {
      method: 'POST',
      path: '/up',
      body: 'x'.repeat(1500),
      headers: { host: 'echo' },
    });
    assert.equal(posted.status, 200);
    assert.equal(app.seen.length, 4);
    for (const seen of app.seen) {
      assert.equal(seen.headers['x-envoy-peer-metadata'], undefined, 'stripped before the app');
      assert.equal(seen.headers['x-envoy-peer-metadata-id'], undefined);
    }

    const c = (await scrape(client!)).samples;
    const source = find(c, 'istio_requests_total', { reporter: 'source', request_protocol: 'http' });
    assert.equal(source.length, 1, JSON.stringify(source));
    assert.deepEqual(Object.keys(source[0].labels), LABEL_ORDER);
    assert.deepEqual(source[0].labels, {
      reporter: 'source',
      ...SLEEP,
      ...ECHO,
      destination_service: 'echo.default.svc.cluster.local',
      destination_service_name: 'echo',
      destination_service_namespace: 'default',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
    assert.equal(source[0].value, 4);
    const count = find(c, 'istio_request_duration_milliseconds_count', {
      reporter: 'source',
      request_protocol: 'http',
    });
    assert.equal(count[0]?.value, 4);
    const reqBytes = find(c, 'istio_request_bytes_sum', { reporter: 'source', request_protocol: 'http' });
    assert.equal(reqBytes[0]?.value, 1500);
    assert.deepEqual(find(c, 'istio_request_messages_total', { request_protocol: 'http' }), [], 'gRPC only');

    const s = (await scrape(server!)).samples;
    const dest = find(s, 'istio_requests_total', { reporter: 'destination', request_protocol: 'http' });
    assert.equal(dest.length, 1, JSON.stringify(dest));
    assert.deepEqual(Object.keys(dest[0].labels), LABEL_ORDER);
    assert.deepEqual(dest[0].labels, {
      reporter: 'destination',
      ...SLEEP,
      ...ECHO,
      destination_service: 'echo.default.svc.cluster.local',
      destination_service_name: 'echo',
      destination_service_namespace: 'default',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'none',
    });
    assert.equal(dest[0].value, 4);
  });

  it('gRPC: counts requests, statuses and messages', async () => {
    grpcSeen = [];
    await new Promise<void>((resolve, reject) =>
      grpcClient.Unary({ text: 'a', n: 1 }, (e) => (e ? reject(e) : resolve())),
    );
    await new Promise<void>((resolve) => grpcClient.Unary({ text: 'fail', n: 1 }, () => resolve()));
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const st = grpcClient.ServerStream({ text: 's', n: 5 });
      st.on('data', (m: Msg) => got.push(m));
      st.on('end', resolve);
      st.on('error', reject);
    });
    assert.equal(got.length, 5);
    for (const md of grpcSeen)
      assert.deepEqual(md.get('x-envoy-peer-metadata'), [], 'stripped before the app');

    const c = (await scrape(client!)).samples;
    const ok = find(c, 'istio_requests_total', {
      reporter: 'source',
      request_protocol: 'grpc',
      grpc_response_status: '0',
    });
    assert.equal(ok.length, 1, JSON.stringify(find(c, 'istio_requests_total', { request_protocol: 'grpc' })));
    assert.equal(ok[0].value, 2);
    assert.equal(ok[0].labels.destination_workload, 'echo-v1', 'learnt from the exchanged header');
    assert.equal(ok[0].labels.destination_service, 'grpc-echo.default.svc.cluster.local');
    assert.equal(ok[0].labels.destination_service_name, 'grpc-echo');
    const failed = find(c, 'istio_requests_total', {
      reporter: 'source',
      request_protocol: 'grpc',
      grpc_response_status: '9',
    });
    assert.equal(failed[0]?.value, 1);
    const respMsgs = find(c, 'istio_response_messages_total', {
      reporter: 'source',
      grpc_response_status: '0',
    });
    assert.equal(respMsgs[0]?.value, 6, 'one unary reply plus five streamed messages');
    const reqMsgs = find(c, 'istio_request_messages_total', {
      reporter: 'source',
      grpc_response_status: '0',
    });
    assert.equal(reqMsgs[0]?.value, 2);

    const s = (await scrape(server!)).samples;
    const dest = find(s, 'istio_requests_total', {
      reporter: 'destination',
      request_protocol: 'grpc',
      grpc_response_status: '0',
    });
    assert.equal(dest[0]?.value, 2);
    assert.equal(dest[0].labels.source_workload, 'sleep', 'learnt from the exchanged header');
    assert.equal(dest[0].labels.destination_workload, 'echo-v1');
    assert.equal(dest[0].labels.destination_service, '127.0.0.1', 'the authority, without a port');
  });

  it('TCP: connections and bytes on both reporters', async () => {
    const port = client!.ports.get('outbound_tcp')!;
    const payload = Buffer.alloc(3000, 7);
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let echoed = 0;
        sock.on('data', (d: Buffer) => {
          echoed += d.length;
          if (echoed === payload.length) sock.end();
        });
        sock.on('close', () =>
          echoed === payload.length ? resolve() : reject(new Error(`echoed ${echoed}`)),
        );
        sock.on('error', reject);
        sock.write(payload);
      });
    }
    const tcpLabels = (reporter: string): Record<string, string> => ({ reporter, request_protocol: 'tcp' });
    const c = (await waitFor(
      async () => {
        const x = (await scrape(client!)).samples;
        return find(x, 'istio_tcp_connections_closed_total', tcpLabels('source'))[0]?.value === 2 ? x : null;
      },
      10_000,
      'client TCP close reports',
    ))!;
    const opened = find(c, 'istio_tcp_connections_opened_total', tcpLabels('source'));
    assert.equal(opened[0]?.value, 2);
    assert.deepEqual(
      Object.keys(opened[0].labels),
      LABEL_ORDER.filter((l) => l !== 'response_code' && l !== 'grpc_response_status'),
    );
    assert.equal(opened[0].labels.destination_workload, 'echo-v1', 'from the endpoint metadata');
    assert.equal(opened[0].labels.destination_service, 'tcp-echo.default.svc.cluster.local');
    assert.equal(find(c, 'istio_tcp_sent_bytes_total', tcpLabels('source'))[0]?.value, 6000);
    assert.equal(find(c, 'istio_tcp_received_bytes_total', tcpLabels('source'))[0]?.value, 6000);

    const s = (await waitFor(
      async () => {
        const x = (await scrape(server!)).samples;
        return find(x, 'istio_tcp_connections_closed_total', tcpLabels('destination'))[0]?.value === 2
          ? x
          : null;
      },
      10_000,
      'server TCP close reports',
    ))!;
    const dOpened = find(s, 'istio_tcp_connections_opened_total', tcpLabels('destination'));
    assert.equal(dOpened[0]?.value, 2);
    assert.equal(dOpened[0].labels.destination_workload, 'echo-v1');
    assert.equal(dOpened[0].labels.connection_security_policy, 'none');
    assert.equal(find(s, 'istio_tcp_received_bytes_total', tcpLabels('destination'))[0]?.value, 6000);
  });

  it('mTLS: the destination reporter reads the principals and mutual_tls from the connection', async () => {
    const r = await request(client!.ports.get('outbound_mtls')!, { path: '/s', headers: { host: 'secure' } });
    assert.equal(r.status, 200);
    const s = (await scrape(server!)).samples;
    const dest = find(s, 'istio_requests_total', {
      reporter: 'destination',
      connection_security_policy: 'mutual_tls',
    });
    assert.equal(dest.length, 1, JSON.stringify(find(s, 'istio_requests_total', {})));
    assert.equal(dest[0].value, 1);
    assert.equal(dest[0].labels.source_principal, CLIENT_ID);
    assert.equal(dest[0].labels.destination_principal, SERVER_ID);
    assert.equal(dest[0].labels.source_workload, 'sleep');
    const c = (await scrape(client!)).samples;
    const src = find(c, 'istio_requests_total', {
      reporter: 'source',
      destination_service: 'secure.default.svc.cluster.local',
    });
    assert.equal(src[0]?.value, 1);
    assert.equal(src[0].labels.connection_security_policy, 'unknown');
    assert.equal(src[0].labels.destination_principal, SERVER_ID, 'the one identity the cluster accepts');
    assert.equal(src[0].labels.destination_workload, 'echo-v1');
  });

  it("keeps Istio's cluster and endpoint metadata in /config_dump", async () => {
    const clientDump = (await request(client!.admin, { path: '/config_dump' })).body;
    assert.match(clientDump, /"workload": ?"echo-v1;default;echo;v2;Kubernetes"/);
    const serverDump = (await request(server!.admin, { path: '/config_dump' })).body;
    assert.match(serverDump, /"host": ?"echo\.default\.svc\.cluster\.local"/);
  });

  it('exposes istio_build and passes promtool check metrics', async () => {
    for (const p of [client!, server!]) {
      const { text, samples } = await scrape(p);
      const build = samples.filter((x) => x.name === 'istio_build');
      assert.equal(build.length, 1);
      assert.equal(build[0].labels.component, 'proxy');
      assert.equal(build[0].value, 1);
      const r = spawnSync('promtool', ['check', 'metrics'], {
        input: text,
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(r.error, undefined, 'promtool must be installed (scripts/install-test-deps.sh)');
      // Exit 3 is lint findings only (no HELP lines); a parse failure exits 1 with "error while linting".
      const report = r.stdout + r.stderr;
      assert.ok(r.status === 0 || r.status === 3, report);
      assert.doesNotMatch(report, /error while linting|parsing error/i);
      assert.deepEqual(checkExposition(text), []);
    }
  });
});
