/**
 * Where access log lines go: one buffered writer per destination, shared by every access log of the proxy
 * that names it. A line is appended to memory on the request path; the buffer is written with one write
 * per flush, on the next turn of the event loop or at once when it passes FLUSH_BYTES. While a write is in
 * flight the buffer keeps filling; past MAX_BUFFER_BYTES (a slow disk or a stalled pipe) new lines are
 * dropped and counted, so a slow destination costs lines, never memory or latency. Failures are counted
 * and logged once per writer; the proxy keeps serving.
 *
 * Stats follow Envoy's file access log names (`filesystem.*`), plus `access_logs.dropped_lines`.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createLogger } from '../../core/logger.ts';
import { StatsStore } from '../stats/store.ts';
import type { Counter, Gauge } from '../stats/store.ts';

const log = createLogger('accesslog');

/** Buffer size (in bytes) that triggers a flush without waiting for the flush interval. */
export const FLUSH_INTERVAL_MS = 1000;
const FLUSH_BYTES = 64 * 1024;
/** Past this many buffered bytes, new lines are dropped. */
export const MAX_BUFFER_BYTES = 4 * 1024 * 1024;
/** After a failed open, how long lines are dropped before opening is tried again. */
const REOPEN_DELAY_MS = 1000;

export interface SinkStats {
  /** Lines accepted into a buffer (Envoy counts buffered writes). */
  readonly writeBuffered: Counter;
  /** Flushes written to the destination. */
  readonly writeCompleted: Counter;
  readonly writeFailed: Counter;
  /** Flushes started by the deferred flush rather than by a full buffer. */
  readonly flushedByTimer: Counter;
  readonly reopenFailed: Counter;
  /** Bytes buffered and not yet written. */
  readonly writeTotalBuffered: Gauge;
  readonly droppedLines: Counter;
}

function sinkStats(store: StatsStore): SinkStats {
  return {
    writeBuffered: store.counter('filesystem.write_buffered'),
    writeCompleted: store.counter('filesystem.write_completed'),
    writeFailed: store.counter('filesystem.write_failed'),
    flushedByTimer: store.counter('filesystem.flushed_by_timer'),
    reopenFailed: store.counter('filesystem.reopen_failed'),
    writeTotalBuffered: store.gauge('filesystem.write_total_buffered'),
    droppedLines: store.counter('access_logs.dropped_lines'),
  };
}

/** Where a writer's flushed data ends up. */
export interface Destination {
  /** Writes all of `data`; rejects on failure. */
  write(data: Buffer): Promise<void>;
  /** Closes what `write` opened; the next write opens again. */
  close(): Promise<void>;
  readonly name: string;
}

export interface BufferLimits {
  readonly flushBytes: number;
  readonly maxBufferBytes: number;
  /**
   * How long a line may wait in the buffer (Envoy's buffer_flush_interval, 1 s by default): one write per
   * interval instead of one per event-loop turn, which at thousands of requests a second costs a syscall each.
   */
  readonly flushIntervalMs: number;
}

/** Bytes of one buffer chunk; a flush that waits for an in-flight write spreads over several. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The buffer in front of one destination. A line is encoded into a byte chunk as it is written, so the
 * line's string dies young: strings kept until the flush would survive scavenges, be promoted and make
 * the old generation collect far more often (measured: that was most of the access log's cost).
 */
export class BufferedWriter {
  private readonly dest: Destination;
  private readonly stats: SinkStats;
  private readonly limits: BufferLimits;
  /** Sealed chunks waiting for the flush, then the chunk being filled (`used` bytes of it). */
  private sealed: Buffer[] = [];
  private chunk: Buffer | null = null;
  private used = 0;
  /** A written chunk kept for reuse, so steady logging allocates no new chunks. */
  private spare: Buffer | null = null;
  /** Bytes and lines buffered and not yet handed to the destination. */
  private size = 0;
  private lines = 0;
  private scheduled = false;
  private inFlight: Promise<void> | null = null;
  private closed = false;
  private failureLogged = false;

  constructor(dest: Destination, stats: SinkStats, limits: BufferLimits) {
    this.dest = dest;
    this.stats = stats;
    this.limits = limits;
  }

