import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessage, EncodedAny, encodeMessage } from '../../api/envoy/wire.ts';
import type { WireJson } from '../../api/envoy/wire.ts';
import { createLogger, setLogLevel } from '../../core/logger.ts';
import { AdsClient } from './ads-client.ts';
import { Backoff } from './backoff.ts';
import type { GrpcStream, GrpcStreamHandlers } from './grpc-stream.ts';
import { DELTA_PATH, SOTW_PATH, TYPE_URL } from './type-urls.ts';
import type { XdsSink, XdsUpdate } from './types.ts';

type Obj = { [key: string]: WireJson };

setLogLevel('error');

/** One stream as the server sees it: requests decoded, responses encoded, as on the wire. */
class FakeStream implements GrpcStream {
  readonly sent: Obj[] = [];
  cancelled: string | null = null;
  readonly path: string;
  private readonly handlers: GrpcStreamHandlers;
  private readonly delta: boolean;

  constructor(path: string, handlers: GrpcStreamHandlers) {
    this.path = path;
    this.handlers = handlers;
    this.delta = path === DELTA_PATH;
  }

  send(bytes: Uint8Array): void {
    const type = this.delta
      ? 'envoy.service.discovery.v3.DeltaDiscoveryRequest'
      : 'envoy.service.discovery.v3.DiscoveryRequest';
    this.sent.push(decodeMessage(type, bytes));
  }

  cancel(reason: string): void {
    if (this.cancelled !== null) return;
    this.cancelled = reason;
    this.handlers.onClose({ code: 1, message: reason });
  }

  open(): void {
    this.handlers.onOpen();
  }

  respond(json: Obj): void {
    const type = this.delta
      ? 'envoy.service.discovery.v3.DeltaDiscoveryResponse'
      : 'envoy.service.discovery.v3.DiscoveryResponse';
    this.handlers.onMessage(Buffer.from(encodeMessage(type, json)));
  }

  raw(bytes: Buffer): void {
    this.handlers.onMessage(bytes);
  }

  fail(message: string): void {
    this.handlers.onClose({ code: 14, message });
  }
}

class FakeSink implements XdsSink {
  readonly updates: XdsUpdate[] = [];
  readonly names = new Map<string, Set<string>>();
  readonly states: boolean[] = [];
  /** Returns an error message to refuse an update. */
  reject: (u: XdsUpdate) => string | null = () => null;

  apply(u: XdsUpdate): Promise<void> {
    this.updates.push(u);
    const err = this.reject(u);
    return err === null ? Promise.resolve() : Promise.reject(new Error(err));
  }

  resourceNames(typeUrl: string): ReadonlySet<string> {
    return this.names.get(typeUrl) ?? new Set();
  }

  onConnectionState(connected: boolean): void {
    this.states.push(connected);
  }
}

