import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, afterEach, describe, it } from 'node:test';
import { Client, credentials } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../../api/envoy/wire.ts';
import { createLogger, setLogLevel } from '../../core/logger.ts';
import { AdsServer } from './ads-server.ts';
import type { AdsServerOptions } from './ads-server.ts';
import { STREAM_WINDOW_BYTES } from './flow-control.ts';
import {
  DELTA_DISCOVERY_REQUEST,
  DELTA_PATH,
  DISCOVERY_REQUEST,
  DISCOVERY_RESPONSE,
  SOTW_PATH,
} from './service.ts';
import { AdsTestClient, namesOf, sidecarNode, testCluster, testEndpoints, TestGenerator } from './testing.ts';
import { TYPE_URL } from './types.ts';
import type { ProxyNode } from './types.ts';

setLogLevel('error');

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

interface Harness {
  server: AdsServer;
  port: number;
  generator: TestGenerator;
}

const open: { servers: AdsServer[]; clients: AdsTestClient[] } = { servers: [], clients: [] };

async function start(options: Partial<AdsServerOptions> = {}): Promise<Harness> {
  const generator = TestGenerator.sample();
  const server = new AdsServer({
    generator,
    debounceMs: 5,
    debounceMaxMs: 50,
    logger: createLogger('test-xds'),
    ...options,
  });
  open.servers.push(server);
  const port = await server.listen(0, '127.0.0.1');
  return { server, port, generator };
}

function client(port: number, kind: 'sotw' | 'delta' = 'sotw', shared?: Client): AdsTestClient {
  const c = new AdsTestClient(port, kind, shared);
  open.clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of open.clients.splice(0)) c.close();
  for (const s of open.servers.splice(0)) await s.close();
});

