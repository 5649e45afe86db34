import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { BodyTee } from './mirror.ts';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves with the error a stream is destroyed with (or null if it ends normally). */
function outcome(r: Readable): Promise<Error | null> {
  return new Promise((resolve) => {
    r.once('error', (err: Error) => resolve(err));
    r.once('end', () => resolve(null));
    r.resume();
  });
}

describe('BodyTee', { timeout: 5000 }, () => {
  it('gives the main side and each branch the same bytes', async () => {
    const source = new PassThrough();
    const tee = new BodyTee(source, 1024);
    const a = tee.branch()!;
    const b = tee.branch()!;
    const main = collect(tee.main);
    const ca = collect(a);
    const cb = collect(b);
    source.write('hello ');
    source.end('world');
    assert.equal((await main).toString(), 'hello world');
    assert.equal((await ca).toString(), 'hello world');
    assert.equal((await cb).toString(), 'hello world');
  });

  it('aborts a branch past the limit while the main side gets the whole body', async () => {
    const source = new PassThrough();
    const tee = new BodyTee(source, 10);
    const branch = tee.branch()!;
    const branchOutcome = outcome(branch);
    const main = collect(tee.main);
    source.write(Buffer.alloc(8, 'a'));
    source.write(Buffer.alloc(8, 'b'));
    source.end(Buffer.alloc(8, 'c'));
    assert.equal((await main).length, 24);
    const err = await branchOutcome;
    assert.ok(err instanceof Error);
    assert.match(err.message, /limit/);
    assert.equal(tee.branch(), null, 'no new branch once past the limit');
  });

  it('never lets an unread branch hold back the main side', async () => {
    const source = new PassThrough();
    const limit = 1024 * 1024;
    const tee = new BodyTee(source, limit);
    const branch = tee.branch()!;
    const main = collect(tee.main);
    // Many times the streams' high-water marks, yet under the limit; the branch is never read.
    const chunk = Buffer.alloc(16 * 1024, 'x');
    for (let i = 0; i < 60; i++) source.write(chunk);
    source.end();
    assert.equal((await main).length, 60 * chunk.length);
    assert.equal(branch.readableLength, 60 * chunk.length);
    branch.destroy();
  });

  it('lets the main consumer set the pace (back-pressure reaches the source)', async () => {
    const source = new PassThrough({ highWaterMark: 16 });
    const tee = new BodyTee(source, 1 << 20);
    tee.branch();
    // Nobody reads main: after its buffer fills, the source stops being drained.
    let accepted = 0;
    while (source.write(Buffer.alloc(1024)) && accepted < 1000) accepted++;
    await new Promise((r) => setImmediate(r));
    assert.ok(accepted < 1000, 'the source must report back-pressure');
    assert.ok(tee.main.readableLength <= 2 * 1024 + 16 * 1024);
    const drained = once(source, 'drain');
    tee.main.resume();
    await drained;
    tee.main.destroy();
  });

  it('fails the main side and the branches when the source fails', async () => {
    const source = new PassThrough();
    const tee = new BodyTee(source, 1024);
    const branch = tee.branch()!;
    const m = outcome(tee.main);
    const b = outcome(branch);
    source.write('x');
    source.destroy(new Error('client went away'));
    assert.equal((await m)?.message, 'client went away');
    assert.equal((await b)?.message, 'client went away');
  });
});
