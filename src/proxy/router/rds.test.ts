import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRouteConfiguration } from './compile.ts';
import { RouteConfigProviders } from './rds.ts';
import type { RouteRequest } from './types.ts';

const req: RouteRequest = {
  authority: 'web',
  path: '/',
  method: 'GET',
  headers: {},
  scheme: 'http',
  sourceIp: '10.0.0.1',
};

const table = (cluster: string) =>
  compileRouteConfiguration(
    {
      name: 'r',
      virtual_hosts: [
        { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
      ],
    },
    'r',
  );

function clusterOf(t: {
  match(r: RouteRequest): ReturnType<ReturnType<typeof table>['match']>;
}): string | null {
  const m = t.match(req);
  return m === null || m.route.action.kind !== 'route' ? null : m.route.action.pickCluster(0).cluster;
}

describe('RDS route tables', () => {
  it('match nothing until a configuration arrives, then the latest one, per request', () => {
    const providers = new RouteConfigProviders();
    const held = providers.get('r');
    assert.equal(held.ready, false);
    assert.equal(held.match(req), null);
    held.update(table('a'));
    assert.equal(held.ready, true);
    assert.equal(clusterOf(held), 'a');
    providers.get('r').update(table('b'));
    assert.equal(clusterOf(held), 'b', 'every holder of the name sees the update');
  });

  it('forget names no listener uses; a holder keeps its last table', () => {
    const providers = new RouteConfigProviders();
    const old = providers.get('r');
    old.update(table('a'));
    providers.get('s');
    providers.retainOnly(new Set(['s']));
    assert.deepEqual([...providers.names()], ['s']);
    assert.equal(providers.peek('r'), undefined);
    assert.equal(clusterOf(old), 'a');
    assert.notEqual(providers.get('r'), old);
  });
});
