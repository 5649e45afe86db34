import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { normalize } from '../config-proto/normalize.ts';
import { RouteConfigProviders } from '../router/rds.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { compileListener } from './compile.ts';
import { ListenerManager } from './listener-manager.ts';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** A chain answering `body` directly, so no upstream is needed. */
function chain(body: string, match?: JsonObject): JsonObject {
  return {
    ...(match ? { filter_chain_match: match } : {}),
    filters: [
      {
        typed_config: {
          '@type': HCM,
          stat_prefix: 'l',
          route_config: {
            virtual_hosts: [
              {
                name: 'v',
                domains: ['*'],
                routes: [
                  { match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } },
                ],
              },
            ],
          },
          http_filters: [{ name: 'envoy.filters.http.router' }],
        },
      },
    ],
  };
}

/** Chain 0 takes connections from 127.0.0.1; the default chain takes the rest. */
function listenerJson(loopbackBody: string, defaultBody: string): JsonObject {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      chain(loopbackBody, { source_prefix_ranges: [{ address_prefix: '127.0.0.1', prefix_len: 32 }] }),
    ],
    default_filter_chain: chain(defaultBody),
  };
}

function compiled(json: JsonObject): { config: ReturnType<typeof compileListener>; keys: string[] } {
  const normalized = normalize('envoy.config.listener.v3.Listener', json, '') as JsonObject;
  const chains = [
    ...(normalized.filter_chains as JsonObject[]),
    normalized.default_filter_chain as JsonObject,
  ];
  return { config: compileListener(normalized, ''), keys: chains.map((c) => JSON.stringify(c)) };
}

function get(
  port: number,
  agent: http.Agent,
): Promise<{ body: string; connection: string | undefined; socket: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({ body, connection: res.headers.connection, socket: req.socket?.localPort ?? 0 }),
      );
    });
    req.on('error', reject);
  });
}

describe('listener updates', () => {
  const stats = new StatsStore();
  const clusters = new ClusterManager(stats);
  const manager = new ListenerManager({ clusters, stats, routes: new RouteConfigProviders() }, () => 300);
  after(() => manager.destroy());

  it('keeps the socket and the unchanged chains (and their connections); changed chains drain', async () => {
    const v1 = compiled(listenerJson('loopback-1', 'default-1'));
    manager.commit(v1.config, v1.keys, await manager.prepare(v1.config, v1.keys));
    const listener = manager.get('l')!;
    const port = listener.boundPort;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await get(port, agent);
    assert.equal(first.body, 'loopback-1');

    // Only the default chain changes: the loopback connection is untouched.
    const v2 = compiled(listenerJson('loopback-1', 'default-2'));
    assert.equal(await manager.prepare(v2.config, v2.keys), null, 'same address: nothing to bind');
    assert.equal(manager.commit(v2.config, v2.keys, null), 'in_place');
    const second = await get(port, agent);
    assert.equal(second.socket, first.socket, 'same connection');
    assert.equal(second.connection, 'keep-alive');
    assert.equal(listener.boundPort, port);

    // The loopback chain changes: its connection finishes the next request on the old chain, then closes.
    const v3 = compiled(listenerJson('loopback-3', 'default-2'));
    manager.commit(v3.config, v3.keys, null);
    const third = await get(port, agent);
    assert.equal(third.body, 'loopback-1', 'an existing connection finishes on its old chain');
    assert.equal(third.connection, 'close');
    const fourth = await get(port, agent);
    assert.equal(fourth.body, 'loopback-3', 'a new connection takes the new chain');
    assert.notEqual(fourth.socket, first.socket);
    agent.destroy();
  });

  it('closes connections left idle on a drained chain when the drain period ends', async () => {
    const listener = manager.get('l')!;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await get(listener.boundPort, agent);
    assert.equal(listener.connectionCount(), 1);
    const v4 = compiled(listenerJson('loopback-4', 'default-2'));
    manager.commit(v4.config, v4.keys, null);
    assert.equal(listener.connectionCount(), 1, 'an idle connection is not cut at once');
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(listener.connectionCount(), 0);
    agent.destroy();
  });

  it('a removed listener stops accepting; its in-flight connections drain', async () => {
    const port = manager.get('l')!.boundPort;
    assert.equal(manager.remove('l'), true);
    assert.equal(manager.get('l'), undefined);
    assert.equal(manager.drainingCount(), 1);
    await assert.rejects(get(port, new http.Agent()));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(manager.drainingCount(), 0, 'nothing left to drain');
  });
});