  /** Appends one line; never throws and never waits. */
  write(line: string): void {
    const stats = this.stats;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the exact length is only worked out near a bound.
    let bytes = line.length * 3;
    if (this.closed || (this.size + bytes > this.limits.maxBufferBytes && !this.fits(line))) {
      stats.droppedLines.inc();
      return;
    }
    let chunk = this.chunk;
    if (chunk === null || chunk.length - this.used < bytes) {
      bytes = Buffer.byteLength(line);
      if (chunk === null || chunk.length - this.used < bytes) chunk = this.newChunk(bytes);
    }
    bytes = chunk.write(line, this.used);
    this.used += bytes;
    this.size += bytes;
    this.lines++;
    stats.writeBuffered.inc();
    stats.writeTotalBuffered.inc(bytes);
    if (this.size >= this.limits.flushBytes) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(this.onDeferredFlush, this.limits.flushIntervalMs).unref();
    }
  }

  private fits(line: string): boolean {
    return this.size + Buffer.byteLength(line) <= this.limits.maxBufferBytes;
  }

  /** Seals the chunk being filled and starts one with room for at least `bytes`. */
  private newChunk(bytes: number): Buffer {
    if (this.chunk !== null && this.used > 0) this.sealed.push(this.chunk.subarray(0, this.used));
    let chunk = this.spare;
    this.spare = null;
    if (chunk === null || chunk.length < bytes) chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bytes));
    this.chunk = chunk;
    this.used = 0;
    return chunk;
  }

  private readonly onDeferredFlush = (): void => {
    this.scheduled = false;
    if (this.size === 0 || this.inFlight !== null) return;
    this.stats.flushedByTimer.inc();
    this.flush();
  };

  /** Starts writing what is buffered, unless a write is already in flight (it flushes again when done). */
  private flush(): void {
    if (this.inFlight !== null || this.size === 0) return;
    const lines = this.lines;
    const size = this.size;
    const chunks = this.sealed;
    if (this.chunk !== null && this.used > 0) chunks.push(this.chunk.subarray(0, this.used));
    const owned = this.chunk;
    this.chunk = null;
    this.used = 0;
    this.sealed = [];
    this.size = 0;
    this.lines = 0;
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    this.inFlight = this.dest.write(data).then(
      () => this.done(size, null, lines, owned),
      (err: unknown) => this.done(size, err, lines, owned),
    );
  }

  private done(size: number, err: unknown, lines: number, written: Buffer | null): void {
    const stats = this.stats;
    stats.writeTotalBuffered.dec(size);
    if (written !== null && written.length === CHUNK_BYTES) this.spare = written;
    if (err === null) stats.writeCompleted.inc();
    else {
      stats.writeFailed.inc();
      stats.droppedLines.inc(lines);
      if (!this.failureLogged) {
        this.failureLogged = true;
        log.error('access log write failed; lines are dropped until it recovers', {
          destination: this.dest.name,
          error: err instanceof Error ? err.message : 'unknown error',
        });
      }
    }
    this.inFlight = null;
    if (this.size >= this.limits.flushBytes || (this.closed && this.size > 0)) this.flush();
    else if (this.size > 0 && !this.scheduled) {
      this.scheduled = true;
      setTimeout(this.onDeferredFlush, this.limits.flushIntervalMs).unref();
    }
  }

  /** Resolves once everything buffered so far has been written (or has failed). */
  async drain(): Promise<void> {
    for (;;) {
      if (this.inFlight !== null) await this.inFlight;
      else if (this.size > 0) this.flush();
      else return;
    }
  }

  /** Closes the destination so that the next write opens it again (log rotation). */
  async reopen(): Promise<void> {
    if (this.inFlight !== null) await this.inFlight;
    await this.dest.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    await this.dest.close();
  }
}

/** Appends to a file, opened on first write and again after a failure or a reopen. */
export class FileDestination implements Destination {
  readonly name: string;
  private readonly stats: SinkStats;
  private handle: FileHandle | null = null;
  private retryAt = 0;

  constructor(path: string, stats: SinkStats) {
    this.name = path;
    this.stats = stats;
  }

  async write(buf: Buffer): Promise<void> {
    if (this.handle === null) {
      if (Date.now() < this.retryAt) throw new Error(`${this.name} could not be opened`);
      try {
        this.handle = await open(this.name, 'a');
      } catch (err) {
        this.stats.reopenFailed.inc();
        this.retryAt = Date.now() + REOPEN_DELAY_MS;
        throw err;
      }
    }
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.handle.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    if (h !== null) await h.close().catch(() => undefined);
  }
}

/** The process streams that already have an error listener (one each, however many sinks use them). */
const guarded = new Set<NodeJS.WriteStream>();

/** process.stdout or process.stderr: written through the stream, one write in flight at a time. */
export class ProcessStreamDestination implements Destination {
  readonly name: string;
  private readonly stream: NodeJS.WriteStream;

  constructor(which: 'stdout' | 'stderr') {
    this.name = `/dev/${which}`;
    this.stream = which === 'stdout' ? process.stdout : process.stderr;
    // A closed pipe (EPIPE) reaches the write callback; without a listener it would also crash the process.
    if (!guarded.has(this.stream)) {
      guarded.add(this.stream);
      this.stream.on('error', () => undefined);
    }
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}

/** The open sinks of one proxy: one writer per destination path, shared by every listener that logs there. */
export class AccessLogSinks {
  readonly stats: SinkStats;
  private readonly writers = new Map<string, BufferedWriter>();
  private readonly limits: BufferLimits;

  constructor(store?: StatsStore, limits: Partial<BufferLimits> = {}) {
    this.stats = sinkStats(store ?? new StatsStore());
    this.limits = {
      flushBytes: limits.flushBytes ?? FLUSH_BYTES,
      maxBufferBytes: limits.maxBufferBytes ?? MAX_BUFFER_BYTES,
      flushIntervalMs: limits.flushIntervalMs ?? FLUSH_INTERVAL_MS,
    };
  }

  /** The writer for a path; /dev/stdout and /dev/stderr write through the process's streams. */
  writer(path: string): BufferedWriter {
    let w = this.writers.get(path);
    if (w === undefined) {
      const dest =
        path === '/dev/stdout'
          ? new ProcessStreamDestination('stdout')
          : path === '/dev/stderr'
            ? new ProcessStreamDestination('stderr')
            : new FileDestination(path, this.stats);
      w = new BufferedWriter(dest, this.stats, this.limits);
      this.writers.set(path, w);
    }
    return w;
  }

  /** A writer in front of a caller's destination (tests, custom sinks). */
  writerFor(dest: Destination): BufferedWriter {
    let w = this.writers.get(dest.name);
    if (w === undefined) {
      w = new BufferedWriter(dest, this.stats, this.limits);
      this.writers.set(dest.name, w);
    }
    return w;
  }

  /** Reopens every file on its next write (after log rotation). */
  async reopen(): Promise<void> {
    await Promise.all([...this.writers.values()].map((w) => w.reopen()));
  }

  /** Flushes what is buffered and closes the files. */
  async close(): Promise<void> {
    await Promise.all([...this.writers.values()].map((w) => w.close()));
  }
}
