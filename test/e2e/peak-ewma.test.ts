/**
 * PEAK_EWMA end to end: a proxy started from a bootstrap whose cluster selects Weft's peak-EWMA
 * policy (a TypedStruct in load_balancing_policy, validated like any other bootstrap field) in front
 * of one fast and one slow upstream. Counts only, no timing assertions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

type Up = Awaited<ReturnType<typeof startHttpUpstream>>;

const SLOW_MS = 40;
const CONCURRENCY = 4;

function answer(name: string, delayMs: number) {
  return (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    const send = (): void => {
      res.writeHead(200, { 'x-upstream': name });
      res.end(name);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
}

describe('PEAK_EWMA end to end', { timeout: 60_000 }, () => {
  let fast: Up;
  let slow: Up;
  let proxy: RunningProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  before(async () => {
    fast = await startHttpUpstream({ handler: answer('fast', 0) });
    slow = await startHttpUpstream({ handler: answer('slow', SLOW_MS) });
    proxy = await startProxy(
      bootstrapDoc(
        [httpListener({ routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] })],
        [
          staticCluster('backend', [{ port: fast.port }, { port: slow.port }], {
            load_balancing_policy: {
              policies: [
                {
                  typed_extension_config: {
                    name: 'weft.lb.peak_ewma',
                    typed_config: {
                      '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
                      type_url: 'weft.dev/lb/peak_ewma',
                      value: { decay: '10s', default_rtt: '0.030s' },
                    },
                  },
                },
              ],
            },
          }),
        ],
      ),
    );
  });
  after(async () => {
    agent.destroy();
    await proxy?.stop();
    await fast?.close();
    await slow?.close();
  });

  async function tally(n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        const r = await request(proxy.port(), { path: '/', agent });
        assert.equal(r.status, 200);
        const who = String(r.headers['x-upstream']);
        counts[who] = (counts[who] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return counts;
  }

  it('after warm-up, sends clearly more requests to the fast upstream', async () => {
    await tally(40);
    const n = 400;
    const counts = await tally(n);
    assert.equal((counts.fast ?? 0) + (counts.slow ?? 0), n, JSON.stringify(counts));
    // Round robin or random would give ~200 each (binomial σ = 10): 340 is 14σ above that, so
    // this cannot pass by chance; with peak EWMA the slow host is only retried as its estimate decays.
    assert.ok((counts.fast ?? 0) >= 340, JSON.stringify(counts));
  });
});
