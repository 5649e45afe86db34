import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StatsStore } from '../stats/store.ts';
import { AccessLogSinks } from './sinks.ts';
import type { Destination } from './sinks.ts';

/** A destination whose writes complete only when the test says so. */
class SlowDestination implements Destination {
  readonly name = 'slow';
  readonly writes: string[] = [];
  private pending: (() => void)[] = [];

  write(data: Buffer): Promise<void> {
    this.writes.push(data.toString());
    return new Promise((resolve) => this.pending.push(resolve));
  }

  release(): void {
    const p = this.pending;
    this.pending = [];
    for (const r of p) r();
  }

  async close(): Promise<void> {}
}

function tempFile(name: string): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'weft-accesslog-')), name);
}

describe('access log sinks', { timeout: 10_000 }, () => {
  it('batches the lines of one flush interval into one write, and counts', async () => {
    const store = new StatsStore();
    const sinks = new AccessLogSinks(store, { flushIntervalMs: 30 });
    const file = tempFile('a.log');
    const w = sinks.writer(file);
    w.write('one\n');
    w.write('two\n');
    w.write('three\n');
    assert.equal(sinks.stats.writeTotalBuffered.value, 14);
    await sleep(5);
    assert.equal(store.counter('filesystem.write_completed').value, 0, 'nothing before the flush interval');
    await sleep(60);
    await sinks.close();
    assert.equal(readFileSync(file, 'utf8'), 'one\ntwo\nthree\n');
    assert.equal(store.counter('filesystem.write_buffered').value, 3);
    assert.equal(store.counter('filesystem.write_completed').value, 1);
    assert.equal(store.counter('filesystem.flushed_by_timer').value, 1);
    assert.equal(sinks.stats.writeTotalBuffered.value, 0);
    assert.equal(sinks.stats.droppedLines.value, 0);
  });

  it('shares one writer per path and appends to what the file holds', async () => {
    const sinks = new AccessLogSinks();
    const file = tempFile('b.log');
    assert.equal(sinks.writer(file), sinks.writer(file));
    sinks.writer(file).write('a\n');
    await sinks.close();
    const again = new AccessLogSinks();
    again.writer(file).write('b\n');
    await again.close();
    assert.equal(readFileSync(file, 'utf8'), 'a\nb\n');
  });

  it('flushes at once past the flush threshold', async () => {
    const sinks = new AccessLogSinks(undefined, { flushBytes: 10 });
    const dest = new SlowDestination();
    const w = sinks.writerFor(dest);
    w.write('12345');
    assert.equal(dest.writes.length, 0);
    w.write('678901');
    assert.deepEqual(dest.writes, ['12345678901']);
    dest.release();
    await sinks.close();
  });

  it('drops and counts lines past the bound while the destination is slow, then catches up', async () => {
    const sinks = new AccessLogSinks(undefined, {
      flushBytes: 1_000_000,
      maxBufferBytes: 100,
      flushIntervalMs: 0,
    });
    const dest = new SlowDestination();
    const w = sinks.writerFor(dest);
    w.write('x'.repeat(60));
    await sleep(5);
    assert.equal(dest.writes.length, 1, 'first flush in flight');
    // The write is stuck: the buffer fills to the bound, then lines are dropped.
    for (let i = 0; i < 10; i++) w.write('y'.repeat(30));
    assert.equal(sinks.stats.writeBuffered.value, 4);
    assert.equal(sinks.stats.droppedLines.value, 7);
    await sleep(5);
    assert.equal(dest.writes.length, 1, 'one write in flight at a time');
    dest.release();
    await sleep(5);
    await sleep(5);
    assert.equal(dest.writes.length, 2);
    assert.equal(dest.writes[1], 'y'.repeat(90));
    dest.release();
    await sinks.close();
    assert.equal(sinks.stats.writeCompleted.value, 2);
  });

  it('a file that cannot be opened is counted and logged once; the writer never throws', async () => {
    const sinks = new AccessLogSinks();
    const w = sinks.writer('/nonexistent-dir-weft/sub/access.log');
    w.write('a\n');
    w.write('b\n');
    await sinks.close();
    assert.equal(sinks.stats.reopenFailed.value, 1);
    assert.equal(sinks.stats.writeFailed.value, 1);
    assert.equal(sinks.stats.droppedLines.value, 2);
    // After close, lines are dropped (and counted) rather than written.
    w.write('c\n');
    assert.equal(sinks.stats.droppedLines.value, 3);
  });

  it('/dev/stdout and /dev/stderr write through the process streams', async () => {
    const sinksUrl = new URL('./sinks.ts', import.meta.url).href;
    const script =
      `import { AccessLogSinks } from ${JSON.stringify(sinksUrl)};` +
      `const s = new AccessLogSinks();` +
      `s.writer('/dev/stdout').write('to stdout\\n');` +
      `s.writer('/dev/stderr').write('to stderr\\n');` +
      `await s.close();`;
    const out = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: path.dirname(fileURLToPath(import.meta.url)), timeout: 8000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`child failed: ${stderr}`)) : resolve({ stdout, stderr }),
      );
    });
    assert.equal(out.stdout, 'to stdout\n');
    assert.equal(out.stderr, 'to stderr\n');
  });

  it('reopen() makes the next write open the path again (log rotation)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weft-accesslog-'));
    const file = path.join(dir, 'c.log');
    const sinks = new AccessLogSinks(undefined, { flushIntervalMs: 0 });
    const w = sinks.writer(file);
    w.write('before\n');
    await sleep(5);
    await sleep(5);
    await sinks.reopen();
    renameSync(file, file + '.1');
    w.write('after\n');
    await sinks.close();
    assert.equal(readFileSync(file + '.1', 'utf8'), 'before\n');
    assert.equal(readFileSync(file, 'utf8'), 'after\n');
  });
});
