/**
 * A mirrored request whose client goes away mid-body after the main try already failed: the body tee then
 * fails its copies with an error that no consumer may be listening for any more. The proxy must stay up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

describe('mirroring when the client aborts after a failed main try', { timeout: 30_000 }, () => {
  let proxy: RunningProxy;
  let mirror: Upstream;
  let healthy: Upstream;
  let shadows = 0;

  before(async () => {
    mirror = await startHttpUpstream({
      handler: (req, res) => {
        shadows++;
        req.on('error', () => undefined);
        req.resume();
        req.on('end', () => res.writeHead(204).end());
      },
    });
    healthy = await startHttpUpstream({ name: 'healthy' });
    const down = await closedPort();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              {
                match: { prefix: '/dead' },
                route: { cluster: 'dead', request_mirror_policies: [{ cluster: 'mirror' }] },
              },
              { match: { prefix: '/' }, route: { cluster: 'healthy' } },
            ],
          }),
        ],
        [
          staticCluster('dead', [{ port: down }]),
          staticCluster('mirror', [{ port: mirror.port }]),
          staticCluster('healthy', [{ port: healthy.port }]),
        ],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    await mirror?.close();
    await healthy?.close();
  });

  it('answers 503 UF, survives the client going away mid-body, and keeps serving', async () => {
    for (let i = 0; i < 5; i++) {
      const req = http.request({
        host: '127.0.0.1',
        port: proxy.port(),
        method: 'POST',
        path: '/dead',
        headers: { 'content-length': '1000000' },
      });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(16_384, 1));
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      assert.equal(res.statusCode, 503);
      res.resume();
      req.destroy();
      await once(req, 'close');
    }
    // Give the proxy's side of each aborted body time to be torn down before checking it still serves.
    await new Promise((r) => setTimeout(r, 200));
    const after = await request(proxy.port(), { path: '/ok' });
    assert.equal(after.status, 200);
    // The shadows did start: the tee had copies to fail.
    assert.ok(shadows > 0, 'no shadow request reached the mirror');
  });
});
