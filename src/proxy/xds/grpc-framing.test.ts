import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeGrpcFrame, GrpcFrameDecoder, GrpcFramingError } from './grpc-framing.ts';

const msg = (...bytes: number[]): Buffer => Buffer.from(bytes);

describe('gRPC message framing', () => {
  it('frames a message: flag 0, big-endian length, bytes', () => {
    assert.deepEqual([...encodeGrpcFrame(msg(7, 8, 9))], [0, 0, 0, 0, 3, 7, 8, 9]);
    assert.deepEqual([...encodeGrpcFrame(msg())], [0, 0, 0, 0, 0]);
    assert.deepEqual([...encodeGrpcFrame(Buffer.alloc(0x10203))].slice(0, 5), [0, 0, 1, 2, 3]);
  });

  it('decodes messages merged in one chunk, including empty ones', () => {
    const d = new GrpcFrameDecoder();
    const chunk = Buffer.concat([
      encodeGrpcFrame(msg(1)),
      encodeGrpcFrame(msg()),
      encodeGrpcFrame(msg(2, 3)),
    ]);
    assert.deepEqual(
      d.push(chunk).map((b) => [...b]),
      [[1], [], [2, 3]],
    );
    assert.equal(d.pendingBytes, 0);
  });

  it('reassembles a message split anywhere, even inside the prefix', () => {
    const framed = Buffer.concat([encodeGrpcFrame(msg(1, 2, 3, 4, 5, 6)), encodeGrpcFrame(msg(9))]);
    for (let cut = 0; cut <= framed.length; cut++) {
      const d = new GrpcFrameDecoder();
      const out = [...d.push(framed.subarray(0, cut)), ...d.push(framed.subarray(cut))];
      assert.deepEqual(
        out.map((b) => [...b]),
        [[1, 2, 3, 4, 5, 6], [9]],
        `cut at ${cut}`,
      );
    }
  });

  it('any split of any sequence of messages gives the same messages back', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.nat({ max: 64 }), { maxLength: 40 }),
        (messages, sizes) => {
          const stream = Buffer.concat(messages.map((m) => encodeGrpcFrame(m)));
          const d = new GrpcFrameDecoder();
          const out: Buffer[] = [];
          let pos = 0;
          for (const size of sizes) {
            out.push(...d.push(stream.subarray(pos, pos + size)));
            pos = Math.min(stream.length, pos + size);
          }
          out.push(...d.push(stream.subarray(pos)));
          assert.deepEqual(
            out.map((b) => [...b]),
            messages.map((m) => [...m]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses an oversized message from its prefix, before buffering it', () => {
    const d = new GrpcFrameDecoder(1024);
    const prefix = Buffer.from([0, 0, 0, 4, 1]); // 1025 bytes announced
    assert.throws(
      () => d.push(prefix),
      (e: unknown) => e instanceof GrpcFramingError && /1025 bytes exceeds the limit of 1024/.test(e.message),
    );
    assert.equal(d.pendingBytes, 0, 'nothing of it was kept');
    assert.throws(() => d.push(msg(0)), GrpcFramingError, 'and the stream stays failed');
    const exact = new GrpcFrameDecoder(3);
    assert.equal(exact.push(encodeGrpcFrame(msg(1, 2, 3))).length, 1, 'the limit itself is allowed');
  });

  it('refuses compressed messages and garbage flags', () => {
    assert.throws(
      () => new GrpcFrameDecoder().push(Buffer.from([1, 0, 0, 0, 0])),
      /compressed message, but no compression was negotiated/,
    );
    assert.throws(
      () => new GrpcFrameDecoder().push(Buffer.from([0x47, 0x45, 0x54, 0x20, 0x2f])),
      /invalid compressed flag 71/,
    );
  });
});
