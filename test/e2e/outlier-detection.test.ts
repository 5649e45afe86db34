import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

/** An upstream that counts its requests and answers each with `status`. */
async function countingUpstream(
  status: number,
): Promise<{ port: number; hits: number; close(): Promise<void> }> {
  const state = { port: 0, hits: 0, close: async (): Promise<void> => {} };
  const up = await startHttpUpstream({
    handler: (req, res) => {
      state.hits++;
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(String(status));
      });
    },
  });
  state.port = up.port;
  state.close = () => up.close();
  return state;
}

type Counting = Awaited<ReturnType<typeof countingUpstream>>;

describe('outlier detection end to end', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const ups: Counting[] = [];
  // Per cluster: two good upstreams and one (or, for "pct", two) answering 503.
  const clusters: Record<string, Counting[]> = {};

  before(async () => {
    for (const [name, bad] of [
      ['long', 1],
      ['short', 1],
      ['pct', 2],
    ] as const) {
      const set: Counting[] = [];
      for (let i = 0; i < 3; i++) set.push(await countingUpstream(i >= 3 - bad ? 503 : 200));
      clusters[name] = set;
      ups.push(...set);
    }
    const od = (extra: Record<string, unknown>): Record<string, unknown> => ({
      outlier_detection: { consecutive_5xx: 3, max_ejection_percent: 34, ...extra },
    });
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: Object.keys(clusters).map((name) => ({
              match: { prefix: `/${name}` },
              route: { cluster: name },
            })),
          }),
        ],
        [
          // Long enough that the host stays ejected while the test looks at it.
          staticCluster(
            'long',
            clusters.long.map((u) => ({ port: u.port })),
            od({ interval: '0.3s', base_ejection_time: '60s' }),
          ),
          staticCluster(
            'short',
            clusters.short.map((u) => ({ port: u.port })),
            od({ interval: '0.3s', base_ejection_time: '0.5s' }),
          ),
          staticCluster(
            'pct',
            clusters.pct.map((u) => ({ port: u.port })),
            od({ interval: '0.3s', base_ejection_time: '60s' }),
          ),
        ],
      ),
    );
  });
  after(async () => {
    agent.destroy();
    await proxy?.stop();
    for (const u of ups) await u.close();
  });

  async function send(name: string, n: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++)
      statuses.push((await request(proxy.port(), { path: `/${name}`, agent })).status);
    return statuses;
  }

  async function admin(path: string): Promise<string> {
    return (await request(proxy.adminPort, { path })).body;
  }

  function stat(stats: string, cluster: string, name: string): number {
    const m = new RegExp(`^cluster\\.${cluster}\\.outlier_detection\\.${name}: (\\d+)$`, 'm').exec(stats);
    assert.ok(m, `no stat cluster.${cluster}.outlier_detection.${name}`);
    return Number(m[1]);
  }

  it('ejects the failing host: no more traffic, flagged in /clusters, counted in stats', async () => {
    const [good1, good2, bad] = clusters.long;
    // Round robin: the bad host answers every third request; its third 503 ejects it.
    await waitFor(
      async () => (await send('long', 3), bad.hits >= 3),
      10_000,
      'three requests to the bad host',
    );
    assert.equal(bad.hits, 3);
    const badHits = bad.hits;
    const statuses = await send('long', 30);
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(bad.hits, badHits, 'the ejected host got traffic');
    assert.ok(good1.hits > 10 && good2.hits > 10);

    const text = await admin('/clusters');
    assert.ok(text.includes(`long::127.0.0.1:${bad.port}::health_flags::/failed_outlier_check\n`), text);
    assert.ok(text.includes(`long::127.0.0.1:${good1.port}::health_flags::healthy\n`));
    const stats = await admin('/stats');
    assert.equal(stat(stats, 'long', 'ejections_active'), 1);
    assert.equal(stat(stats, 'long', 'ejections_enforced_total'), 1);
    assert.equal(stat(stats, 'long', 'ejections_enforced_consecutive_5xx'), 1);
    assert.equal(stat(stats, 'long', 'ejections_detected_consecutive_5xx'), 1);
    assert.equal(stat(stats, 'long', 'ejections_overflow'), 0);
  });

  it('tries the host again after base_ejection_time', async () => {
    const [, , bad] = clusters.short;
    await waitFor(async () => (await send('short', 3), bad.hits >= 3), 10_000, 'the first ejection');
    const ejectedAt = bad.hits;
    // Ejected for 0.5 s (found by the 0.3 s sweep), then back in the rotation and hit again.
    await waitFor(
      async () => (await send('short', 3), bad.hits > ejectedAt),
      10_000,
      'the ejected host to be tried again',
    );
    const stats = await admin('/stats');
    assert.ok(stat(stats, 'short', 'ejections_enforced_consecutive_5xx') >= 1);
  });

  it('does not eject a second host beyond max_ejection_percent', async () => {
    const [good, bad1, bad2] = clusters.pct;
    await waitFor(
      async () => {
        await send('pct', 3);
        return stat(await admin('/stats'), 'pct', 'ejections_overflow') >= 1;
      },
      10_000,
      'an overflowed ejection',
    );
    const stats = await admin('/stats');
    assert.equal(stat(stats, 'pct', 'ejections_active'), 1);
    assert.equal(stat(stats, 'pct', 'ejections_enforced_total'), 1);
    const text = await admin('/clusters');
    const flagged = [bad1, bad2].filter((u) =>
      text.includes(`pct::127.0.0.1:${u.port}::health_flags::/failed_outlier_check\n`),
    );
    assert.equal(flagged.length, 1, 'exactly one of the two failing hosts is ejected');
    assert.ok(text.includes(`pct::127.0.0.1:${good.port}::health_flags::healthy\n`));
    // The host left in service keeps getting its share of the traffic.
    const stillIn = flagged[0] === bad1 ? bad2 : bad1;
    const before = stillIn.hits;
    await send('pct', 6);
    assert.ok(stillIn.hits > before);
  });
});
