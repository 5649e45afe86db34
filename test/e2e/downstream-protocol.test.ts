/**
 * use_downstream_protocol_config (what Istio gives clusters of ports whose protocol is sniffed, and
 * `useClientProtocol`): a request keeps its protocol to the upstream — HTTP/2 from curl goes out as HTTP/2, HTTP/1.1
 * as HTTP/1.1 — where a plain cluster sends everything as HTTP/1.1. The upstream speaks both in cleartext and says
 * which one each request came in.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { curl } from '../support/http.ts';
import { startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';

const PREFACE = 'PRI * HTTP/2.0';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

describe('use_downstream_protocol_config', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let sorter: net.Server;
  const h1 = http.createServer((req, res) => res.end(`upstream saw HTTP/${req.httpVersion}`));
  const h2 = http2.createServer((req, res) => res.end(`upstream saw HTTP/${req.httpVersion}`));

  before(async () => {
    // One cleartext port for both: a relay sends a connection opening with the HTTP/2 preface to the HTTP/2 server,
    // anything else to the HTTP/1.1 one.
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const portOf = (s: net.Server): number => (s.address() as AddressInfo).port;
    sorter = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (first: Buffer) => {
        const target = net.connect(
          portOf(first.toString('latin1').startsWith(PREFACE) ? h2 : h1),
          '127.0.0.1',
        );
        target.on('error', () => socket.destroy());
        target.write(first);
        socket.pipe(target).pipe(socket);
      });
    });
    await new Promise<void>((r) => sorter.listen(0, '127.0.0.1', r));
    const port = (sorter.address() as AddressInfo).port;
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              { match: { prefix: '/follow' }, route: { cluster: 'follow' } },
              { match: { prefix: '/' }, route: { cluster: 'plain' } },
            ],
          }),
        ],
        [
          staticCluster('plain', [{ port }]),
          staticCluster('follow', [{ port }], {
            typed_extension_protocol_options: {
              [HTTP_OPTIONS]: {
                '@type': `type.googleapis.com/${HTTP_OPTIONS}`,
                use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
              },
            },
          }),
        ],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    await new Promise((r) => sorter.close(r));
    h1.closeAllConnections();
    await new Promise((r) => h1.close(r));
    await new Promise((r) => h2.close(r));
  });

  const get = async (path: string, version: '--http1.1' | '--http2-prior-knowledge'): Promise<string> => {
    const r = await curl([version, `http://127.0.0.1:${proxy.port()}${path}`]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  it('sends an HTTP/2 request upstream over HTTP/2 and an HTTP/1.1 one over HTTP/1.1', async () => {
    assert.equal(await get('/follow/a', '--http2-prior-knowledge'), 'upstream saw HTTP/2.0');
    assert.equal(await get('/follow/b', '--http1.1'), 'upstream saw HTTP/1.1');
    // Both kept alive side by side, one connection each.
    assert.equal(await get('/follow/c', '--http2-prior-knowledge'), 'upstream saw HTTP/2.0');
    assert.equal(await get('/follow/d', '--http1.1'), 'upstream saw HTTP/1.1');
  });

  it('sends everything over HTTP/1.1 on a cluster without it', async () => {
    assert.equal(await get('/x', '--http2-prior-knowledge'), 'upstream saw HTTP/1.1');
  });
});
