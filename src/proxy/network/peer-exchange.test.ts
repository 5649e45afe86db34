import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import type { NodeInfo } from '../bootstrap/types.ts';
import { compilePeerExchange } from './peer-exchange-config.ts';
import {
  EXCHANGE_MAGIC,
  FrameReader,
  MAX_FRAME_PAYLOAD,
  ownExchangeFrame,
  readPeerFrame,
} from './peer-exchange.ts';
import type { FrameOutcome } from './peer-exchange.ts';

const NODE: NodeInfo = {
  id: 'sidecar~10.0.0.1~db-1.data~data.svc.cluster.local',
  cluster: 'db.data',
  locality: undefined,
  metadata: { WORKLOAD_NAME: 'db-v1', NAMESPACE: 'data', LABELS: { app: 'db', version: 'v1' }, OTHER: 'x' },
};

function header(length: number, magic = EXCHANGE_MAGIC): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(length, 4);
  return b;
}

describe('peer exchange frames', () => {
  const frame = ownExchangeFrame(NODE);

  it('round-trips the node metadata, the same peer object each time', () => {
    assert.equal(frame.readUInt32BE(0), EXCHANGE_MAGIC);
    assert.equal(frame.readUInt32BE(4), frame.length - 8);
    const a = new FrameReader().feed(frame);
    const b = new FrameReader().feed(Buffer.from(frame));
    assert.ok(a.done && a.framed && b.done && b.framed);
    assert.equal(a.peer?.workload, 'db-v1');
    assert.equal(a.peer?.namespace, 'data');
    assert.deepEqual(a.peer?.labels, { app: 'db', version: 'v1' });
    assert.equal(a.peer, b.peer, 'peers are cached per payload');
    assert.equal(a.rest.length, 0);
    assert.equal(ownExchangeFrame(NODE), frame, 'encoded once per node');
  });

  it('reads a frame split at every byte, and keeps the application bytes coalesced after it', () => {
    const app = Buffer.from('hello, app');
    const all = Buffer.concat([frame, app]);
    for (let cut = 1; cut < all.length; cut++) {
      const r = new FrameReader();
      const first = r.feed(all.subarray(0, cut));
      const result = first.done ? first : r.feed(all.subarray(cut));
      assert.ok(result.done && result.framed, `cut ${cut}`);
      assert.equal(result.peer?.workload, 'db-v1');
      const rest = first.done ? Buffer.concat([result.rest, all.subarray(cut)]) : result.rest;
      assert.deepEqual(rest, app, `cut ${cut}`);
    }
  });

  it('hands back every byte unchanged when the magic does not match, from the first byte', () => {
    const r = new FrameReader();
    const out = r.feed(Buffer.from('G'));
    assert.ok(out.done && !out.framed);
    assert.deepEqual(out.rest, Buffer.from('G'));
    const partial = new FrameReader();
    assert.equal(partial.feed(frame.subarray(0, 2)).done, false);
    const wrong = partial.feed(Buffer.from('xy-more'));
    assert.ok(wrong.done && !wrong.framed);
    assert.deepEqual(wrong.rest, Buffer.concat([frame.subarray(0, 2), Buffer.from('xy-more')]));
  });

  it('refuses hostile lengths without waiting for them, and drops an undecodable payload', () => {
    for (const len of [MAX_FRAME_PAYLOAD + 1, 0xffffffff]) {
      const bytes = Buffer.concat([header(len), Buffer.from('abc')]);
      const out = new FrameReader().feed(bytes);
      assert.ok(out.done && !out.framed, `length ${len}`);
      assert.deepEqual(out.rest, bytes);
    }
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
    const out = new FrameReader().feed(Buffer.concat([header(garbage.length), garbage, Buffer.from('app')]));
    assert.ok(out.done && out.framed);
    assert.equal(out.peer, undefined);
    assert.deepEqual(out.rest, Buffer.from('app'));
    // An Any of another type is a frame with no peer.
    const other = Buffer.from([0x0a, 3, 0x61, 0x62, 0x63, 0x12, 0]);
    const o = new FrameReader().feed(Buffer.concat([header(other.length), other]));
    assert.ok(o.done && o.framed && o.peer === undefined);
  });

  it('never throws on random input', () => {
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(Math.random() * 64);
      const body = Buffer.from(Array.from({ length: len }, () => Math.floor(Math.random() * 256)));
      const bytes = i % 2 === 0 ? Buffer.concat([header(len), body]) : body;
      const out = new FrameReader().feed(bytes);
      if (out.done && !out.framed) assert.deepEqual(out.rest, bytes);
    }
  });
});

describe('reading the frame on a socket', () => {
  async function pair(): Promise<{ a: net.Socket; b: net.Socket; close: () => void }> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const b = await accepted;
    return { a, b, close: () => (a.destroy(), b.destroy(), server.close()) };
  }

  it('gives up after the timeout and returns what it read, unchanged', async () => {
    const { a, b, close } = await pair();
    const outcome = new Promise<FrameOutcome>((r) => readPeerFrame(b, 100, r));
    a.write(frameStart());
    const o = await outcome;
    assert.equal(o.peer, undefined);
    assert.deepEqual(o.rest, frameStart());
    assert.equal(o.frameBytes, 0);
    close();
  });

  it('counts the stripped bytes and reports the end of the stream', async () => {
    const { a, b, close } = await pair();
    const outcome = new Promise<FrameOutcome>((r) => readPeerFrame(b, 2000, r));
    const frame = ownExchangeFrame(NODE);
    a.end(Buffer.concat([frame, Buffer.from('tail')]));
    const o = await outcome;
    assert.equal(o.peer?.workload, 'db-v1');
    assert.equal(o.frameBytes, frame.length);
    assert.deepEqual(o.rest, Buffer.from('tail'));
    assert.equal(b.isPaused(), true, 'left paused for the caller to pipe');
    close();
  });
});

function frameStart(): Buffer {
  return ownExchangeFrame(NODE).subarray(0, 5);
}

describe('istio.metadata_exchange network filter config', () => {
  it('takes the protocol and refuses anything else, naming the field', () => {
    assert.deepEqual(compilePeerExchange({ protocol: 'istio-peer-exchange' }, 'v'), {
      protocol: 'istio-peer-exchange',
    });
    assert.throws(() => compilePeerExchange({}, 'v'), /v\.protocol: required/);
    assert.throws(
      () => compilePeerExchange({ protocol: 'p', enable_discovery: true }, 'v'),
      /v\.enable_discovery: not supported by Weft/,
    );
  });
});
