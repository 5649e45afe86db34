import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { spawnProxy, waitFor, writeBootstrap } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { startHttpUpstream } from '../support/servers.ts';

const SIZE = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'w');

function source(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('large bodies stream through with backpressure', { timeout: 120_000 }, () => {
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;
  let p: ProxyProcess;
  let port = 0;
  before(async () => {
    up = await startHttpUpstream({
      handler: (req, res) => {
        if (req.method === 'POST') {
          let n = 0;
          req.on('data', (c: Buffer) => (n += c.length));
          req.on('end', () => res.end(String(n)));
          return;
        }
        res.writeHead(200, { 'content-length': String(SIZE) });
        source(SIZE).pipe(res);
      },
    });
    p = spawnProxy(
      writeBootstrap(
        bootstrapDoc(
          [
            httpListener({
              routes: [{ match: { prefix: '/' }, route: { cluster: 'backend', timeout: '0s' } }],
            }),
          ],
          [staticCluster('backend', [{ port: up.port }])],
        ),
      ),
    );
    const line = (await waitFor(() => /proxy ready (\{.*\})/.exec(p.output()), 15_000, 'proxy ready'))!;
    port = Number((JSON.parse(line[1]) as { listeners: string[] }).listeners[0].split(':').pop());
  });
  after(async () => {
    p.kill('SIGKILL');
    await up.close();
  });

  async function transfer(kind: 'upload' | 'download', total: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: kind === 'upload' ? 'POST' : 'GET', path: '/', agent: false },
        (res) => {
          let n = 0;
          let body = '';
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (kind === 'upload') body += c.toString();
          });
          res.on('end', () => resolve(kind === 'upload' ? Number(body) : n));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (kind === 'upload') pipeline(source(total), req).catch(reject);
      else req.end();
    });
  }

  // Bounded memory is the property: a proxy that buffered would grow by the body size (256 MiB). What
  // remains is socket read buffers awaiting garbage collection; the closing note of issue #2 records it.
  it('256 MiB upload and download, proxy RSS stays bounded far below the body size', async () => {
    // Warm up code paths and buffers first, so the baseline is the steady state.
    assert.equal(await transfer('upload', 8 * 1024 * 1024), 8 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 200));
    const base = rssKb(p.pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(p.pid))), 20);
    try {
      assert.equal(await transfer('upload', SIZE), SIZE);
      process.stdout.write(`# after upload peak growth ${((peak - base) / 1024).toFixed(1)} MB\n`);
      assert.equal(await transfer('download', SIZE), SIZE);
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (peak - base) / 1024;
    process.stdout.write(
      `# proxy RSS base ${(base / 1024).toFixed(1)} MB, peak growth ${growthMb.toFixed(1)} MB\n`,
    );
    assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MB`);
  });
});
