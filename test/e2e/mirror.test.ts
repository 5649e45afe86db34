import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { startProxy, waitFor } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

/** A request as one upstream saw it, by x-key. */
interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  body: Buffer;
  headerNames: string[];
}

const HALF = { default_value: { numerator: 500_000, denominator: 'MILLION' } };

describe('request mirroring through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  const ups: Upstream[] = [];
  const primarySeen = new Map<string, Seen[]>();
  const mirrorSeen = new Map<string, Seen[]>();
  /** Keys of shadow requests whose headers reached the mirror, and of those that never completed. */
  const mirrorStarted = new Set<string>();
  const mirrorAborted = new Set<string>();
  /** Connections the hanging mirror accepted (it reads and never answers). */
  let hangConnections = 0;

  function stat(name: string): number {
    return proxy.server.stats.counter(name).value;
  }

  function record(into: Map<string, Seen[]>, req: http.IncomingMessage, body: Buffer): void {
    const key = String(req.headers['x-key'] ?? '');
    const list = into.get(key) ?? [];
    list.push({
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host,
      body,
      headerNames: Object.keys(req.headers).sort(),
    });
    into.set(key, list);
  }

  /** Primary: per x-key, fails the first `x-fail` requests with 503; otherwise answers "primary <n>". */
  function primary(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      record(primarySeen, req, body);
      const n = primarySeen.get(String(req.headers['x-key'] ?? ''))!.length;
      if (n <= Number(req.headers['x-fail'] ?? 0)) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('failure');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-from': 'primary' });
      res.end(`primary ${req.method} ${req.url} ${body.length}`);
    });
  }

  /** Mirror: records what it got and answers with something the client must never see. */
  function mirror(req: http.IncomingMessage, res: http.ServerResponse): void {
    const key = String(req.headers['x-key'] ?? '');
    mirrorStarted.add(key);
    const chunks: Buffer[] = [];
    let ended = false;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      ended = true;
      record(mirrorSeen, req, Buffer.concat(chunks));
      res.writeHead(418, { 'content-type': 'text/plain', 'x-from': 'mirror' });
      res.end('from the mirror');
    });
    req.on('close', () => {
      if (!ended) mirrorAborted.add(key);
    });
  }

  before(async () => {
    const p = await startHttpUpstream({ handler: primary });
    const m = await startHttpUpstream({ handler: mirror });
    const hang = await startTcpUpstream((s) => {
      hangConnections++;
      s.resume();
    });
    ups.push(p, m, hang);
    const down = await closedPort();
    const mirrorTo = (cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      cluster,
      ...extra,
    });
    const route = (prefix: string, action: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      match: { prefix },
      route: { cluster: 'primary', ...action },
      ...extra,
    });
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            routes: [
              route('/mirror', { request_mirror_policies: [mirrorTo('mirror')] }),
              route('/multi', {
                request_mirror_policies: [
                  mirrorTo('mirror'),
                  mirrorTo('mirror', { disable_shadow_host_suffix_append: true, trace_sampled: false }),
                ],
              }),
              route('/hang', { timeout: '2s', request_mirror_policies: [mirrorTo('hang')] }),
              route('/down', { request_mirror_policies: [mirrorTo('down')] }),
              route('/empty', { request_mirror_policies: [mirrorTo('empty')] }),
              route('/half', { request_mirror_policies: [mirrorTo('mirror', { runtime_fraction: HALF })] }),
              route('/none', {
                request_mirror_policies: [
                  mirrorTo('mirror', { runtime_fraction: { default_value: { numerator: 0 } } }),
                ],
              }),
              route('/retry', {
                retry_policy: { retry_on: '5xx', num_retries: 3 },
                request_mirror_policies: [mirrorTo('mirror')],
              }),
              route(
                '/big',
                { request_mirror_policies: [mirrorTo('mirror')] },
                { per_request_buffer_limit_bytes: 1024 },
              ),
            ],
          }),
        ],
        [
          staticCluster('primary', [{ port: p.port }]),
          staticCluster('mirror', [{ port: m.port }]),
          staticCluster('hang', [{ port: hang.port }]),
          staticCluster('down', [{ port: down }]),
          staticCluster('empty', []),
        ],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    for (const u of ups) await u.close();
  });

  it('sends the mirror the same method, path and body with a -shadow host; the client sees the primary only', async () => {
    const before = stat('cluster.mirror.upstream_rq_total');
    const r = await request(proxy.port(), {
      method: 'POST',
      path: '/mirror/a?q=1',
      headers: { host: 'svc.example:8080', 'x-key': 'basic', 'content-type': 'text/plain' },
      body: 'payload',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'primary POST /mirror/a?q=1 7');
    assert.equal(r.headers['x-from'], 'primary');
    const shadow = (await waitFor(() => mirrorSeen.get('basic')?.[0], 5000, 'the shadow request'))!;
    const main = primarySeen.get('basic')![0];
    assert.equal(shadow.method, 'POST');
    assert.equal(shadow.url, '/mirror/a?q=1');
    assert.equal(shadow.body.toString(), 'payload');
    assert.equal(main.host, 'svc.example:8080');
    assert.equal(shadow.host, 'svc.example-shadow:8080');
    // No header is added or dropped for the shadow: only the host differs.
    assert.deepEqual(shadow.headerNames, main.headerNames);
    assert.equal(mirrorSeen.get('basic')!.length, 1);
    await waitFor(() => stat('cluster.mirror.upstream_rq_418') > 0, 5000, 'the shadow response counted');
    assert.equal(stat('cluster.mirror.upstream_rq_total') - before, 1);
  });

  it('sends one shadow per policy, keeping the host under disable_shadow_host_suffix_append', async () => {
    const r = await request(proxy.port(), {
      path: '/multi',
      headers: { host: 'svc.example', 'x-key': 'multi' },
    });
    assert.equal(r.status, 200);
    const shadows = await waitFor(
      () => ((mirrorSeen.get('multi')?.length ?? 0) >= 2 ? mirrorSeen.get('multi') : undefined),
      5000,
      'two shadows',
    );
    assert.deepEqual(shadows!.map((s) => s.host).sort(), ['svc.example', 'svc.example-shadow']);
  });

  it('does not repeat the shadow when the main request is retried', async () => {
    const r = await request(proxy.port(), {
      method: 'POST',
      path: '/retry',
      headers: { 'x-key': 'retried', 'x-fail': '2' },
      body: 'again',
    });
    assert.equal(r.status, 200);
    assert.equal(primarySeen.get('retried')?.length, 3);
    assert.ok(primarySeen.get('retried')!.every((s) => s.body.toString() === 'again'));
    await waitFor(() => mirrorSeen.get('retried'), 5000, 'the shadow');
    // The later tries ran after the shadow had been answered; give a repeat a moment to show up anyway.
    await request(proxy.port(), { path: '/mirror', headers: { 'x-key': 'barrier' } });
    await waitFor(() => mirrorSeen.get('barrier'), 5000, 'the barrier shadow');
    assert.equal(mirrorSeen.get('retried')?.length, 1);
    assert.equal(mirrorSeen.get('retried')![0].body.toString(), 'again');
  });

  it('a mirror that accepts and never answers neither delays nor fails the main request', async () => {
    const timeouts = stat('cluster.hang.upstream_rq_timeout');
    const n = 5;
    for (let i = 0; i < n; i++) {
      const r = await request(proxy.port(), {
        method: 'POST',
        path: '/hang',
        headers: { 'x-key': `hang${i}` },
        body: 'x',
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'primary POST /hang 1');
    }
    await waitFor(() => hangConnections >= 1, 5000, 'the shadows to reach the hanging mirror');
    // Every main request has its answer while its shadow is still waiting on the mirror.
    assert.equal(proxy.server.stats.gauge('cluster.hang.upstream_rq_active').value, n);
    // Each shadow then runs into the route timeout on the mirror cluster, not on the main request.
    await waitFor(() => stat('cluster.hang.upstream_rq_timeout') - timeouts === n, 10_000, 'shadow timeouts');
    assert.equal(proxy.server.stats.gauge('cluster.hang.upstream_rq_active').value, 0);
    assert.equal(stat('cluster.primary.upstream_rq_timeout'), 0);
  });

  it('a mirror that is down or has no healthy endpoint does not fail the main request', async () => {
    const fails = stat('cluster.down.upstream_cx_connect_fail');
    const noHealthy = stat('cluster.empty.upstream_cx_none_healthy');
    for (const path of ['/down', '/empty']) {
      const r = await request(proxy.port(), {
        method: 'POST',
        path,
        headers: { 'x-key': path },
        body: 'abc',
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, `primary POST ${path} 3`);
    }
    await waitFor(() => stat('cluster.down.upstream_cx_connect_fail') > fails, 5000, 'the failed shadow');
    assert.equal(stat('cluster.empty.upstream_cx_none_healthy') - noHealthy, 1);
  });

  it('mirrors about half of the requests at 50%, and none at 0%', async () => {
    const total = 400;
    const before = stat('cluster.mirror.upstream_rq_total');
    for (let i = 0; i < total; i++) {
      const r = await request(proxy.port(), { path: '/half', headers: { 'x-key': 'half' } });
      assert.equal(r.status, 200);
    }
    const shadows = stat('cluster.mirror.upstream_rq_total') - before;
    // Binomial(400, 0.5): mean 200, standard deviation 10; 140..260 is six deviations either side.
    assert.ok(shadows >= 140 && shadows <= 260, `${shadows} shadows of ${total}`);
    await waitFor(() => (mirrorSeen.get('half')?.length ?? 0) === shadows, 5000, 'all shadows answered');
    for (let i = 0; i < 20; i++) await request(proxy.port(), { path: '/none', headers: { 'x-key': 'none' } });
    await request(proxy.port(), { path: '/mirror', headers: { 'x-key': 'barrier2' } });
    await waitFor(() => mirrorSeen.get('barrier2'), 5000, 'the barrier shadow');
    assert.equal(mirrorStarted.has('none'), false);
  });

  it('aborts a shadow whose body outgrows the buffer limit; the main request gets the whole body', async () => {
    const big = Buffer.alloc(64 * 1024, 'b');
    // Declared too large up front: no shadow at all.
    const before = stat('cluster.mirror.upstream_rq_total');
    const r1 = await request(proxy.port(), {
      method: 'POST',
      path: '/big',
      headers: { 'x-key': 'declared' },
      body: big,
    });
    assert.equal(r1.body, `primary POST /big ${big.length}`);
    assert.equal(stat('cluster.mirror.upstream_rq_total'), before);

    // Chunked: the shadow starts, then is aborted once the body passes the limit.
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port(),
          method: 'POST',
          path: '/big',
          headers: { 'x-key': 'chunked', 'transfer-encoding': 'chunked' },
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(512, 'a'));
      void waitFor(() => mirrorStarted.has('chunked'), 5000, 'the shadow to start').then(
        () => req.end(big),
        (err: Error) => {
          req.destroy();
          reject(err);
        },
      );
    });
    const r2 = await reply;
    assert.equal(r2.status, 200);
    assert.equal(r2.body, `primary POST /big ${512 + big.length}`);
    await waitFor(() => mirrorAborted.has('chunked'), 5000, 'the shadow to be aborted');
    assert.equal(mirrorSeen.get('chunked'), undefined);
  });
});
