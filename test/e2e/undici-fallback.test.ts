// The undici pool is the fallback HTTP/1.1 client (WEFT_H1_CLIENT=undici); this file runs in its own
// process, so switching it here does not affect the other suites.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket, WebSocketServer } from 'ws';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

describe('HTTP/1.1 upstreams through the undici fallback pool', { timeout: 30_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let wsHttp: http.Server;
  let proxy: RunningProxy;
  before(async () => {
    process.env.WEFT_H1_CLIENT = 'undici';
    up = await startHttpUpstream({ name: 'u' });
    wsHttp = http.createServer();
    new WebSocketServer({ server: wsHttp }).on('connection', (ws) =>
      ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`)),
    );
    await new Promise<void>((r) => wsHttp.listen(0, '127.0.0.1', r));
    const dead = await closedPort();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              { match: { prefix: '/ws' }, route: { cluster: 'ws' } },
              { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
              { match: { prefix: '/' }, route: { cluster: 'u' } },
            ],
            hcm: { upgrade_configs: [{ upgrade_type: 'websocket' }] },
          }),
        ],
        [
          staticCluster('u', [{ port: up.port }]),
          staticCluster('ws', [{ port: (wsHttp.address() as AddressInfo).port }]),
          staticCluster('dead', [{ port: dead }]),
        ],
      ),
    );
  });
  after(async () => {
    delete process.env.WEFT_H1_CLIENT;
    await proxy.stop();
    await up.close();
    wsHttp.closeAllConnections();
    wsHttp.close();
  });

  it('forwards GET and POST, maps connection failure to 503 UF, and upgrades WebSockets', async () => {
    assert.equal((await request(proxy.port(), { path: '/a' })).status, 200);
    const entry = proxy.server.clusterManager.get('u')!;
    assert.equal(entry.pool(entry.cluster.hosts()[0]).constructor.name, 'Http1Pool');
    const post = await request(proxy.port(), {
      method: 'POST',
      body: 'hello',
      headers: { 'content-length': '5' },
    });
    assert.equal(JSON.parse(post.body).bodyLength, 5);
    const dead = await request(proxy.port(), { path: '/dead' });
    assert.equal(dead.status, 503);
    assert.match(dead.body, /connection failure/);
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/ws`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('hi'));
      ws.on('message', (m: Buffer) => resolve(m.toString()));
      ws.on('error', reject);
    });
    ws.close();
    assert.equal(reply, 'echo:hi');
  });
});
