/**
 * Trace and span ids as lowercase hex, cut from one hex string made from a pooled block of random bytes: one
 * randomFillSync and one hex conversion per 2 KiB, and each id is a slice of that string (a flat string that
 * needs no copying), so unsampled requests (most of them at 1%) stay cheap.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 2048;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let hex = '';
let offset = 0;

/** `digits` hex digits (an even number, at most the pool's). */
function randomHex(digits: number): string {
  if (offset + digits > hex.length) {
    randomFillSync(pool);
    hex = pool.toString('hex');
    offset = 0;
  }
  const id = hex.slice(offset, offset + digits);
  offset += digits;
  return id;
}

const ZERO_64 = '0000000000000000';
const ZERO_128 = ZERO_64 + ZERO_64;

/** A span id: 16 hex digits, never all zero (invalid in both W3C and B3). */
export function newSpanId(): string {
  for (;;) {
    const id = randomHex(16);
    if (id !== ZERO_64) return id;
  }
}

/**
 * A trace id, always 32 hex digits, never all zero. A 64-bit id (Zipkin without trace_id_128bit) keeps its
 * upper half zero, which is how W3C carries a B3 64-bit id and how B3 headers recognise it.
 */
export function newTraceId(bits128: boolean): string {
  if (!bits128) return ZERO_64 + newSpanId();
  for (;;) {
    const id = randomHex(32);
    if (id !== ZERO_128) return id;
  }
}
