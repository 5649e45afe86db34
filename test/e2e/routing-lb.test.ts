import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

type Up = Awaited<ReturnType<typeof startHttpUpstream>>;

describe('traffic splitting and load balancing end to end', { timeout: 60_000 }, () => {
  const ups: Up[] = [];
  let proxy: RunningProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  before(async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e']) ups.push(await startHttpUpstream({ name }));
    const [a, b, c, d, e] = ups;
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/split' },
                route: {
                  weighted_clusters: {
                    clusters: [
                      { name: 'a', weight: 75 },
                      { name: 'b', weight: 25 },
                    ],
                  },
                },
              },
              {
                match: { prefix: '/sticky' },
                route: { cluster: 'ring', hash_policy: [{ header: { header_name: 'x-user' } }] },
              },
              {
                match: { prefix: '/maglev' },
                route: { cluster: 'maglev', hash_policy: [{ header: { header_name: 'x-user' } }] },
              },
              { match: { prefix: '/rr' }, route: { cluster: 'rr' } },
              {
                match: { prefix: '/cookie' },
                route: {
                  cluster: 'ring',
                  hash_policy: [{ cookie: { name: 'sticky', ttl: '3600s', path: '/' } }],
                },
              },
              { match: { prefix: '/weighted-rr' }, route: { cluster: 'wrr' } },
            ],
          }),
        ],
        [
          staticCluster('a', [{ port: a.port }]),
          staticCluster('b', [{ port: b.port }]),
          staticCluster('ring', [{ port: c.port }, { port: d.port }, { port: e.port }], {
            lb_policy: 'RING_HASH',
          }),
          staticCluster('maglev', [{ port: c.port }, { port: d.port }, { port: e.port }], {
            lb_policy: 'MAGLEV',
          }),
          staticCluster('rr', [{ port: c.port }, { port: d.port }, { port: e.port }]),
          staticCluster('wrr', [
            { port: c.port, weight: 3 },
            { port: d.port, weight: 1 },
          ]),
        ],
      ),
    );
  });
  after(async () => {
    agent.destroy();
    await proxy.stop();
    for (const u of ups) await u.close();
  });

  async function tally(
    n: number,
    path: string,
    headers: (i: number) => http.OutgoingHttpHeaders = () => ({}),
  ) {
    const counts: Record<string, number> = {};
    const byKey = new Map<string, Set<string>>();
    for (let i = 0; i < n; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, n - i) }, (_, j) =>
          request(proxy.port(), { path, agent, headers: headers(i + j) }),
        ),
      );
      batch.forEach((r, j) => {
        const who = String(r.headers['x-upstream']);
        counts[who] = (counts[who] ?? 0) + 1;
        const key = String(headers(i + j)['x-user'] ?? '');
        if (!byKey.has(key)) byKey.set(key, new Set());
        byKey.get(key)!.add(who);
      });
    }
    return { counts, byKey };
  }

  it('weighted_clusters 75/25 holds statistically (2000 requests, 5 sigma)', async () => {
    const { counts } = await tally(2000, '/split');
    // Binomial: expected 500 to b, sigma = sqrt(2000 * 0.25 * 0.75) ≈ 19.4; a 50/50 split would give 1000.
    assert.equal((counts.a ?? 0) + (counts.b ?? 0), 2000);
    assert.ok(Math.abs((counts.b ?? 0) - 500) < 97, JSON.stringify(counts));
  });

  it('RING_HASH and MAGLEV keep each user on one endpoint and spread users', async () => {
    for (const path of ['/sticky', '/maglev']) {
      const { byKey, counts } = await tally(400, path, (i) => ({ 'x-user': `user-${i % 40}` }));
      for (const [user, hosts] of byKey)
        assert.equal(hosts.size, 1, `${path}: ${user} went to ${[...hosts].join(',')}`);
      // 40 users over 3 endpoints: all three in use (the chance one gets none is ~ 3·(2/3)^40 ≈ 3e-7).
      assert.equal(Object.keys(counts).length, 3, `${path}: ${JSON.stringify(counts)}`);
    }
  });

  it('a cookie hash policy sets the cookie once, then every request carrying it lands on one endpoint', async () => {
    const first = await request(proxy.port(), { path: '/cookie' });
    const setCookie = ([] as string[]).concat(first.headers['set-cookie'] ?? []);
    assert.equal(setCookie.length, 1, JSON.stringify(first.headers));
    assert.match(setCookie[0], /^sticky=[^;]+;.*Max-Age=3600/);
    const cookie = setCookie[0].split(';')[0];
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await request(proxy.port(), { path: '/cookie', agent, headers: { cookie } });
      assert.equal(r.headers['set-cookie'], undefined);
      seen.add(String(r.headers['x-upstream']));
    }
    assert.equal(seen.size, 1);
  });

  it('ROUND_ROBIN spreads evenly, and honours endpoint weights', async () => {
    const even = (await tally(300, '/rr')).counts;
    for (const k of ['c', 'd', 'e']) assert.ok(Math.abs(even[k] - 100) <= 2, JSON.stringify(even));
    const weighted = (await tally(400, '/weighted-rr')).counts;
    assert.ok(Math.abs(weighted.c - 300) <= 4 && Math.abs(weighted.d - 100) <= 4, JSON.stringify(weighted));
  });
});
