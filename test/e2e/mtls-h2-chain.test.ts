/**
 * Two Weft proxies with HTTP/2 over mutual TLS between them, under concurrent load from 64 keep-alive
 * clients: every request answered, nothing left active. (Under load, node:http2 delivered a response's body
 * before its headers when both arrived in one read; the first proxy then wrote the body as an implicit
 * response and failed the real headers, hanging up on about one request in twenty.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { benchBootstrap } from '../../bench/weft-bootstrap.ts';
import { BENCH_SERVER_ID, makeBenchPki } from '../../bench/pki.ts';
import { request } from '../support/http.ts';
import { spawnProxy, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';

describe('HTTP/2 over mTLS between two proxies, under load', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-h2-mtls-'));
  const procs: ProxyProcess[] = [];
  let upstream: http.Server | undefined;
  after(() => {
    for (const p of procs) p.kill();
    upstream?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers every request of 64 concurrent clients, and leaves no upstream request active', async () => {
    const pki = makeBenchPki(path.join(dir, 'pki'));
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('x'.repeat(1024));
      });
    });
    await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as { port: number }).port;
    const [aPort, aAdmin, bPort, bAdmin] = [
      await closedPort(),
      await closedPort(),
      await closedPort(),
      await closedPort(),
    ];
    const at = (port: number): { host: string; port: number } => ({ host: '127.0.0.1', port });
    const write = (name: string, doc: object): string => {
      const file = path.join(dir, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify(doc));
      return file;
    };
    procs.push(
      spawnProxy(
        write(
          'b',
          benchBootstrap({
            nodeId: 'b',
            listen: at(bPort),
            admin: at(bAdmin),
            upstream: at(upPort),
            downstreamTls: { ...pki.server, caFile: pki.caFile },
          }),
        ),
      ),
      spawnProxy(
        write(
          'a',
          benchBootstrap({
            nodeId: 'a',
            listen: at(aPort),
            admin: at(aAdmin),
            upstream: at(bPort),
            upstreamTls: { ...pki.client, caFile: pki.caFile, serverId: BENCH_SERVER_ID, protocol: 'h2' },
          }),
        ),
      ),
    );
    await waitFor(async () => (await request(aPort, { path: '/' })).status === 200, 20_000, 'the chain');

    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const failures = new Map<string, number>();
    let ok = 0;
    const end = Date.now() + 3000;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const fail = (why: string): void => {
          failures.set(why, (failures.get(why) ?? 0) + 1);
          resolve();
        };
        const rq = http.get({ host: '127.0.0.1', port: aPort, path: '/', agent }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () =>
            res.statusCode === 200 && bytes === 1024
              ? (ok++, resolve())
              : fail(`${res.statusCode} ${bytes}B`),
          );
          res.on('error', (e) => fail(e.message));
        });
        rq.on('error', (e) => fail(e.message));
        rq.setTimeout(5000, () => rq.destroy(new Error('client timeout')));
      });
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (Date.now() < end) await one();
      }),
    );
    agent.destroy();
    assert.deepEqual([...failures], []);
    assert.ok(ok > 500, `${ok} requests`);
    const stats = async (): Promise<string> => (await request(aAdmin, { path: '/stats' })).body;
    assert.match(await stats(), /cluster\.upstream\.ssl\.handshake: [1-9]/);
    await waitFor(
      async () => /cluster\.upstream\.upstream_rq_active: 0\b/.test(await stats()),
      5000,
      'no upstream request left active',
    );
  });
});
