import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { bootstrapDoc, httpListener, staticCluster, tcpListener } from '../support/bootstrap.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { rawExchange, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';

describe('WebSocket and TCP through the proxy', { timeout: 30_000 }, () => {
  let proxy: RunningProxy;
  let wsHttp: http.Server;
  let wss: WebSocketServer;
  let tcpUp: Upstream;
  before(async () => {
    wsHttp = http.createServer((_req, res) => res.end('plain'));
    wss = new WebSocketServer({ server: wsHttp });
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.url}`);
      ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`));
    });
    await new Promise<void>((r) => wsHttp.listen(0, '127.0.0.1', r));
    // Reads until the client half-closes, then answers with what it got and closes: needs half-close.
    tcpUp = await startTcpUpstream((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes`));
    }, true);
    const wsPort = (wsHttp.address() as AddressInfo).port;
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            name: 'ws',
            routes: [
              {
                match: { prefix: '/nows' },
                route: { cluster: 'ws', upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] },
              },
              { match: { prefix: '/' }, route: { cluster: 'ws' } },
            ],
            hcm: { upgrade_configs: [{ upgrade_type: 'websocket' }] },
          }),
          httpListener({ name: 'plain', routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }),
          tcpListener({ name: 'tcp', cluster: 'tcp' }),
        ],
        [staticCluster('ws', [{ port: wsPort }]), staticCluster('tcp', [{ port: tcpUp.port }])],
      ),
    );
  });
  after(async () => {
    await proxy.stop();
    wss.close();
    wsHttp.closeAllConnections();
    wsHttp.close();
    await tcpUp.close();
  });

  it('WebSocket upgrade, then messages both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('ws')}/chat`);
    const msgs: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (m: Buffer) => {
        msgs.push(m.toString());
        if (msgs.length === 1) ws.send('ping-1');
        else if (msgs.length === 2) ws.send(Buffer.alloc(200_000, 7));
        else resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    assert.equal(msgs[0], 'hello /chat');
    assert.equal(msgs[1], 'echo:ping-1');
    assert.equal(msgs[2].length, 'echo:'.length + 200_000);
  });

  it('an upgrade the connection manager does not enable is refused with 403', async () => {
    const out = await rawExchange(
      proxy.port('plain'),
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1.1 403 /);
    const out2 = await rawExchange(
      proxy.port('ws'),
      'GET /nows HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(out2, /^HTTP\/1.1 403 /);
  });

  it('TCP proxy carries bytes both ways and propagates half-close', async () => {
    const s = net.connect(proxy.port('tcp'), '127.0.0.1');
    const payload = Buffer.alloc(3 * 1024 * 1024, 1);
    const reply = await new Promise<string>((resolve, reject) => {
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.end(payload);
    });
    assert.equal(reply, `got ${payload.length} bytes`);
  });
});