/** A gRPC length-prefixed message (uncompressed). */
function grpcFrame(payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` passes (bounded). */
async function eventually(check: () => void, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(10);
    }
  }
}

/** Connects a SotW client subscribed to CDS, LDS (wildcard) and the sample's EDS and RDS names, all ACKed. */
async function syncedSotw(port: number, node = sidecarNode('reviews-v1')): Promise<AdsTestClient> {
  const c = client(port);
  c.send({ node, type_url: TYPE_URL.cluster });
  c.ack(await c.next());
  c.send({ type_url: TYPE_URL.endpoint, resource_names: [REVIEWS, RATINGS] });
  c.ack(await c.next(), [REVIEWS, RATINGS]);
  c.send({ type_url: TYPE_URL.listener });
  c.ack(await c.next());
  c.send({ type_url: TYPE_URL.route, resource_names: ['9080'] });
  c.ack(await c.next(), ['9080']);
  return c;
}

describe('AdsServer: state of the world', { timeout: 20_000 }, () => {
  it('answers first requests that arrive together in push order (clusters before listeners)', async () => {
    const { port } = await start();
    // One HTTP/2 write holding both requests, listener first: they reach the server together.
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({
      ':method': 'POST',
      ':path': SOTW_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let buffered = Buffer.alloc(0);
    const types: string[] = [];
    const done = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
          const length = buffered.readUInt32BE(1);
          types.push(decodeMessage(DISCOVERY_RESPONSE, buffered.subarray(5, 5 + length)).type_url as string);
          buffered = buffered.subarray(5 + length);
          if (types.length === 2) resolve();
        }
      });
    });
    stream.write(
      Buffer.concat([
        grpcFrame(
          encodeMessage(DISCOVERY_REQUEST, { node: sidecarNode('reviews-v1'), type_url: TYPE_URL.listener }),
        ),
        grpcFrame(encodeMessage(DISCOVERY_REQUEST, { type_url: TYPE_URL.cluster })),
      ]),
    );
    await done;
    assert.deepEqual(types, [TYPE_URL.cluster, TYPE_URL.listener]);
    stream.close();
    session.close();
  });

  it('answers first requests with versions and nonces, and records ACKs', async () => {
    const { server, port } = await start();
    const connects: ProxyNode[] = [];
    server.on('connect', (node) => connects.push(node));
    const c = client(port);
    c.send({ node: sidecarNode('reviews-v1'), type_url: TYPE_URL.cluster });
    const cds = await c.next();
    c.send({ type_url: TYPE_URL.listener });
    const lds = await c.next();
    assert.equal(cds.type_url, TYPE_URL.cluster);
    assert.deepEqual(namesOf(cds), [RATINGS, REVIEWS]);
    assert.equal(lds.type_url, TYPE_URL.listener);
    assert.deepEqual(namesOf(lds), ['0.0.0.0_3306', '0.0.0.0_9080']);
    assert.match(cds.version_info as string, /^[0-9a-f]{16}$/);
    assert.notEqual(cds.nonce, lds.nonce);
    assert.deepEqual(cds.control_plane, { identifier: 'weft' });
    assert.equal(connects.length, 1);
    assert.equal(connects[0].name, 'reviews-v1');

    let [status] = server.status();
    assert.deepEqual(
      status.types.map((t) => [t.typeUrl, t.state]),
      [
        [TYPE_URL.cluster, 'STALE'],
        [TYPE_URL.listener, 'STALE'],
      ],
    );
    c.ack(cds);
    c.ack(lds);
    await eventually(() => {
      [status] = server.status();
      assert.ok(status.types.every((t) => t.state === 'SYNCED'));
    });
    const cdsStatus = status.types[0];
    assert.equal(cdsStatus.lastAckedVersion, cds.version_info);
    assert.equal(cdsStatus.lastSentNonce, cds.nonce);
    assert.deepEqual(cdsStatus.subscribed, ['*']);
    assert.equal(cdsStatus.resources, 2);
    assert.equal(status.stream, 'sotw');

    // Named types: only what was asked for; an unknown name is simply absent.
    c.send({ type_url: TYPE_URL.endpoint, resource_names: [REVIEWS, 'outbound|1||nope'] });
    const eds = await c.next();
    assert.deepEqual(namesOf(eds), [REVIEWS]);
    assert.equal((eds.resources as { endpoints: unknown[] }[])[0].endpoints.length, 2);
  });

  it('records a NACK with its message, keeps serving, and does not resend the same content', async () => {
    const { server, port, generator } = await start();
    const nacks: string[] = [];
    server.on('nack', (e) => nacks.push(e.message));
    const c = await syncedSotw(port);
    generator.set(testCluster(REVIEWS, { connect_timeout: '2s' }));
    server.push({ full: true, reason: 'config' });
    const cds = await c.next();
    assert.equal(cds.type_url, TYPE_URL.cluster);
    const before = server.status()[0].types.find((t) => t.typeUrl === TYPE_URL.cluster)!;
    c.send({
      type_url: TYPE_URL.cluster,
      response_nonce: cds.nonce,
      version_info: before.lastAckedVersion,
      error_detail: { code: 3, message: 'cluster outbound|9080: bad connect_timeout' },
    });
    await eventually(() => {
      const t = server.status()[0].types.find((s) => s.typeUrl === TYPE_URL.cluster)!;
      assert.equal(t.state, 'NACK');
      assert.equal(t.error, 'cluster outbound|9080: bad connect_timeout');
      assert.equal(t.lastAckedVersion, before.lastAckedVersion);
    });
    assert.deepEqual(nacks, ['cluster outbound|9080: bad connect_timeout']);
    assert.equal(server.stats().nacks.cds, 1);
    // The same content again: nothing to send.
    server.push({ full: true, reason: 'config' });
    await c.none(150);
    // New content: sent, and the type is STALE until answered.
    generator.set(testCluster(REVIEWS, { connect_timeout: '3s' }));
    server.push({ full: true, reason: 'config' });
    const next = await c.next();
    assert.equal(next.type_url, TYPE_URL.cluster);
    assert.notEqual(next.version_info, cds.version_info);
    c.ack(next);
    await eventually(() => {
      const t = server.status()[0].types.find((s) => s.typeUrl === TYPE_URL.cluster)!;
      assert.equal(t.state, 'SYNCED');
      assert.equal(t.error, undefined);
      assert.equal(t.lastAckedVersion, next.version_info);
    });
  });

  it('ignores a request with a stale nonce, for ACK and for subscription changes', async () => {
    const { server, port, generator } = await start();
    const c = await syncedSotw(port);
    const oldNonce = server.status()[0].types.find((t) => t.typeUrl === TYPE_URL.endpoint)!.lastSentNonce;
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.7', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint' });
    const eds = await c.next();
    assert.notEqual(eds.nonce, oldNonce);
    // A NACK of the old nonce, with a new subscription: stale, so neither counts.
    c.send({
      type_url: TYPE_URL.endpoint,
      response_nonce: oldNonce,
      resource_names: [REVIEWS],
      error_detail: { code: 3, message: 'late' },
    });
    await c.none(100);
    let t = server.status()[0].types.find((s) => s.typeUrl === TYPE_URL.endpoint)!;
    assert.equal(t.state, 'STALE');
    assert.equal(t.error, undefined);
    assert.deepEqual(t.subscribed, [RATINGS, REVIEWS]);
    c.ack(eds, [REVIEWS, RATINGS]);
    await eventually(() => {
      t = server.status()[0].types.find((s) => s.typeUrl === TYPE_URL.endpoint)!;
      assert.equal(t.state, 'SYNCED');
      assert.equal(t.lastAckedVersion, eds.version_info);
    });
  });

  it('sends only ClusterLoadAssignments on an endpoint-only push, and only the changed ones', async () => {
    const { server, port, generator } = await start();
    const c = await syncedSotw(port);
    generator.calls.length = 0;
    generator.set(testEndpoints(RATINGS, [{ address: '10.0.1.2', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint' });
    const eds = await c.next();
    assert.equal(eds.type_url, TYPE_URL.endpoint);
    assert.deepEqual(namesOf(eds), [RATINGS]);
    await c.none(100);
    assert.deepEqual(
      generator.calls.map((call) => call.typeUrl),
      [TYPE_URL.endpoint],
    );
    assert.deepEqual(generator.calls[0].names, [RATINGS, REVIEWS]);
  });

  it('regenerates only the named clusters on an endpoint push that names them, and only those subscribed', async () => {
    const { server, port, generator } = await start();
    const c = await syncedSotw(port);
    generator.calls.length = 0;
    generator.set(testEndpoints(RATINGS, [{ address: '10.0.1.3', port: 9080 }]));
    server.push({
      full: false,
      reason: 'endpoint',
      endpointClusters: new Set([RATINGS, 'outbound|1||not-subscribed']),
    });
    const eds = await c.next();
    assert.deepEqual(namesOf(eds), [RATINGS]);
    c.ack(eds, [REVIEWS, RATINGS]);
    assert.deepEqual(generator.calls, [
      { proxy: generator.calls[0].proxy, typeUrl: TYPE_URL.endpoint, names: [RATINGS] },
    ]);
    // The version covers the whole set the proxy holds: the same as a full regeneration would give.
    await eventually(() => assert.equal(server.status()[0].types[1].state, 'SYNCED'));
    const versionAfterFastPath = server.status()[0].types[1].lastSentVersion;
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.5', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint' });
    const full = await c.next();
    assert.deepEqual(namesOf(full), [REVIEWS]);
    assert.notEqual(server.status()[0].types[1].lastSentVersion, versionAfterFastPath);
    // A change the push does not name is not looked at.
    c.ack(full, [REVIEWS, RATINGS]);
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.6', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint', endpointClusters: new Set([RATINGS]) });
    await c.none(150);
  });

  it('raises its HTTP/2 receive windows, so an ACK repeating a large subscription is not held back', async () => {
    const { port: p2 } = await start();
    const session = http2.connect(`http://127.0.0.1:${p2}`);
    try {
      // The server sends its settings right after the connection opens; the raised ones come in a second frame.
      const settings = await new Promise<http2.Settings>((resolve) => {
        let last: http2.Settings = {};
        const timer = setTimeout(() => resolve(last), 2000);
        session.on('remoteSettings', (s) => {
          last = s;
          if (s.initialWindowSize !== 65535) {
            clearTimeout(timer);
            resolve(s);
          }
        });
      });
      assert.equal(settings.initialWindowSize, STREAM_WINDOW_BYTES);
    } finally {
      session.destroy();
    }
  });

  it('merges a burst of pushes into one round and one response', async () => {
    const { server, port, generator } = await start({ debounceMs: 150, debounceMaxMs: 5000 });
    const c = await syncedSotw(port);
    const rounds: number[] = [];
    server.on('round', (r) => rounds.push(r.merged));
    for (let i = 0; i < 10; i++) {
      generator.set(testEndpoints(REVIEWS, [{ address: `10.0.0.${i + 10}`, port: 9080 }]));
      server.push({ full: false, reason: `endpoint ${i}` });
      await sleep(5);
    }
    const eds = await c.next();
    const address = (eds.resources as { endpoints: { lb_endpoints: { endpoint: unknown }[] }[] }[])[0]
      .endpoints[0].lb_endpoints[0].endpoint;
    assert.deepEqual(address, { address: { socket_address: { address: '10.0.0.19', port_value: 9080 } } });
    c.ack(eds, [REVIEWS, RATINGS]);
    await c.none(150);
    assert.deepEqual(rounds, [10]);
    assert.equal(server.stats().pushRequests, 10);
  });

  it('never delays a steady stream of pushes beyond debounceMaxMs', async () => {
    const { server, port } = await start({ debounceMs: 50, debounceMaxMs: 150 });
    await syncedSotw(port);
    const roundsAt: number[] = [];
    server.on('round', () => roundsAt.push(Date.now()));
    const t0 = Date.now();
    // A push every 20 ms never leaves a 50 ms quiet period; rounds must still fire every ~150 ms.
    while (Date.now() - t0 < 700) {
      server.push({ full: false, reason: 'churn' });
      await sleep(20);
    }
    // Without the cap no round would fire while the pushes go on; the margin is for a busy machine.
    assert.ok(roundsAt.length >= 2, `rounds: ${roundsAt.length}`);
    assert.ok(roundsAt[0] - t0 < 400, `first round after ${roundsAt[0] - t0} ms`);
  });

  it('keeps one push in flight: no second push until the first is answered, then the latest state', async () => {
    const { server, port, generator } = await start({ ackTimeoutMs: 30_000 });
    const c = await syncedSotw(port);
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.30', port: 9080 }]));
    server.push({ full: false, reason: 'one' });
    const first = await c.next();
    assert.deepEqual(namesOf(first), [REVIEWS]);
    // Not ACKed: two more changes must wait, and then go out as one response with the latest state.
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.31', port: 9080 }]));
    server.push({ full: false, reason: 'two' });
    await sleep(30);
    generator.set(testEndpoints(RATINGS, [{ address: '10.0.1.32', port: 9080 }]));
    server.push({ full: false, reason: 'three' });
    await c.none(200);
    c.ack(first, [REVIEWS, RATINGS]);
    const second = await c.next();
    assert.deepEqual(namesOf(second), [RATINGS, REVIEWS]);
    const addresses = (
      second.resources as { endpoints: { lb_endpoints: { endpoint: { address: unknown } }[] }[] }[]
    ).map((r) => r.endpoints[0].lb_endpoints[0].endpoint.address);
    assert.ok(JSON.stringify(addresses).includes('10.0.0.31'));
    assert.ok(JSON.stringify(addresses).includes('10.0.1.32'));
    await c.none(100);
  });

  it('pushes anyway after ackTimeoutMs when a proxy never answers', async () => {
    const { server, port, generator } = await start({ ackTimeoutMs: 250 });
    const c = await syncedSotw(port);
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.40', port: 9080 }]));
    server.push({ full: false, reason: 'one' });
    await c.next();
    const t0 = Date.now();
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.41', port: 9080 }]));
    server.push({ full: false, reason: 'two' });
    const second = await c.next(2000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 150, `second push after ${waited} ms`);
    assert.ok(JSON.stringify(second.resources).includes('10.0.0.41'));
  });

  it('pushes only to the proxies a push affects', async () => {
    const { server, port, generator } = await start();
    const a = await syncedSotw(port, sidecarNode('reviews-v1', '10.0.0.1'));
    const b = await syncedSotw(port, sidecarNode('ratings-v1', '10.0.0.2'));
    generator.set(testCluster(RATINGS, { connect_timeout: '5s' }));
    server.push({ full: true, reason: 'config', affects: (p) => p.name === 'ratings-v1' });
    const cds = await b.next();
    assert.equal(cds.type_url, TYPE_URL.cluster);
    await a.none(150);
    // Predicates of merged pushes are OR-ed.
    generator.set(testCluster(RATINGS, { connect_timeout: '6s' }));
    server.push({ full: true, reason: 'x', affects: (p) => p.name === 'reviews-v1' });
    server.push({ full: true, reason: 'y', affects: () => false });
    assert.equal((await a.next()).type_url, TYPE_URL.cluster);
    await b.none(150);
  });

  it('sends nothing for a type whose generation fails, and recovers on the next push', async () => {
    const { server, port, generator } = await start();
    const c = await syncedSotw(port);
    generator.fail = new Error('snapshot is broken');
    generator.set(testCluster(REVIEWS, { connect_timeout: '9s' }));
    server.push({ full: true, reason: 'config' });
    await c.none(150);
    generator.fail = null;
    server.push({ full: true, reason: 'config' });
    assert.equal((await c.next()).type_url, TYPE_URL.cluster);
  });

  it('encodes each distinct resource once across proxies', async () => {
    const { server, port, generator } = await start();
    // Fresh objects on every call: only the content cache can find the shared encoding.
    generator.cloneOnGenerate = true;
    const shared = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    const clients = Array.from({ length: 20 }, () => client(port, 'sotw', shared));
    clients.forEach((c, i) => c.send({ node: sidecarNode(`app-${i}`), type_url: TYPE_URL.cluster }));
    const firsts = await Promise.all(clients.map((c) => c.next()));
    assert.equal(server.stats().encodedResources, 2);
    clients.forEach((c, i) => c.ack(firsts[i]));
    await eventually(() => assert.ok(server.status().every((p) => p.types[0].state === 'SYNCED')));
    generator.set(testCluster(REVIEWS, { connect_timeout: '4s' }));
    server.push({ full: true, reason: 'config' });
    const pushed = await Promise.all(clients.map((c) => c.next()));
    assert.ok(pushed.every((r) => r.version_info === pushed[0].version_info));
    assert.equal(server.stats().encodedResources, 3);
    shared.close();
  });

  it('emits disconnect when a stream ends', async () => {
    const { server, port } = await start();
    const gone: string[] = [];
    server.on('disconnect', (node) => gone.push(node.id));
    const c = await syncedSotw(port);
    assert.equal(server.connectedProxies, 1);
    c.close();
    await eventually(() => assert.deepEqual(gone, [sidecarNode('reviews-v1').id as string]));
    assert.equal(server.connectedProxies, 0);
  });
});

