/**
 * Trace and span ids as lowercase hex, cut from a pooled buffer of random bytes: one randomFillSync per
 * 4 KiB instead of one per id, so unsampled requests (most of them at 1%) stay cheap.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

const ZERO_64 = '0000000000000000';

/** A span id: 16 hex digits, never all zero (invalid in both W3C and B3). */
export function newSpanId(): string {
  for (;;) {
    const id = randomHex(8);
    if (id !== ZERO_64) return id;
  }
}

/**
 * A trace id, always 32 hex digits. A 64-bit id (Zipkin without trace_id_128bit) keeps its upper half
 * zero, which is how W3C carries a B3 64-bit id and how B3 headers recognise it.
 */
export function newTraceId(bits128: boolean): string {
  return bits128 ? randomHex(8) + newSpanId() : ZERO_64 + newSpanId();
}
