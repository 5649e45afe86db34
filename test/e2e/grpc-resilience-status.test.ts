/**
 * What a real gRPC client (@grpc/grpc-js) sees when Weft's resilience features answer for the upstream:
 * a local rate limit denial, retries that ran out, and a cluster whose only host was ejected. Each must
 * reach the client as the gRPC status Envoy gives it, not as an HTTP status the client cannot read.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_PROTOCOL_OPTIONS, bootstrapDoc, httpListener, staticCluster } from '../support/bootstrap.ts';
import { REPO, startProxy } from '../support/proxy.ts';
import type { RunningProxy } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Msg) => void): void;
};

const HOST = '127.0.91.2';
const LRL_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const LRL = 'envoy.filters.http.local_ratelimit';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
const BACK_OFF = { base_interval: '0.005s', max_interval: '0.02s' };

const def = protoLoader.loadSync(path.join(REPO, 'test/fixtures/echo.proto'));
const Echo = (
  grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } }
).weft.test.Echo;

/** The server's answer to a request text: `<status>:<key>` fails with that status, anything else echoes. */
const STATUS_BY_NAME: Record<string, grpc.status> = {
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

/** A route chosen by the x-route request header (gRPC metadata travels as headers). */
function routeFor(name: string, route: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    match: { prefix: '/', headers: [{ name: 'x-route', string_match: { exact: name } }] },
    route,
    ...extra,
  };
}

describe('gRPC status of resilience outcomes, seen by a grpc-js client', { timeout: 60_000 }, () => {
  let proxy: RunningProxy;
  let server: grpc.Server;
  let client: EchoClient;
  /** Calls the server received, by request text. */
  const calls = new Map<string, number>();

  before(async () => {
    server = new grpc.Server();
    server.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        const text = call.request.text;
        calls.set(text, (calls.get(text) ?? 0) + 1);
        const code = STATUS_BY_NAME[text.split(':')[0]];
        if (code !== undefined) cb({ code, details: `server says ${text}` });
        else cb(null, { text: `echo:${text}`, n: calls.get(text)! });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const dead = await closedPort();

    const listener = httpListener({
      routes: [
        routeFor(
          'ratelimited',
          { cluster: 'grpc' },
          {
            typed_per_filter_config: {
              [LRL]: {
                '@type': LRL_TYPE,
                stat_prefix: 'grpc_rl',
                filter_enabled: ALL,
                filter_enforced: ALL,
                // One call an hour: the second is certainly denied.
                token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '3600s' },
              },
            },
          },
        ),
        routeFor('retry-unavailable', {
          cluster: 'grpc',
          retry_policy: { retry_on: 'unavailable', num_retries: 2, retry_back_off: BACK_OFF },
        }),
        routeFor('retry-internal', {
          cluster: 'grpc',
          retry_policy: { retry_on: 'internal', num_retries: 2, retry_back_off: BACK_OFF },
        }),
        routeFor('retry-connect', {
          cluster: 'dead',
          retry_policy: { retry_on: 'connect-failure', num_retries: 2, retry_back_off: BACK_OFF },
        }),
        routeFor('eject', { cluster: 'eject' }),
      ],
      hcm: {
        http_filters: [
          {
            name: LRL,
            // The listener-wide bucket never runs dry; only the route's own config limits.
            typed_config: {
              '@type': LRL_TYPE,
              stat_prefix: 'listener_rl',
              filter_enabled: ALL,
              filter_enforced: ALL,
              token_bucket: { max_tokens: 1_000_000, tokens_per_fill: 1_000_000, fill_interval: '1s' },
            },
          },
          {
            name: 'envoy.filters.http.router',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
          },
        ],
      },
    });
    listener.address = { socket_address: { address: HOST, port_value: 0 } };

    proxy = await startProxy(
      bootstrapDoc(
        [listener],
        [
          staticCluster('grpc', [{ address: HOST, port: grpcPort }], HTTP2_PROTOCOL_OPTIONS),
          staticCluster('dead', [{ address: HOST, port: dead }], HTTP2_PROTOCOL_OPTIONS),
          staticCluster('eject', [{ address: HOST, port: grpcPort }], {
            ...HTTP2_PROTOCOL_OPTIONS,
            // Without a panic threshold of 0 a cluster with no healthy host would use them all anyway.
            common_lb_config: { healthy_panic_threshold: { value: 0 } },
            outlier_detection: {
              consecutive_5xx: 2,
              max_ejection_percent: 100,
              base_ejection_time: '3600s',
              interval: '3600s',
            },
          }),
        ],
      ),
    );
    client = new Echo(`${HOST}:${proxy.port()}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  });

  after(async () => {
    client?.close();
    await proxy?.stop();
    server?.forceShutdown();
  });

  function unary(route: string, text: string): Promise<{ err: grpc.ServiceError | null; reply?: Msg }> {
    const md = new grpc.Metadata();
    md.set('x-route', route);
    return new Promise((resolve) =>
      client.Unary({ text, n: 0 }, md, (err, reply) => resolve({ err, reply })),
    );
  }

  it('answers a locally rate-limited call with UNAVAILABLE (429 mapped as Envoy maps it)', async () => {
    const first = await unary('ratelimited', 'limited');
    assert.equal(first.err, null);
    assert.equal(first.reply?.text, 'echo:limited');
    const second = await unary('ratelimited', 'limited');
    assert.equal(second.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(second.err?.details, 'local_rate_limited');
    assert.equal(calls.get('limited'), 1, 'the denied call never reached the server');
  });

  it('passes the upstream’s last status through when retries run out', async () => {
    const unavailable = await unary('retry-unavailable', 'unavailable:exhausted');
    assert.equal(unavailable.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(unavailable.err?.details, 'server says unavailable:exhausted');
    assert.equal(calls.get('unavailable:exhausted'), 3);

    const internal = await unary('retry-internal', 'internal:exhausted');
    assert.equal(internal.err?.code, grpc.status.INTERNAL);
    assert.equal(internal.err?.details, 'server says internal:exhausted');
    assert.equal(calls.get('internal:exhausted'), 3);
  });

  // Also a regression test: the downstream closing after this local reply once destroyed the last try's
  // unread body stream with an error nobody listened for, an uncaught exception that killed the proxy
  // (here the test runner reports it and the file fails).
  it('answers UNAVAILABLE when every connect attempt failed (Envoy’s 503)', async () => {
    const r = await unary('retry-connect', 'never-arrives');
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(calls.get('never-arrives'), undefined);
    assert.equal(proxy.server.stats.counter('cluster.dead.upstream_rq_retry').value, 2);
  });

  it('answers UNAVAILABLE once the only host is ejected, without calling it', async () => {
    // Two trailers-only UNAVAILABLE answers are two consecutive 5xx for the outlier detector (as in
    // Envoy, which maps a trailers-only grpc-status to its HTTP status for outlier detection).
    for (let i = 0; i < 2; i++)
      assert.equal((await unary('eject', 'unavailable:eject')).err?.code, grpc.status.UNAVAILABLE);
    assert.equal(calls.get('unavailable:eject'), 2);
    assert.equal(proxy.server.stats.gauge('cluster.eject.outlier_detection.ejections_active').value, 1);

    const r = await unary('eject', 'unavailable:eject');
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(r.err?.details, 'no healthy upstream');
    assert.equal(calls.get('unavailable:eject'), 2, 'the ejected host got no third call');
  });
});
