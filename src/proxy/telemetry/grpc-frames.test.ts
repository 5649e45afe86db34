import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrpcFrameCounter } from './grpc-frames.ts';

function frame(len: number, compressed = 0): Buffer {
  const b = Buffer.alloc(5 + len, 0xab);
  b[0] = compressed;
  b.writeUInt32BE(len, 1);
  return b;
}

describe('gRPC frame counter', () => {
  const body = Buffer.concat([frame(0), frame(3), frame(300, 1), frame(70_000), frame(1)]);

  it('counts the messages of a body given at once', () => {
    const c = new GrpcFrameCounter();
    c.feed(body);
    assert.equal(c.messages, 5);
  });

  it('counts the same at every split point, prefix bytes included', () => {
    for (let cut = 0; cut <= body.length; cut += cut < 400 ? 1 : 997) {
      const c = new GrpcFrameCounter();
      c.feed(body.subarray(0, cut));
      c.feed(body.subarray(cut));
      assert.equal(c.messages, 5, `split at ${cut}`);
    }
  });

  it('counts byte by byte', () => {
    const small = Buffer.concat([frame(2), frame(0), frame(7)]);
    const c = new GrpcFrameCounter();
    for (const b of small) c.feed(Buffer.from([b]));
    assert.equal(c.messages, 3);
  });

  it('counts a message once its prefix is complete, before its payload', () => {
    const c = new GrpcFrameCounter();
    c.feed(frame(10).subarray(0, 5));
    assert.equal(c.messages, 1);
    c.feed(Buffer.alloc(9));
    c.feed(Buffer.alloc(1));
    c.feed(frame(0).subarray(0, 4));
    assert.equal(c.messages, 1);
  });
});
