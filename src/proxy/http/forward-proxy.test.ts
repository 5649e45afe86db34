/**
 * The connection manager as an explicit (forward) proxy, with real clients: absolute-form requests
 * (allow_absolute_url) and terminated CONNECT tunnels (connect_matcher + connect_config).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bootstrapDoc, httpListener, staticCluster } from '../../../test/support/bootstrap.ts';
import { curl } from '../../../test/support/http.ts';
import { startProxy } from '../../../test/support/proxy.ts';
import type { RunningProxy } from '../../../test/support/proxy.ts';
import {
  closedPort,
  rawExchange,
  startHttpUpstream,
  startTcpUpstream,
} from '../../../test/support/servers.ts';
import type { SeenRequest, Upstream } from '../../../test/support/servers.ts';

const CONNECT_ROUTE = (cluster: string): Record<string, unknown> => ({
  match: { connect_matcher: {} },
  route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
});

/** Runs a script in a fresh Node with `env` added; resolves with its stdout. */
function nodeScript(script: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env: { ...process.env, ...env }, timeout: 15_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

describe('explicit proxy: absolute form and CONNECT', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let web: Upstream & { seen: SeenRequest[] };
  let tcp: Upstream;
  let deadPort: number;
  before(async () => {
    web = await startHttpUpstream({ name: 'reviews' });
    // Echoes with a prefix, then answers the client's half-close with its own end.
    tcp = await startTcpUpstream((s) => {
      s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`));
      s.on('end', () => s.end('bye'));
    }, true);
    deadPort = await closedPort();
    const vhosts = [
      {
        name: 'reviews',
        domains: ['reviews:9080', 'reviews'],
        routes: [CONNECT_ROUTE('reviews'), { match: { prefix: '/' }, route: { cluster: 'reviews' } }],
      },
      { name: 'db', domains: ['db:5432'], routes: [CONNECT_ROUTE('db')] },
      { name: 'dead', domains: ['dead:1'], routes: [CONNECT_ROUTE('dead')] },
      {
        // CONNECT is not enabled here: neither the connection manager nor the route turns it on.
        name: 'closed',
        domains: ['closed:80'],
        routes: [{ match: { connect_matcher: {} }, route: { cluster: 'reviews' } }],
      },
    ];
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({ name: 'proxy', virtualHosts: vhosts }),
          httpListener({
            name: 'strict',
            virtualHosts: vhosts,
            hcm: { http_protocol_options: { allow_absolute_url: false } },
          }),
        ],
        [
          staticCluster('reviews', [{ port: web.port }]),
          staticCluster('db', [{ port: tcp.port }]),
          staticCluster('dead', [{ port: deadPort }]),
        ],
      ),
    );
  });
  after(async () => {
    await proxy?.stop();
    await web?.close();
    await tcp?.close();
  });

  it('routes an absolute-form request by its URI and drops the proxy headers (curl -x)', async () => {
    const before = web.seen.length;
    const r = await curl([
      ...['-x', `http://127.0.0.1:${proxy.port('proxy')}`, '-U', 'user:secret'],
      ...['-H', 'Host: ignored.example', 'http://reviews:9080/x?y=1'],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).name, 'reviews');
    const seen = web.seen[before];
    assert.equal(seen.url, '/x?y=1');
    assert.equal(seen.headers.host, 'reviews:9080', 'the URI authority wins over Host');
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.headers['proxy-connection'], undefined);
  });

  it('gives a URI without a path the path /', async () => {
    const out = await rawExchange(
      proxy.port('proxy'),
      'GET http://reviews:9080?q=1 HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.equal(web.seen.at(-1)!.url, '/?q=1');
  });

  it('answers 400 to absolute form when allow_absolute_url is false', async () => {
    const out = await rawExchange(
      proxy.port('strict'),
      'GET http://reviews:9080/x HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('tunnels HTTP through CONNECT (curl -p -x)', async () => {
    const before = web.seen.length;
    const r = await curl([
      ...['-p', '-x', `http://127.0.0.1:${proxy.port('proxy')}`, '-U', 'user:secret'],
      'http://reviews:9080/in-tunnel',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).name, 'reviews');
    const seen = web.seen[before];
    assert.equal(seen.url, '/in-tunnel', 'the request inside the tunnel is the client’s own');
    assert.equal(seen.headers['proxy-authorization'], undefined, 'CONNECT’s headers stay at the proxy');
  });

  it('tunnels raw TCP both ways with half-close', async () => {
    const s = net.connect(proxy.port('proxy'), '127.0.0.1');
    s.write('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nearly');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('echo:early') && !text.includes('echo:late')) s.end('late');
    });
    await new Promise<void>((resolve) => s.on('close', () => resolve()));
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(text.split('\r\n\r\n')[0], /content-length|transfer-encoding/i);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.equal(body, 'echo:earlyecho:latebye', 'bytes sent with the CONNECT head are not lost');
  });

  it('answers malformed and unroutable CONNECTs without tunnelling, and keeps serving', async () => {
    const port = proxy.port('proxy');
    const connect = (target: string): Promise<string> =>
      rawExchange(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    assert.match(await connect('reviews'), /^HTTP\/1\.1 400 /, 'no port');
    assert.match(await connect('reviews:0'), /^HTTP\/1\.1 400 /, 'port 0');
    assert.match(await connect('nowhere:9080'), /^HTTP\/1\.1 404 /, 'no virtual host');
    assert.match(await connect('closed:80'), /^HTTP\/1\.1 403 /, 'CONNECT not enabled');
    assert.match(await connect('dead:1'), /^HTTP\/1\.1 503 /, 'upstream refuses');
    assert.match(await rawExchange(port, 'CONNECT\r\n\r\n'), /^HTTP\/1\.1 400 /, 'no target');
    const r = await curl(['-x', `http://127.0.0.1:${port}`, 'http://reviews:9080/still']);
    assert.equal(r.code, 0, r.stderr);
  });

  it('a plain GET does not match the connect route', async () => {
    const out = await rawExchange(
      proxy.port('proxy'),
      'GET /plain HTTP/1.1\r\nHost: db:5432\r\nConnection: close\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1\.1 404 /);
  });

  it("serves Node's fetch and http.get with NODE_USE_ENV_PROXY=1 and HTTP_PROXY", async () => {
    const url = `http://127.0.0.1:${proxy.port('proxy')}`;
    const out = await nodeScript(
      `
      import http from 'node:http';
      const viaFetch = await (await fetch('http://reviews:9080/fetch')).json();
      const viaHttp = await new Promise((resolve, reject) =>
        http.get('http://reviews:9080/http-get', (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(JSON.parse(b)));
        }).on('error', reject));
      console.log(JSON.stringify([viaFetch.url, viaHttp.url]));
      `,
      { NODE_USE_ENV_PROXY: '1', HTTP_PROXY: url, http_proxy: url, NO_PROXY: '', no_proxy: '' },
    );
    assert.deepEqual(JSON.parse(out), ['/fetch', '/http-get']);
  });
});
