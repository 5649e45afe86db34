import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort, startHttpUpstream } from '../support/servers.ts';
import { request } from '../support/http.ts';

const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const FAULT = 'envoy.filters.http.fault';

/** typed_per_filter_config for the fault filter, as Istio writes it. */
function fault(config: Record<string, unknown>): Record<string, unknown> {
  return { typed_per_filter_config: { [FAULT]: { '@type': FAULT_TYPE, ...config } } };
}
const all = { numerator: 100, denominator: 'HUNDRED' };

type EchoClient = grpc.Client & {
  Unary(m: { text: string; n: number }, cb: (e: grpc.ServiceError | null) => void): void;
};
const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const Echo = (
  grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } }
).weft.test.Echo;

describe('fault injection (envoy.filters.http.fault) through a real proxy', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let up: Awaited<ReturnType<typeof startHttpUpstream>>;

  before(async () => {
    up = await startHttpUpstream();
    const dead = await closedPort();
    proxy = await startProxy(
      bootstrapDoc(
        [
          httpListener({
            virtualHosts: [
              {
                name: 'override',
                domains: ['override.test'],
                ...fault({ abort: { http_status: 418, percentage: all } }),
                routes: [
                  {
                    match: { prefix: '/own' },
                    route: { cluster: 'backend' },
                    ...fault({ abort: { http_status: 429, percentage: all } }),
                  },
                  { match: { prefix: '/' }, route: { cluster: 'backend' } },
                ],
              },
              {
                name: 'all',
                domains: ['*'],
                routes: [
                  {
                    match: { prefix: '/abort' },
                    route: { cluster: 'backend' },
                    ...fault({ abort: { http_status: 503, percentage: all } }),
                  },
                  {
                    match: { prefix: '/half' },
                    route: { cluster: 'backend' },
                    ...fault({ abort: { http_status: 503, percentage: { numerator: 50 } } }),
                  },
                  {
                    match: { prefix: '/delay' },
                    route: { cluster: 'backend' },
                    ...fault({ delay: { fixed_delay: '0.3s', percentage: all } }),
                  },
                  {
                    match: { prefix: '/weft.test.Echo/' },
                    route: { cluster: 'grpc' },
                    ...fault({ abort: { grpc_status: 14, percentage: all } }),
                  },
                  { match: { prefix: '/' }, route: { cluster: 'backend' } },
                ],
              },
            ],
            hcm: {
              http_filters: [
                { name: FAULT, typed_config: { '@type': FAULT_TYPE } },
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          }),
        ],
        [staticCluster('backend', [{ port: up.port }]), staticCluster('grpc', [{ port: dead }])],
      ),
    );
  });

  after(async () => {
    await proxy?.stop();
    await up?.close();
  });

  it('passes requests that no fault applies to', async () => {
    const r = await request(proxy.port(), { path: '/plain' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'upstream');
  });

  it('aborts with 503 at 100%, never reaching the upstream', async () => {
    const before = up.seen.length;
    for (let i = 0; i < 5; i++) {
      const r = await request(proxy.port(), { path: '/abort' });
      assert.equal(r.status, 503);
      assert.equal(r.body, 'fault filter abort');
    }
    assert.equal(up.seen.filter((s) => s.url === '/abort').length, 0);
    assert.equal(up.seen.length, before);
    const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
    assert.match(stats, /http\.ingress_http\.fault\.aborts_injected: ([5-9]|\d\d+)\b/);
  });

  it('aborts about half the requests at 50%', async () => {
    // 300 requests: mean 150, sd ≈ 8.7; [100, 200] is ±5.8 sd and excludes 0% and 100%.
    const N = 300;
    let aborted = 0;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const replies = await Promise.all(
      Array.from({ length: N }, () => request(proxy.port(), { path: '/half', agent })),
    );
    agent.destroy();
    for (const r of replies) {
      if (r.status === 503) aborted++;
      else assert.equal(r.status, 200);
    }
    assert.ok(aborted >= 100 && aborted <= 200, `aborted ${aborted} of ${N}`);
    assert.equal(up.seen.filter((s) => s.url === '/half').length, N - aborted);
  });

  it('delays the request by at least fixed_delay, then forwards it', async () => {
    const start = performance.now();
    const r = await request(proxy.port(), { path: '/delay' });
    const elapsed = performance.now() - start;
    assert.equal(r.status, 200);
    assert.ok(elapsed >= 290, `answered after ${elapsed.toFixed(0)} ms`);
    assert.equal(up.seen.filter((s) => s.url === '/delay').length, 1);
  });

  it('a client that leaves during the delay never reaches the upstream', async () => {
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port(), path: '/delay-gone', agent: false });
      req.on('error', () => resolve());
      req.end();
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    // Well past the 300 ms delay: a request that survived it would have arrived by now.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(up.seen.filter((s) => s.url === '/delay-gone').length, 0);
    const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
    assert.match(stats, /http\.ingress_http\.fault\.active_faults: 0\b/);
  });

  it('the route config overrides the virtual host config', async () => {
    const own = await request(proxy.port(), { path: '/own', headers: { host: 'override.test' } });
    assert.equal(own.status, 429);
    const inherited = await request(proxy.port(), { path: '/other', headers: { host: 'override.test' } });
    assert.equal(inherited.status, 418);
  });

  it('a real gRPC client gets the injected status (UNAVAILABLE)', async () => {
    const client = new Echo(
      `127.0.0.1:${proxy.port()}`,
      grpc.credentials.createInsecure(),
    ) as unknown as EchoClient;
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.Unary({ text: 'hi', n: 1 }, (e) => resolve(e)),
      );
      assert.ok(err, 'expected an error');
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.equal(err.details, 'fault filter abort');
    } finally {
      client.close();
    }
  });
});