describe('AdsServer: delta', { timeout: 20_000 }, () => {
  it('subscribes, unsubscribes, sends only changes and removed_resources', async () => {
    const { server, port, generator } = await start();
    const c = client(port, 'delta');
    c.send({ node: sidecarNode('reviews-v1'), type_url: TYPE_URL.cluster });
    const cds = await c.next();
    assert.equal(cds.type_url, TYPE_URL.cluster);
    assert.deepEqual(namesOf(cds), [RATINGS, REVIEWS]);
    const versions = Object.fromEntries(
      (cds.resources as { name: string; version: string }[]).map((r) => [r.name, r.version]),
    );
    assert.match(versions[REVIEWS], /^[0-9a-f]{16}$/);
    c.send({ type_url: TYPE_URL.cluster, response_nonce: cds.nonce });

    c.send({ type_url: TYPE_URL.endpoint, resource_names_subscribe: [REVIEWS, 'outbound|1||missing'] });
    const eds = await c.next();
    assert.deepEqual(namesOf(eds), [REVIEWS]);
    assert.deepEqual(eds.removed_resources, ['outbound|1||missing']);
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
    await eventually(() => assert.ok(server.status()[0].types.every((t) => t.state === 'SYNCED')));

    // Subscribing to one more sends only it.
    c.send({ type_url: TYPE_URL.endpoint, resource_names_subscribe: [RATINGS] });
    const eds2 = await c.next();
    assert.deepEqual(namesOf(eds2), [RATINGS]);
    assert.equal(eds2.removed_resources, undefined);
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: eds2.nonce });

    // A cluster changes: only it is sent. A cluster goes away: removed_resources.
    generator.set(testCluster(REVIEWS, { connect_timeout: '7s' }));
    generator.delete(TYPE_URL.cluster, RATINGS);
    server.push({ full: true, reason: 'config' });
    const cds2 = await c.next();
    assert.equal(cds2.type_url, TYPE_URL.cluster);
    assert.deepEqual(namesOf(cds2), [REVIEWS]);
    assert.deepEqual(cds2.removed_resources, [RATINGS]);
    c.send({ type_url: TYPE_URL.cluster, response_nonce: cds2.nonce });

    // Unsubscribed endpoints are no longer pushed.
    c.send({ type_url: TYPE_URL.endpoint, resource_names_unsubscribe: [REVIEWS] });
    await sleep(30);
    generator.set(testEndpoints(REVIEWS, [{ address: '10.9.9.9', port: 1 }]));
    server.push({ full: false, reason: 'endpoint' });
    await c.none(150);
    const eds3 = server.status()[0].types.find((t) => t.typeUrl === TYPE_URL.endpoint)!;
    assert.deepEqual(eds3.subscribed, ['outbound|1||missing', RATINGS]);
    assert.equal(server.status()[0].stream, 'delta');
  });

  it('takes the endpoint fast path: only named, subscribed clusters, with removals for named ones gone', async () => {
    const { server, port, generator } = await start();
    const c = client(port, 'delta');
    c.send({
      node: sidecarNode('reviews-v1'),
      type_url: TYPE_URL.endpoint,
      resource_names_subscribe: [REVIEWS, RATINGS],
    });
    const eds = await c.next();
    assert.deepEqual(namesOf(eds), [RATINGS, REVIEWS]);
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
    await eventually(() => assert.equal(server.status()[0].types[0].state, 'SYNCED'));
    generator.calls.length = 0;
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.8', port: 9080 }]));
    generator.delete(TYPE_URL.endpoint, RATINGS);
    server.push({ full: false, reason: 'endpoint', endpointClusters: new Set([REVIEWS]) });
    const pushed = await c.next();
    assert.deepEqual(namesOf(pushed), [REVIEWS]);
    assert.equal(pushed.removed_resources, undefined, 'RATINGS was not named: not looked at');
    assert.deepEqual(
      generator.calls.map((call) => call.names),
      [[REVIEWS]],
    );
    c.send({ type_url: TYPE_URL.endpoint, response_nonce: pushed.nonce });
    await eventually(() => assert.equal(server.status()[0].types[0].state, 'SYNCED'));
    server.push({ full: false, reason: 'endpoint', endpointClusters: new Set([RATINGS]) });
    const removed = await c.next();
    assert.deepEqual(removed.removed_resources, [RATINGS]);
  });

  it('honours initial_resource_versions: a reconnecting proxy gets only what it lacks', async () => {
    const { port } = await start();
    const first = client(port, 'delta');
    first.send({ node: sidecarNode('reviews-v1'), type_url: TYPE_URL.cluster });
    const cds = await first.next();
    const versions = Object.fromEntries(
      (cds.resources as { name: string; version: string }[]).map((r) => [r.name, r.version]),
    );
    first.close();
    const again = client(port, 'delta');
    again.send({
      node: sidecarNode('reviews-v1'),
      type_url: TYPE_URL.cluster,
      initial_resource_versions: { [REVIEWS]: versions[REVIEWS], [RATINGS]: 'old', 'outbound|1||gone': 'x' },
    });
    const resync = await again.next();
    assert.deepEqual(namesOf(resync), [RATINGS]);
    assert.deepEqual(resync.removed_resources, ['outbound|1||gone']);
  });

  it('records a delta NACK and ignores a stale nonce', async () => {
    const { server, port, generator } = await start();
    const c = client(port, 'delta');
    c.send({ node: sidecarNode('reviews-v1'), type_url: TYPE_URL.cluster });
    const cds = await c.next();
    c.send({ type_url: TYPE_URL.cluster, response_nonce: cds.nonce });
    generator.set(testCluster(REVIEWS, { connect_timeout: '8s' }));
    server.push({ full: true, reason: 'config' });
    const cds2 = await c.next();
    c.send({ type_url: TYPE_URL.cluster, response_nonce: cds.nonce, error_detail: { message: 'stale' } });
    await sleep(50);
    assert.equal(server.status()[0].types[0].state, 'STALE');
    c.send({ type_url: TYPE_URL.cluster, response_nonce: cds2.nonce, error_detail: { message: 'rejected' } });
    await eventually(() => {
      const t = server.status()[0].types[0];
      assert.equal(t.state, 'NACK');
      assert.equal(t.error, 'rejected');
    });
  });
});

