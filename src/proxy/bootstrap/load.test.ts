import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { compileBootstrap, loadBootstrap } from './load.ts';

const fixtures = new URL('../../../test/fixtures/bootstrap/', import.meta.url);
const fixture = (name: string): string => new URL(name, fixtures).pathname;

const ENDPOINTS = (port: number): unknown => ({
  cluster_name: 'x',
  endpoints: [
    {
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
      ],
    },
  ],
});
const cluster = (name: string, extra: Record<string, unknown> = {}): unknown => ({
  name,
  type: 'STATIC',
  load_assignment: ENDPOINTS(9000),
  ...extra,
});
const HCM_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_URL = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const tcpListener = (name: string, port: number, target: string): unknown => ({
  name,
  address: { socket_address: { address: '127.0.0.1', port_value: port } },
  filter_chains: [{ filters: [{ typed_config: { '@type': TCP_URL, stat_prefix: name, cluster: target } }] }],
});
const httpListener = (name: string, port: number, routeCluster: string): unknown => ({
  name,
  address: { socket_address: { address: '127.0.0.1', port_value: port } },
  filter_chains: [
    {
      filters: [
        {
          typed_config: {
            '@type': HCM_URL,
            stat_prefix: name,
            route_config: {
              virtual_hosts: [
                {
                  name: 'v',
                  domains: ['*'],
                  routes: [{ match: { prefix: '/' }, route: { cluster: routeCluster } }],
                },
              ],
            },
            http_filters: [{ name: 'envoy.filters.http.router' }],
          },
        },
      ],
    },
  ],
});

/** The value at a path of keys inside nested JSON. */
function dig(value: unknown, ...keys: (string | number)[]): unknown {
  return keys.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], value);
}

function rejects(json: unknown, message: string): void {
  assert.throws(
    () => compileBootstrap(json, 'test.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('loadBootstrap: valid files', () => {
  it('loads an HTTP listener bootstrap (YAML)', async () => {
    const file = fixture('http.yaml');
    const b = await loadBootstrap(file);
    assert.equal(b.source, file);
    assert.deepEqual(b.node, {
      id: 'sidecar~10.0.0.1~web-1.default~default.svc.cluster.local',
      cluster: 'web',
      metadata: { NAMESPACE: 'default', INTERCEPTION_MODE: 'NONE' },
      locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: '' },
    });
    assert.deepEqual(b.admin, { address: { host: '127.0.0.1', port: 15000 } });
    assert.deepEqual(
      b.clusters.map((c) => [c.name, c.lbPolicy]),
      [
        ['web', 'ROUND_ROBIN'],
        ['api_v1', 'LEAST_REQUEST'],
        ['api_v2', 'ROUND_ROBIN'],
      ],
    );
    assert.equal(b.listeners.length, 1);
    const [listener] = b.listeners;
    assert.equal(listener.name, 'http_8080');
    assert.deepEqual(listener.address, { host: '0.0.0.0', port: 8080 });
    const filter = listener.filterChains[0].filters[0];
    assert.equal(filter.kind, 'http_connection_manager');
    if (filter.kind === 'http_connection_manager') {
      assert.equal(filter.hcm.statPrefix, 'ingress_http');
      assert.equal(filter.hcm.streamIdleTimeoutMs, 30_000);
      assert.equal(filter.hcm.useRemoteAddress, true);
      assert.deepEqual([...filter.hcm.upgradeTypes], ['websocket']);
    }
    // The normalized form keeps proto names and drops proto3 defaults (codec_type AUTO).
    const hcm = dig(
      b.normalized,
      'static_resources',
      'listeners',
      0,
      'filter_chains',
      0,
      'filters',
      0,
      'typed_config',
    );
    assert.equal(dig(hcm, '@type'), HCM_URL);
    assert.equal(dig(hcm, 'codec_type'), undefined);
    assert.equal(dig(hcm, 'stat_prefix'), 'ingress_http');
  });

  it('loads a TCP proxy bootstrap with an unnamed IPv6 listener', async () => {
    const b = await loadBootstrap(fixture('tcp-proxy.yaml'));
    assert.deepEqual(b.node, { id: '', cluster: '', metadata: {}, locality: undefined });
    assert.equal(b.admin, undefined);
    const [listener] = b.listeners;
    assert.equal(listener.name, '::1_9000');
    assert.equal(listener.perConnectionBufferLimitBytes, 65536);
    assert.deepEqual(listener.filterChains[0].filters[0], {
      kind: 'tcp_proxy',
      name: 'envoy.filters.network.tcp_proxy',
      tcpProxy: {
        statPrefix: 'db',
        clusters: [{ name: 'db', weight: 1 }],
        idleTimeoutMs: 600_000,
        accessLog: [],
      },
    });
  });

  it('loads a JSON bootstrap written with camelCase names', async () => {
    const b = await loadBootstrap(fixture('camel-case.json'));
    assert.deepEqual(b.node.locality, { region: '', zone: '', subZone: 'rack-7' });
    const [listener] = b.listeners;
    assert.deepEqual(listener.address, { host: '127.0.0.1', port: 10000 });
    assert.deepEqual(listener.filterChains[0].match?.prefixRanges, [{ address: '10.0.0.0', prefixLen: 8 }]);
    const filter = listener.filterChains[0].filters[0];
    assert.equal(filter.kind, 'http_connection_manager');
    if (filter.kind === 'http_connection_manager') {
      assert.equal(filter.hcm.codecType, 'HTTP1');
      assert.equal(filter.hcm.maxRequestHeadersKb, 96);
      assert.equal(filter.hcm.idleTimeoutMs, 120_000);
      assert.equal(filter.hcm.maxRequestsPerConnection, 100);
      assert.equal(filter.hcm.http2.maxConcurrentStreams, 50);
      assert.equal(filter.hcm.generateRequestId, false);
      assert.equal(filter.hcm.serverName, 'edge');
      assert.equal(filter.hcm.serverHeaderTransformation, 'PASS_THROUGH');
      assert.equal(filter.hcm.drainTimeoutMs, 1000);
    }
    assert.equal(b.clusters[0].connectTimeoutMs, 1000);
    assert.equal(
      dig(b.normalized, 'static_resources', 'listeners', 0, 'address', 'socket_address', 'port_value'),
      10000,
    );
  });

  it('accepts an empty static_resources and no listeners', () => {
    const b = compileBootstrap({ node: { id: 'x' } }, 'inline');
    assert.deepEqual(b.listeners, []);
    assert.deepEqual(b.clusters, []);
    assert.equal(b.node.id, 'x');
  });

  it('lets several listeners use port 0', () => {
    const b = compileBootstrap(
      {
        static_resources: {
          listeners: [tcpListener('a', 0, 'c'), tcpListener('b', 0, 'c')],
          clusters: [cluster('c')],
        },
      },
      'inline',
    );
    assert.equal(b.listeners.length, 2);
  });
});

