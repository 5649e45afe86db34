import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { setLogLevel } from '../../core/logger.ts';
import { ListenerManager } from '../listener/listener-manager.ts';
import type { ListenerConfig } from '../listener/types.ts';
import { RouteConfigProviders } from '../router/rds.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { DynamicConfig } from './dynamic-config.ts';
import { TYPE_URL } from './type-urls.ts';
import type { XdsUpdate } from './types.ts';

setLogLevel('error');

const ADS = { ads: {} };
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router' };

function update(
  typeUrl: string,
  version: string,
  resources: JsonObject[],
  removed: string[] = [],
): XdsUpdate {
  const key = typeUrl === TYPE_URL.endpoint ? 'cluster_name' : 'name';
  return {
    typeUrl,
    version,
    resources: resources.map((json) => ({
      name: json[key] as string,
      version,
      json: { '@type': typeUrl, ...json },
    })),
    removed,
  };
}

const edsCluster = (name: string, extra: JsonObject = {}): JsonObject => ({
  name,
  type: 'EDS',
  eds_cluster_config: { eds_config: ADS },
  ...extra,
});
const staticCluster = (name: string, port: number): JsonObject => ({
  name,
  type: 'STATIC',
  load_assignment: {
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
        ],
      },
    ],
  },
});
const cla = (name: string, port: number): JsonObject => ({
  cluster_name: name,
  endpoints: [
    {
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
      ],
    },
  ],
});
const listener = (name: string, port: number, hcm: JsonObject): JsonObject => ({
  name,
  address: { socket_address: { address: '127.0.0.1', port_value: port } },
  filter_chains: [
    { filters: [{ typed_config: { '@type': HCM, stat_prefix: name, http_filters: [ROUTER], ...hcm } }] },
  ],
});
const rds = (name: string, routeName: string, port = 0, extra: JsonObject = {}): JsonObject =>
  listener(name, port, { rds: { route_config_name: routeName, config_source: ADS }, ...extra });
const routes = (name: string, cluster: string, extra: JsonObject = {}): JsonObject => ({
  name,
  virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  ...extra,
});

const live: { stop(): void }[] = [];
afterEach(() => {
  for (const x of live.splice(0)) x.stop();
});

function world(
  opts: { lds?: number; cds?: number; staticListeners?: ListenerConfig[]; staticClusters?: string[] } = {},
) {
  const stats = new StatsStore();
  const clusters = new ClusterManager(stats);
  const routeProviders = new RouteConfigProviders();
  const listeners = new ListenerManager({ clusters, stats, routes: routeProviders }, () => 100);
  const dynamic = new DynamicConfig({
    clusters,
    listeners,
    routes: routeProviders,
    stats,
    staticListeners: opts.staticListeners ?? [],
    staticClusters: (opts.staticClusters ?? []).map((name) => ({ name }) as never),
    lds: { initialFetchTimeoutMs: opts.lds ?? 10_000 },
    cds: { initialFetchTimeoutMs: opts.cds ?? 10_000 },
  });
  dynamic.start();
  live.push({
    stop: () => {
      dynamic.stop();
      listeners.destroy();
      clusters.destroy();
    },
  });
  let initialized = false;
  void dynamic.initialized.then(() => (initialized = true));
  const stat = (name: string): number =>
    Number(new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(stats.renderText())?.[1] ?? NaN);
  return { dynamic, clusters, listeners, routeProviders, stats, stat, isInitialized: () => initialized };
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('dynamic configuration: clusters and endpoints', () => {
  it('an EDS cluster warms until its assignment arrives; readiness waits for it', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [edsCluster('web')]));
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', []));
    assert.equal(w.clusters.get('web'), undefined, 'not active while warming');
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.endpoint)], ['web']);
    assert.equal(w.stat('cluster_manager.warming_clusters'), 1);
    await tick();
    assert.equal(w.isInitialized(), false);
    await w.dynamic.apply(update(TYPE_URL.endpoint, 'e1', [cla('web', 8080)]));
    assert.equal(w.clusters.get('web')?.cluster.hosts()[0].port, 8080);
    assert.equal(w.stat('cluster_manager.warming_clusters'), 0);
    await tick();
    assert.equal(w.isInitialized(), true);
  });

  it('a warming cluster goes active without endpoints after its initial fetch timeout', async () => {
    const w = world();
    await w.dynamic.apply(
      update(TYPE_URL.cluster, 'c1', [
        edsCluster('web', {
          eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: '0.03s' } },
        }),
      ]),
    );
    assert.equal(w.clusters.get('web'), undefined);
    await tick(80);
    assert.deepEqual(w.clusters.get('web')?.cluster.hosts(), []);
  });

  it('an updated EDS cluster takes the assignment already received, at once', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [edsCluster('web')]));
    await w.dynamic.apply(update(TYPE_URL.endpoint, 'e1', [cla('web', 8080)]));
    const before = w.clusters.get('web');
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c2', [edsCluster('web', { lb_policy: 'RANDOM' })]));
    const after = w.clusters.get('web')!;
    assert.notEqual(after, before);
    assert.equal(after.cluster.hosts()[0].port, 8080);
    assert.equal(w.stat('cluster_manager.cluster_modified'), 1);
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c3', [edsCluster('web', { lb_policy: 'RANDOM' })]));
    assert.equal(w.clusters.get('web'), after, 'unchanged: untouched');
  });

  it('refuses a cluster named like a static one, and a bad one among good ones, changing nothing', async () => {
    const w = world({ staticClusters: ['xds-grpc'] });
    await assert.rejects(w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [staticCluster('xds-grpc', 1)])), {
      message: 'Cluster "xds-grpc": name: a static cluster (from the bootstrap) has this name',
    });
    await assert.rejects(
      w.dynamic.apply(
        update(TYPE_URL.cluster, 'c2', [
          staticCluster('good', 1),
          { ...staticCluster('bad', 1), connect_timeout: '0s' },
        ]),
      ),
      { message: 'Cluster "bad": connect_timeout: must be greater than 0' },
    );
    assert.equal(w.clusters.get('good'), undefined);
    assert.equal(w.stat('cluster_manager.cds.update_rejected'), 2);
    assert.match(
      w.dynamic.snapshot().failures.get(`${TYPE_URL.cluster} bad`)?.details ?? '',
      /connect_timeout/,
    );
  });

  it('removes clusters and forgets the endpoints no cluster needs', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [edsCluster('web'), staticCluster('s', 1)]));
    await w.dynamic.apply(update(TYPE_URL.endpoint, 'e1', [cla('web', 8080)]));
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c2', [], ['web', 's']));
    assert.equal(w.clusters.get('web'), undefined);
    assert.equal(w.clusters.get('s'), undefined);
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.endpoint)], []);
    assert.deepEqual(w.dynamic.snapshot().endpoints, []);
    assert.equal(w.stat('cluster_manager.cluster_removed'), 2);
  });
});