function setup(
  mode: 'sotw' | 'delta',
  opts: { nodeOnFirstMessageOnly?: boolean; connect?: () => void; backoff?: Backoff; stableMs?: number } = {},
) {
  const sink = new FakeSink();
  const streams: FakeStream[] = [];
  const client = new AdsClient({
    mode,
    node: { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local', cluster: 'a.ns' },
    nodeOnFirstMessageOnly: opts.nodeOnFirstMessageOnly ?? true,
    wildcardTypes: [TYPE_URL.cluster, TYPE_URL.listener],
    sink,
    connect: (path, handlers) => {
      opts.connect?.();
      const s = new FakeStream(path, handlers);
      streams.push(s);
      return s;
    },
    backoff: opts.backoff ?? new Backoff({ baseMs: 1, maxMs: 4 }),
    stableMs: opts.stableMs ?? 60_000,
    logger: createLogger('test'),
  });
  return { sink, streams, client, last: () => streams[streams.length - 1] };
}

const cluster = (name: string, extra: Obj = {}): Obj => ({ '@type': TYPE_URL.cluster, name, ...extra });
const cla = (name: string): Obj => ({ '@type': TYPE_URL.endpoint, cluster_name: name });

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('ADS client: state of the world', () => {
  it('subscribes to clusters then listeners, with the node in the first request only', () => {
    const { client, last } = setup('sotw');
    client.start();
    const s = last();
    assert.equal(s.path, SOTW_PATH);
    assert.deepEqual(
      s.sent.map((r) => r.type_url),
      [TYPE_URL.cluster, TYPE_URL.listener],
    );
    assert.deepEqual((s.sent[0].node as Obj).id, 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local');
    assert.equal(s.sent[1].node, undefined);
    assert.equal(s.sent[0].resource_names, undefined, 'a wildcard subscription names nothing');
    client.stop();
  });

  it('sends the node in every request unless set_node_on_first_message_only', () => {
    const { client, last } = setup('sotw', { nodeOnFirstMessageOnly: false });
    client.start();
    assert.ok(last().sent.every((r) => r.node !== undefined));
    client.stop();
  });

  it('ACKs with the version and nonce; a later response without a cluster removes it', async () => {
    const { client, sink, last } = setup('sotw');
    client.start();
    const s = last();
    s.open();
    s.respond({
      version_info: 'v1',
      resources: [cluster('a'), cluster('b')],
      type_url: TYPE_URL.cluster,
      nonce: 'n1',
    });
    await client.idle();
    assert.deepEqual(sink.updates[0], {
      typeUrl: TYPE_URL.cluster,
      version: 'v1',
      resources: [
        { name: 'a', version: 'v1', json: cluster('a') },
        { name: 'b', version: 'v1', json: cluster('b') },
      ],
      removed: [],
    });
    assert.deepEqual(s.sent[2], { version_info: 'v1', type_url: TYPE_URL.cluster, response_nonce: 'n1' });
    s.respond({ version_info: 'v2', resources: [cluster('b')], type_url: TYPE_URL.cluster, nonce: 'n2' });
    await client.idle();
    assert.deepEqual(sink.updates[1].removed, ['a']);
    assert.equal(s.sent[3].version_info, 'v2');
    assert.deepEqual(sink.states, [true]);
    client.stop();
  });

  it('NACKs with the previous version, the nonce and the error, and keeps the accepted set for removals', async () => {
    const { client, sink, last } = setup('sotw');
    client.start();
    const s = last();
    s.respond({ version_info: 'v1', resources: [cluster('a')], type_url: TYPE_URL.cluster, nonce: 'n1' });
    await client.idle();
    sink.reject = (u) => (u.version === 'v2' ? 'Cluster "bad": lb_policy: unknown value 42' : null);
    s.respond({ version_info: 'v2', resources: [cluster('bad')], type_url: TYPE_URL.cluster, nonce: 'n2' });
    await client.idle();
    assert.deepEqual(s.sent.at(-1), {
      version_info: 'v1',
      type_url: TYPE_URL.cluster,
      response_nonce: 'n2',
      error_detail: { code: 3, message: 'Cluster "bad": lb_policy: unknown value 42' },
    });
    s.respond({ version_info: 'v3', resources: [cluster('c')], type_url: TYPE_URL.cluster, nonce: 'n3' });
    await client.idle();
    assert.deepEqual(sink.updates.at(-1)!.removed, ['a'], 'removals are relative to the last accepted set');
    assert.equal(s.sent.at(-1)!.version_info, 'v3');
    client.stop();
  });

  it('subscribes to the endpoint names the sink needs, applies only those, and unsubscribes', async () => {
    const { client, sink, last } = setup('sotw');
    client.start();
    const s = last();
    sink.names.set(TYPE_URL.endpoint, new Set(['web']));
    s.respond({ version_info: 'v1', resources: [cluster('web')], type_url: TYPE_URL.cluster, nonce: 'n1' });
    await client.idle();
    const eds = s.sent.at(-1)!;
    assert.deepEqual(eds, { resource_names: ['web'], type_url: TYPE_URL.endpoint });
    assert.equal(s.sent.at(-2)!.type_url, TYPE_URL.cluster, 'the ACK goes first');
    s.respond({
      version_info: 'e1',
      resources: [cla('web'), cla('nobody-asked')],
      type_url: TYPE_URL.endpoint,
      nonce: 'n2',
    });
    await client.idle();
    assert.deepEqual(
      sink.updates.at(-1)!.resources.map((r) => r.name),
      ['web'],
    );
    assert.deepEqual(s.sent.at(-1), {
      version_info: 'e1',
      resource_names: ['web'],
      type_url: TYPE_URL.endpoint,
      response_nonce: 'n2',
    });
    sink.names.set(TYPE_URL.endpoint, new Set());
    s.respond({ version_info: 'v2', resources: [], type_url: TYPE_URL.cluster, nonce: 'n3' });
    await client.idle();
    assert.deepEqual(s.sent.at(-1), {
      version_info: 'e1',
      type_url: TYPE_URL.endpoint,
      response_nonce: 'n2',
    });
    client.stop();
  });

  it('refuses an undecodable or mistyped resource, naming its position', async () => {
    const { client, sink, last } = setup('sotw');
    client.start();
    const s = last();
    s.respond({
      version_info: 'v1',
      resources: [new EncodedAny(TYPE_URL.cluster, Buffer.from([0x0a, 0xff])) as unknown as Obj],
      type_url: TYPE_URL.cluster,
      nonce: 'n1',
    });
    await client.idle();
    const bad = sink.updates[0].resources[0];
    assert.equal(bad.name, 'resources[0]');
    assert.match(bad.error ?? '', /malformed envoy\.config\.cluster\.v3\.Cluster/);
    s.respond({ version_info: 'v2', resources: [cla('x')], type_url: TYPE_URL.cluster, nonce: 'n2' });
    await client.idle();
    assert.match(
      sink.updates[1].resources[0].error ?? '',
      /ClusterLoadAssignment resource in a .*Cluster response/,
    );
    client.stop();
  });

  it('ignores a type it did not subscribe to', async () => {
    const { client, sink, last } = setup('sotw');
    client.start();
    const s = last();
    const sent = s.sent.length;
    s.respond({
      version_info: 'v1',
      resources: [],
      type_url: 'type.googleapis.com/envoy.service.runtime.v3.Runtime',
      nonce: 'n1',
    });
    await client.idle();
    assert.equal(sink.updates.length, 0);
    assert.equal(s.sent.length, sent);
    client.stop();
  });

  it('ends the stream on an undecodable response, reconnects, and resumes from the accepted versions', async () => {
    const { client, sink, streams, last } = setup('sotw');
    client.start();
    const s = last();
    s.open();
    sink.names.set(TYPE_URL.endpoint, new Set(['web']));
    s.respond({ version_info: 'v7', resources: [cluster('web')], type_url: TYPE_URL.cluster, nonce: 'n1' });
    await client.idle();
    s.raw(Buffer.from([0xff, 0xff, 0xff]));
    assert.match(s.cancelled ?? '', /undecodable response/);
    await waitFor(() => streams.length === 2);
    const again = last();
    assert.deepEqual(
      again.sent.map((r) => [r.type_url, r.version_info ?? '', r.resource_names ?? [], r.node !== undefined]),
      [
        [TYPE_URL.cluster, 'v7', [], true],
        [TYPE_URL.endpoint, '', ['web'], false],
        [TYPE_URL.listener, '', [], false],
      ],
    );
    assert.deepEqual(sink.states, [true, false]);
    client.stop();
  });
});

describe('ADS client: delta', () => {
  it('subscribes with the legacy wildcard, ACKs by nonce, applies removals, NACKs with the error', async () => {
    const { client, sink, last } = setup('delta');
    client.start();
    const s = last();
    assert.equal(s.path, DELTA_PATH);
    assert.deepEqual(s.sent[0].resource_names_subscribe, undefined);
    assert.equal(s.sent[0].type_url, TYPE_URL.cluster);
    s.respond({
      system_version_info: 's1',
      resources: [
        { name: 'a', version: '1', resource: cluster('a') },
        { name: 'b', version: '1', resource: cluster('b') },
      ],
      type_url: TYPE_URL.cluster,
      nonce: 'n1',
    });
    await client.idle();
    assert.deepEqual(s.sent.at(-1), { type_url: TYPE_URL.cluster, response_nonce: 'n1' });
    s.respond({
      system_version_info: 's2',
      removed_resources: ['a'],
      type_url: TYPE_URL.cluster,
      nonce: 'n2',
    });
    await client.idle();
    assert.deepEqual(sink.updates[1], {
      typeUrl: TYPE_URL.cluster,
      version: 's2',
      resources: [],
      removed: ['a'],
    });
    sink.reject = () => 'nope';
    s.respond({
      system_version_info: 's3',
      resources: [{ name: 'c', version: '1', resource: cluster('other-name') }],
      type_url: TYPE_URL.cluster,
      nonce: 'n3',
    });
    await client.idle();
    assert.match(sink.updates[2].resources[0].error ?? '', /calls itself "other-name"/);
    assert.deepEqual(s.sent.at(-1), {
      type_url: TYPE_URL.cluster,
      response_nonce: 'n3',
      error_detail: { code: 3, message: 'nope' },
    });
    client.stop();
  });

  it('subscribes and unsubscribes by difference, and resubscribes with initial_resource_versions', async () => {
    const { client, sink, streams, last } = setup('delta');
    client.start();
    const s = last();
    s.open();
    sink.names.set(TYPE_URL.endpoint, new Set(['web', 'api']));
    s.respond({
      system_version_info: 's1',
      resources: [{ name: 'web', version: '3', resource: cluster('web') }],
      type_url: TYPE_URL.cluster,
      nonce: 'n1',
    });
    await client.idle();
    assert.deepEqual(s.sent.at(-1), {
      type_url: TYPE_URL.endpoint,
      resource_names_subscribe: ['web', 'api'],
    });
    s.respond({
      system_version_info: 'e1',
      resources: [
        { name: 'web', version: 'w1', resource: cla('web') },
        { name: 'api', version: 'a1', resource: cla('api') },
      ],
      type_url: TYPE_URL.endpoint,
      nonce: 'n2',
    });
    await client.idle();
    sink.names.set(TYPE_URL.endpoint, new Set(['web']));
    s.respond({
      system_version_info: 's2',
      resources: [{ name: 'web', version: '4', resource: cluster('web', { lb_policy: 'RANDOM' }) }],
      type_url: TYPE_URL.cluster,
      nonce: 'n3',
    });
    await client.idle();
    assert.deepEqual(s.sent.at(-1), { type_url: TYPE_URL.endpoint, resource_names_unsubscribe: ['api'] });
    s.fail('control plane went away');
    await waitFor(() => streams.length === 2);
    const again = last();
    assert.deepEqual(
      again.sent.map((r) => [
        r.type_url,
        r.resource_names_subscribe ?? [],
        r.initial_resource_versions ?? {},
      ]),
      [
        [TYPE_URL.cluster, [], { web: '4' }],
        [TYPE_URL.endpoint, ['web'], { web: 'w1' }],
        [TYPE_URL.listener, [], {}],
      ],
    );
    client.stop();
  });

  it('refuses resource TTLs and name-only resources', async () => {
    const { client, sink, last } = setup('delta');
    client.start();
    const s = last();
    s.respond({
      system_version_info: 's1',
      resources: [
        { name: 'a', version: '1', resource: cluster('a'), ttl: '5s' },
        { name: 'b', version: '1' },
      ],
      type_url: TYPE_URL.cluster,
      nonce: 'n1',
    });
    await client.idle();
    assert.match(sink.updates[0].resources[0].error ?? '', /TTLs are not supported/);
    assert.match(sink.updates[0].resources[1].error ?? '', /only its name was sent/);
    client.stop();
  });
});

describe('ADS client: reconnecting', () => {
  it('retries with backoff after failed connections, and stops for good on stop()', async () => {
    let fail = 3;
    const delays: number[] = [];
    const backoff = new Backoff({ baseMs: 2, maxMs: 16, random: () => 0.999 });
    const next = backoff.next.bind(backoff);
    backoff.next = () => {
      const d = next();
      delays.push(Math.round(d));
      return d;
    };
    const { client, streams } = setup('sotw', {
      backoff,
      connect: () => {
        if (fail-- > 0) throw new Error('no endpoint in the ADS cluster');
      },
    });
    client.start();
    await waitFor(() => streams.length === 1);
    assert.deepEqual(delays, [2, 4, 8], 'doubling');
    client.stop();
    streams[0].fail('late');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(streams.length, 1, 'no reconnect after stop');
    assert.equal(streams[0].cancelled, 'the proxy is stopping');
  });

  it('resets the backoff after a stream that lived long enough', async () => {
    const delays: number[] = [];
    const backoff = new Backoff({ baseMs: 2, maxMs: 64, random: () => 0.999 });
    const next = backoff.next.bind(backoff);
    backoff.next = () => {
      const d = next();
      delays.push(Math.round(d));
      return d;
    };
    const { client, streams, last } = setup('sotw', { backoff, stableMs: 0 });
    client.start();
    for (let i = 1; i <= 3; i++) {
      last().fail('gone');
      await waitFor(() => streams.length === i + 1);
    }
    assert.deepEqual(delays, [2, 2, 2]);
    client.stop();
  });
});
