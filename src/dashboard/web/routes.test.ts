import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeHash, parseRoute, serviceHash } from './routes.ts';

describe('dashboard hash routes', () => {
  it('parses each view and falls back to the graph', () => {
    assert.deepEqual(parseRoute(''), { view: 'graph' });
    assert.deepEqual(parseRoute('#/'), { view: 'graph' });
    assert.deepEqual(parseRoute('#/proxies'), { view: 'proxies' });
    assert.deepEqual(parseRoute('#/config'), { view: 'config' });
    assert.deepEqual(parseRoute('#/cost'), { view: 'cost' });
    assert.deepEqual(parseRoute('#/service/default/echo'), {
      view: 'service',
      namespace: 'default',
      name: 'echo',
    });
    assert.deepEqual(parseRoute('#/workload/shop/reviews-v2'), {
      view: 'workload',
      namespace: 'shop',
      name: 'reviews-v2',
    });
    for (const bad of [
      '#/service/default',
      '#/service/a/b/c',
      '#/nothing',
      '#/proxies/x',
      '#/cost/x',
      '#/service/%E0/x',
    ])
      assert.deepEqual(parseRoute(bad), { view: 'graph' }, bad);
  });

  it('builds the hash of a node page and reads it back', () => {
    const h = serviceHash('my ns', 'a/b');
    assert.equal(h, '#/service/my%20ns/a%2Fb');
    assert.deepEqual(parseRoute(h), { view: 'service', namespace: 'my ns', name: 'a/b' });
    assert.equal(
      nodeHash({ kind: 'workload', namespace: 'default', name: 'client' }),
      '#/workload/default/client',
    );
  });
});