describe('dynamic configuration: listeners and routes', () => {
  it('a new RDS listener is bound only once its routes arrive', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', []));
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [rds('http', 'r')]));
    assert.equal(w.listeners.get('http'), undefined);
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.route)], ['r']);
    assert.equal(w.stat('listener_manager.total_listeners_warming'), 1);
    await tick();
    assert.equal(w.isInitialized(), false);
    await w.dynamic.apply(update(TYPE_URL.route, 'r1', [routes('r', 'web')]));
    assert.ok(w.listeners.get('http')!.boundPort > 0);
    assert.equal(w.stat('http.http.rds.r.update_success'), 1);
    await tick();
    assert.equal(w.isInitialized(), true);
  });

  it('an updated listener naming new routes keeps its old version serving until they arrive', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [rds('http', 'r')]));
    await w.dynamic.apply(update(TYPE_URL.route, 'r1', [routes('r', 'web')]));
    const active = w.listeners.get('http')!;
    await w.dynamic.apply(update(TYPE_URL.listener, 'l2', [rds('http', 'r2')]));
    assert.equal(
      active.config.filterChains[0].filters[0].kind === 'http_connection_manager' &&
        active.config.filterChains[0].filters[0].hcm.rds?.routeConfigName,
      'r',
    );
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.route)].sort(), ['r', 'r2']);
    await w.dynamic.apply(update(TYPE_URL.route, 'r2', [routes('r2', 'web')]));
    const now = w.listeners.get('http')!;
    assert.equal(now, active, 'same address: same ActiveListener, updated in place');
    assert.equal(
      now.config.filterChains[0].filters[0].kind === 'http_connection_manager' &&
        now.config.filterChains[0].filters[0].hcm.rds?.routeConfigName,
      'r2',
    );
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.route)], ['r2'], 'the old route name is let go');
    assert.deepEqual([...w.routeProviders.names()], ['r2']);
  });

  it('a listener removed while warming is never activated', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [rds('http', 'r')]));
    await w.dynamic.apply(update(TYPE_URL.listener, 'l2', [], ['http']));
    await w.dynamic.apply(update(TYPE_URL.route, 'r1', [routes('r', 'web')]));
    assert.equal(w.listeners.get('http'), undefined);
    assert.deepEqual([...w.dynamic.resourceNames(TYPE_URL.route)], []);
  });

  it('checks the clusters of inline routes (validate_clusters defaults to true) and of RDS routes that ask', async () => {
    const w = world();
    const inline = listener('http', 0, { route_config: routes('inline', 'nope') });
    await assert.rejects(w.dynamic.apply(update(TYPE_URL.listener, 'l1', [inline])), {
      message:
        'Listener "http": filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope"',
    });
    await w.dynamic.apply(
      update(TYPE_URL.listener, 'l2', [
        listener('http', 0, { route_config: routes('inline', 'nope', { validate_clusters: false }) }),
      ]),
    );
    await w.dynamic.apply(update(TYPE_URL.listener, 'l3', [rds('other', 'r')]));
    await assert.rejects(
      w.dynamic.apply(update(TYPE_URL.route, 'r1', [routes('r', 'nope', { validate_clusters: true })])),
      {
        message: 'RouteConfiguration "r": virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope"',
      },
    );
    await w.dynamic.apply(update(TYPE_URL.route, 'r2', [routes('r', 'nope')]));
    assert.equal(w.stat('http.other.rds.r.update_rejected'), 1);
    assert.equal(w.stat('http.other.rds.r.update_success'), 1);
  });

  it('refuses two listeners on one address, and a name taken by a static listener', async () => {
    const w = world({
      staticListeners: [
        {
          name: 'admin-ish',
          address: { host: '127.0.0.1', port: 15099 },
          filterChains: [],
          defaultFilterChain: undefined,
          perConnectionBufferLimitBytes: 0,
          trafficDirection: 'UNSPECIFIED',
        },
      ],
    });
    await assert.rejects(
      w.dynamic.apply(update(TYPE_URL.listener, 'l1', [rds('a', 'r', 15098), rds('b', 'r', 15098)])),
      {
        message: 'Listener "b": address: 127.0.0.1:15098 is already the address of listener "a"',
      },
    );
    await assert.rejects(w.dynamic.apply(update(TYPE_URL.listener, 'l2', [rds('c', 'r', 15099)])), {
      message: 'Listener "c": address: 127.0.0.1:15099 is already the address of listener "admin-ish"',
    });
    await assert.rejects(w.dynamic.apply(update(TYPE_URL.listener, 'l3', [rds('admin-ish', 'r')])), {
      message: 'Listener "admin-ish": name: a static listener (from the bootstrap) has this name',
    });
    assert.equal(w.stat('listener_manager.lds.update_rejected'), 3);
  });

  it('refuses an update whose socket cannot be bound, leaving the rest as it was', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const w = world();
      await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [staticCluster('web', 1)]));
      const inline = (name: string, p: number): JsonObject =>
        listener(name, p, { route_config: routes('x', 'web') });
      await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [inline('ok', 0)]));
      const ok = w.listeners.get('ok');
      await assert.rejects(
        w.dynamic.apply(update(TYPE_URL.listener, 'l2', [inline('ok', 0), inline('new', port)])),
        (e: Error) => /cannot bind listener "new" to 127\.0\.0\.1:\d+: .*EADDRINUSE/.test(e.message),
      );
      assert.equal(w.listeners.get('new'), undefined);
      assert.equal(w.listeners.get('ok'), ok);
      assert.equal(w.stat('listener_manager.listener_create_failure'), 1);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it('moves a listener whose address changed to a new socket, and frees the old one', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.cluster, 'c1', [staticCluster('web', 1)]));
    const inline = (p: number): JsonObject => listener('http', p, { route_config: routes('x', 'web') });
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [inline(0)]));
    const first = w.listeners.get('http')!;
    await w.dynamic.apply(
      update(TYPE_URL.listener, 'l2', [
        { ...inline(0), address: { socket_address: { address: '127.0.0.2', port_value: 0 } } },
      ]),
    );
    const moved = w.listeners.get('http')!;
    assert.notEqual(moved, first);
    assert.equal(moved.config.address.host, '127.0.0.2');
    await tick(20);
    await assert.rejects(
      new Promise((resolve, reject) =>
        net.connect(first.boundPort, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
    );
  });
});

describe('dynamic configuration: readiness', () => {
  it('goes on without LDS and CDS after their initial fetch timeouts', async () => {
    const w = world({ lds: 30, cds: 30 });
    assert.equal(w.isInitialized(), false);
    await tick(80);
    assert.equal(w.isInitialized(), true);
    assert.equal(w.stat('listener_manager.lds.init_fetch_timeout'), 1);
    assert.equal(w.stat('cluster_manager.cds.init_fetch_timeout'), 1);
  });

  it('counts a refused first response as initialized, as Envoy does', async () => {
    const w = world();
    await w.dynamic.apply(update(TYPE_URL.listener, 'l1', [])).catch(() => undefined);
    await w.dynamic
      .apply(update(TYPE_URL.cluster, 'c1', [{ name: 'bad', lb_policy: 99 }]))
      .catch(() => undefined);
    await tick();
    assert.equal(w.isInitialized(), true);
  });
});