describe('loadBootstrap: file and syntax errors', () => {
  let dir = '';
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'weft-bootstrap-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, text: string): Promise<string> => {
    const file = path.join(dir, name);
    await fs.writeFile(file, text);
    return file;
  };

  it('locates YAML syntax errors as file:line:col', async () => {
    const file = await write('bad.yaml', 'static_resources:\n  clusters: [\n    { name: a }\n');
    await assert.rejects(loadBootstrap(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
      return true;
    });
    const dup = await write('dup.yaml', 'node:\n  id: a\n  id: b\n');
    await assert.rejects(loadBootstrap(dup), { message: `${dup}:3:3: Map keys must be unique` });
  });

  it('locates JSON syntax errors too', async () => {
    const file = await write('bad.json', '{\n  "node": {"id": "a"\n}\n');
    await assert.rejects(
      loadBootstrap(file),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file}:`),
    );
  });

  it('refuses several YAML documents in one file', async () => {
    const file = await write('multi.yaml', 'node: {id: a}\n---\nnode: {id: b}\n');
    await assert.rejects(loadBootstrap(file), {
      message: `${file}:2:1: a bootstrap file holds exactly one YAML document`,
    });
  });

  it('reports a missing file and an empty one', async () => {
    const missing = path.join(dir, 'missing.yaml');
    await assert.rejects(
      loadBootstrap(missing),
      (err: unknown) =>
        err instanceof ConfigError && err.message.startsWith(`cannot read bootstrap file ${missing}: `),
    );
    await assert.rejects(loadBootstrap(await write('empty.yaml', '# nothing\n')), {
      message: 'the bootstrap is empty',
    });
    await assert.rejects(loadBootstrap(await write('list.yaml', '- a\n')), {
      message: 'expected an object, got an array',
    });
  });

  it('resolves YAML anchors and merge keys', async () => {
    const file = await write(
      'anchors.yaml',
      [
        'static_resources:',
        '  clusters:',
        '    - &base { name: a, type: STATIC, connect_timeout: 2s }',
        '    - <<: *base',
        '      name: b',
      ].join('\n'),
    );
    const b = await loadBootstrap(file);
    assert.deepEqual(
      b.clusters.map((c) => [c.name, c.connectTimeoutMs]),
      [
        ['a', 2000],
        ['b', 2000],
      ],
    );
  });
});

describe('compileBootstrap: errors', () => {
  it('names the first bad field exactly', () => {
    rejects(
      { static_resources: { clusters: [cluster('a'), cluster('b', { lb_policy: 'ROUND_ROBINN' })] } },
      'static_resources.clusters[1].lb_policy: unknown value "ROUND_ROBINN"',
    );
    rejects(
      { static_resources: { clusters: [cluster('a', { conect_timeout: '1s' })] } },
      'static_resources.clusters[0].conect_timeout: unknown field "conect_timeout" (did you mean "connect_timeout"?)',
    );
  });

  it('refuses what Weft does not do (yet)', () => {
    rejects(
      { dynamic_resources: { ads_config: { api_type: 'REST' } } },
      'dynamic_resources.ads_config.api_type: REST is not supported by Weft (GRPC or DELTA_GRPC)',
    );
    rejects({ layered_runtime: { layers: [] } }, 'layered_runtime: not supported by Weft (yet)');
    rejects({ stats_flush_interval: '5s' }, 'stats_flush_interval: not supported by Weft');
    rejects(
      { static_resources: { secrets: [{ name: 's' }] } },
      'static_resources.secrets[0]: tls_certificate or validation_context is required',
    );
    rejects(
      {
        admin: {
          address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
          access_log: [{ name: 'x' }],
        },
      },
      'admin.access_log: not supported by Weft',
    );
    rejects(
      { admin: { address: { pipe: { path: '/tmp/admin' } } } },
      'admin.address.pipe: not supported by Weft',
    );
    rejects({ admin: {} }, 'admin.address: required');
    rejects({ node: { id: 'a', user_agent_name: 'x' } }, 'node.user_agent_name: not supported by Weft');
  });

  it('checks that every referenced cluster exists', () => {
    rejects(
      { static_resources: { listeners: [httpListener('h', 1, 'nope')], clusters: [cluster('c')] } },
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope" (not in static_resources.clusters)',
    );
    rejects(
      { static_resources: { listeners: [tcpListener('t', 1, 'nope')], clusters: [cluster('c')] } },
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.cluster: unknown cluster "nope" (not in static_resources.clusters)',
    );
  });

  it('refuses duplicate names and addresses', () => {
    rejects(
      { static_resources: { clusters: [cluster('a'), cluster('a')] } },
      'static_resources.clusters[1].name: duplicate cluster name "a" (also static_resources.clusters[0])',
    );
    rejects(
      {
        static_resources: {
          listeners: [tcpListener('a', 1, 'c'), tcpListener('a', 2, 'c')],
          clusters: [cluster('c')],
        },
      },
      'static_resources.listeners[1].name: duplicate listener name "a" (also static_resources.listeners[0])',
    );
    rejects(
      {
        static_resources: {
          listeners: [tcpListener('a', 1, 'c'), tcpListener('b', 1, 'c')],
          clusters: [cluster('c')],
        },
      },
      'static_resources.listeners[1].address: 127.0.0.1:1 is already the address of static_resources.listeners[0]',
    );
  });

  it('refuses a bootstrap that is not an object', () => {
    rejects('text', 'expected an object, got "text"');
    rejects(null, 'the bootstrap is empty');
  });
});

describe('compileBootstrap: stats_config', () => {
  it('compiles custom tags after or instead of the defaults, and refuses what it cannot honour', () => {
    const b = compileBootstrap(
      { stats_config: { stats_tags: [{ tag_name: 'team', fixed_value: 'payments' }] } },
      'test.yaml',
    );
    assert.deepEqual(b.stats, {
      useAllDefaultTags: true,
      statsTags: [{ name: 'team', fixedValue: 'payments' }],
    });
    const only = compileBootstrap(
      {
        stats_config: {
          use_all_default_tags: false,
          stats_tags: [{ tag_name: 'envoy.cluster_name', regex: String.raw`^cluster\.((.+?)\.)` }],
        },
      },
      'test.yaml',
    );
    assert.equal(only.stats?.useAllDefaultTags, false);
    rejects(
      { stats_config: { stats_tags: [{ tag_name: 'envoy.cluster_name', regex: 'x' }] } },
      `stats_config.stats_tags[0].tag_name: "envoy.cluster_name" is one of Envoy's default tags; set use_all_default_tags: false to redefine it`,
    );
    rejects(
      { stats_config: { stats_tags: [{ tag_name: 'x', regex: '(' }] } },
      'stats_config.stats_tags[0].regex: does not compile: Invalid regular expression: /(/d: Unterminated group',
    );
    rejects(
      { stats_config: { stats_tags: [{ tag_name: 'x' }] } },
      'stats_config.stats_tags[0]: needs regex or fixed_value',
    );
    rejects(
      { stats_config: { stats_matcher: { reject_all: true } } },
      'stats_config.stats_matcher: not supported by Weft (yet)',
    );
  });
});