describe('AdsServer: bad input and scale', { timeout: 30_000 }, () => {
  /** Sends raw gRPC frames on a plain HTTP/2 stream; resolves with the trailers' status. */
  function rawCall(
    port: number,
    frames: Buffer[],
    path: string = SOTW_PATH,
  ): Promise<{ status: string; message: string }> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', reject);
      const stream = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let headers: http2.IncomingHttpHeaders = {};
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => {
        resolve({
          status: String(t['grpc-status'] ?? headers['grpc-status']),
          message: decodeURIComponent(String(t['grpc-message'] ?? headers['grpc-message'] ?? '')),
        });
        session.close();
      });
      stream.on('end', () => {
        if (headers['grpc-status'] !== undefined) {
          resolve({
            status: String(headers['grpc-status']),
            message: decodeURIComponent(String(headers['grpc-message'] ?? '')),
          });
        }
        session.close();
      });
      stream.on('error', reject);
      stream.resume();
      stream.setTimeout(5000, () => reject(new Error('raw gRPC call: no status within 5 s')));
      for (const f of frames) stream.write(f);
    });
  }

  it('ends a stream that sends garbage with INVALID_ARGUMENT and keeps serving others', async () => {
    const { server, port, generator } = await start();
    const good = await syncedSotw(port);
    const garbage = await rawCall(port, [
      grpcFrame(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2])),
    ]);
    assert.equal(garbage.status, '3');
    assert.match(garbage.message, /malformed envoy.service.discovery.v3.DiscoveryRequest/);
    // A well-formed request without a node, and one with a bad node.
    const noNode = await rawCall(port, [
      grpcFrame(encodeMessage(DISCOVERY_REQUEST, { type_url: TYPE_URL.cluster })),
    ]);
    assert.equal(noNode.status, '3');
    assert.match(noNode.message, /must carry node/);
    const badNode = await rawCall(port, [
      grpcFrame(
        encodeMessage(DISCOVERY_REQUEST, {
          node: { id: 'x', metadata: { LABELS: 'nope' } },
          type_url: TYPE_URL.cluster,
        }),
      ),
    ]);
    assert.equal(badNode.status, '3');
    assert.match(badNode.message, /node.metadata.LABELS/);
    const noType = await rawCall(port, [grpcFrame(encodeMessage(DISCOVERY_REQUEST, { node: { id: 'x' } }))]);
    assert.equal(noType.status, '3');
    assert.match(noType.message, /type_url is required/);
    // Random bytes of many lengths: never a crash, always a status.
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        rawCall(port, [grpcFrame(Uint8Array.from({ length: 3 + i * 7 }, rand))]),
      ),
    );
    for (const r of results) assert.equal(r.status, '3', JSON.stringify(r));
    assert.ok(server.stats().invalidRequests >= 34);
    // The good client is unaffected, and new clients are served.
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.77', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint' });
    assert.deepEqual(namesOf(await good.next()), [REVIEWS]);
    const late = client(port);
    late.send({ node: sidecarNode('late'), type_url: TYPE_URL.cluster });
    assert.equal((await late.next()).type_url, TYPE_URL.cluster);
  });

  it('ends a delta stream that sends garbage with INVALID_ARGUMENT and keeps serving others', async () => {
    const { server, port, generator } = await start();
    const good = client(port, 'delta');
    good.send({
      node: sidecarNode('reviews-v1'),
      type_url: TYPE_URL.endpoint,
      resource_names_subscribe: [REVIEWS],
    });
    const eds = await good.next();
    assert.deepEqual(namesOf(eds), [REVIEWS]);
    good.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
    await eventually(() => assert.equal(server.status()[0].types[0].state, 'SYNCED'));

    // A length that runs past the end of the message.
    const garbage = await rawCall(
      port,
      [grpcFrame(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]))],
      DELTA_PATH,
    );
    assert.equal(garbage.status, '3');
    assert.match(garbage.message, /malformed envoy.service.discovery.v3.DeltaDiscoveryRequest/);
    const noNode = await rawCall(
      port,
      [grpcFrame(encodeMessage(DELTA_DISCOVERY_REQUEST, { type_url: TYPE_URL.cluster }))],
      DELTA_PATH,
    );
    assert.equal(noNode.status, '3');
    assert.match(noNode.message, /must carry node/);
    const badNode = await rawCall(
      port,
      [
        grpcFrame(
          encodeMessage(DELTA_DISCOVERY_REQUEST, {
            node: { id: 'x', metadata: { LABELS: 'nope' } },
            type_url: TYPE_URL.cluster,
          }),
        ),
      ],
      DELTA_PATH,
    );
    assert.equal(badNode.status, '3');
    assert.match(badNode.message, /node.metadata.LABELS/);
    // Garbage after a well-formed first request on the same stream.
    const later = await rawCall(
      port,
      [
        grpcFrame(
          encodeMessage(DELTA_DISCOVERY_REQUEST, { node: sidecarNode('later'), type_url: TYPE_URL.cluster }),
        ),
        grpcFrame(Uint8Array.from([0x12, 0x40, 0x61])),
      ],
      DELTA_PATH,
    );
    assert.equal(later.status, '3');
    assert.match(later.message, /malformed envoy.service.discovery.v3.DeltaDiscoveryRequest/);
    // Random bytes of many lengths: never a crash, always a status.
    let seed = 11;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        rawCall(port, [grpcFrame(Uint8Array.from({ length: 3 + i * 7 }, rand))], DELTA_PATH),
      ),
    );
    for (const r of results) assert.equal(r.status, '3', JSON.stringify(r));
    assert.ok(server.stats().invalidRequests >= 34);
    // The good delta client is unaffected, and new delta clients are served.
    generator.set(testEndpoints(REVIEWS, [{ address: '10.0.0.78', port: 9080 }]));
    server.push({ full: false, reason: 'endpoint' });
    assert.deepEqual(namesOf(await good.next()), [REVIEWS]);
    const late = client(port, 'delta');
    late.send({ node: sidecarNode('late'), type_url: TYPE_URL.cluster });
    assert.equal((await late.next()).type_url, TYPE_URL.cluster);
  });

  it('serves 200 concurrent streams and pushes to all of them', async () => {
    const { server, port, generator } = await start({ debounceMs: 10 });
    const channels = Array.from(
      { length: 4 },
      () => new Client(`127.0.0.1:${port}`, credentials.createInsecure()),
    );
    const clients = Array.from({ length: 200 }, (_, i) =>
      client(port, i % 2 ? 'delta' : 'sotw', channels[i % 4]),
    );
    clients.forEach((c, i) =>
      c.send({ node: sidecarNode(`app-${i}`, `10.1.${i >> 8}.${i & 255}`), type_url: TYPE_URL.cluster }),
    );
    const first = await Promise.all(clients.map((c) => c.next(5000)));
    first.forEach((r, i) => {
      if (i % 2) clients[i].send({ type_url: TYPE_URL.cluster, response_nonce: r.nonce });
      else clients[i].ack(r);
    });
    await eventually(() => {
      const s = server.status();
      assert.equal(s.length, 200);
      assert.ok(s.every((p) => p.types[0].state === 'SYNCED'));
    }, 5000);
    generator.set(testCluster(REVIEWS, { connect_timeout: '11s' }));
    server.push({ full: true, reason: 'config' });
    const pushed = await Promise.all(clients.map((c) => c.next(5000)));
    pushed.forEach((r, i) => {
      // State of the world: the whole set; delta: the changed cluster only.
      assert.deepEqual(namesOf(r), i % 2 ? [REVIEWS] : [RATINGS, REVIEWS]);
    });
    for (const ch of channels) ch.close();
  });
});

after(() => setLogLevel('info'));
