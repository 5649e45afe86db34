import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { extractContext, injectContext, parseB3Single, parseTraceparent } from './propagation.ts';
import { newSpanId, newTraceId } from './ids.ts';
import type { StreamTrace } from './types.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const P = 'b7ad6b7169203331';

describe('traceparent', () => {
  it('parses a valid version 00 header, sampled or not', () => {
    assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), {
      traceId: T,
      spanId: S,
      sampled: true,
      debug: false,
      traceState: undefined,
    });
    assert.equal(parseTraceparent(`00-${T}-${S}-00`)?.sampled, false);
    // Only bit 0 is the sampled flag.
    assert.equal(parseTraceparent(`00-${T}-${S}-02`)?.sampled, false);
  });

  it('accepts a later version with extra fields, not version ff', () => {
    assert.equal(parseTraceparent(`01-${T}-${S}-01-extra`)?.traceId, T);
    assert.equal(parseTraceparent(`ff-${T}-${S}-01`), undefined);
  });

  for (const bad of [
    '',
    'garbage',
    `00-${T}-${S}`,
    `00-${T}-${S}-01-extra`,
    `00-${T.toUpperCase()}-${S}-01`,
    `00-${'0'.repeat(32)}-${S}-01`,
    `00-${T}-${'0'.repeat(16)}-01`,
    `00-${T}-${S}-zz`,
    `00_${T}-${S}-01`,
    `0x-${T}-${S}-01`,
    `01-${T}-${S}-01x`,
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseTraceparent(bad), undefined));
  }
});

describe('single b3', () => {
  it('parses ids, sampling state and parent', () => {
    assert.deepEqual(parseB3Single(`${T}-${S}-1-${P}`), {
      traceId: T,
      spanId: S,
      sampled: true,
      debug: false,
      traceState: undefined,
    });
    assert.equal(parseB3Single(`${T}-${S}`)?.sampled, undefined);
    assert.equal(parseB3Single(`${T}-${S}-0`)?.sampled, false);
    assert.deepEqual(parseB3Single(`${T}-${S}-d`)?.debug, true);
    assert.equal(parseB3Single(`a3ce929d0e0e4736-${S}-1`)?.traceId, `0000000000000000a3ce929d0e0e4736`);
  });

  it('parses a decision without ids', () => {
    assert.deepEqual(parseB3Single('0'), {
      traceId: undefined,
      spanId: undefined,
      sampled: false,
      debug: false,
      traceState: undefined,
    });
    assert.equal(parseB3Single('d')?.sampled, true);
  });

  for (const bad of [
    '',
    'x',
    `${T}-${S}-2`,
    `${T}-short`,
    `${T}-${S}-1-nothex`,
    `abc-${S}-1`,
    `${T}-${S}-1-${P}-x`,
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseB3Single(bad), undefined));
  }
});

describe('extractContext', () => {
  it('returns undefined without any trace header', () => {
    assert.equal(extractContext({ host: 'a' }), undefined);
  });

  it('prefers traceparent over b3 and keeps tracestate', () => {
    const ctx = extractContext({
      traceparent: `00-${T}-${S}-01`,
      tracestate: 'congo=t61rcWkgMzE',
      b3: `${'1'.repeat(32)}-${P}-0`,
      'x-b3-traceid': '2'.repeat(32),
      'x-b3-spanid': P,
    });
    assert.equal(ctx?.traceId, T);
    assert.equal(ctx?.sampled, true);
    assert.equal(ctx?.traceState, 'congo=t61rcWkgMzE');
  });

  it('falls back to single b3 when traceparent is malformed, then to multi b3', () => {
    assert.equal(extractContext({ traceparent: 'junk', b3: `${T}-${S}-1` })?.spanId, S);
    const ctx = extractContext({ traceparent: 'junk', b3: 'junk', 'x-b3-traceid': T, 'x-b3-spanid': S });
    assert.equal(ctx?.traceId, T);
    assert.equal(ctx?.sampled, undefined);
    // tracestate belongs to a traceparent: without a valid one it is not carried over.
    assert.equal(extractContext({ tracestate: 'a=b', b3: `${T}-${S}-1` })?.traceState, undefined);
  });

  it('reads multi b3: sampled values, debug flag, 64-bit ids', () => {
    const base = { 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': S };
    assert.equal(extractContext({ ...base, 'x-b3-sampled': '1' })?.sampled, true);
    assert.equal(extractContext({ ...base, 'x-b3-sampled': 'true' })?.sampled, true);
    assert.equal(extractContext({ ...base, 'x-b3-sampled': '0' })?.sampled, false);
    const debug = extractContext({ ...base, 'x-b3-sampled': '0', 'x-b3-flags': '1' });
    assert.equal(debug?.sampled, true);
    assert.equal(debug?.debug, true);
    assert.equal(extractContext(base)?.traceId, '0000000000000000a3ce929d0e0e4736');
  });

  it('keeps a multi b3 decision whose ids are malformed, and ignores malformed ids without one', () => {
    const ctx = extractContext({ 'x-b3-traceid': 'zz', 'x-b3-spanid': S, 'x-b3-sampled': '0' });
    assert.equal(ctx?.traceId, undefined);
    assert.equal(ctx?.sampled, false);
    assert.equal(extractContext({ 'x-b3-traceid': T, 'x-b3-spanid': 'short' }), undefined);
    assert.equal(extractContext({ 'x-b3-traceid': T }), undefined);
    assert.equal(extractContext({ 'x-b3-sampled': 'maybe' }), undefined);
  });

  it('ignores repeated headers instead of guessing', () => {
    const headers = { traceparent: [`00-${T}-${S}-01`, `00-${T}-${P}-01`] } as unknown as IncomingHttpHeaders;
    assert.equal(extractContext(headers), undefined);
  });
});

describe('injectContext', () => {
  const trace: StreamTrace = {
    sampled: true,
    traceId: T,
    spanId: P,
    parentSpanId: S,
    debug: false,
    traceState: 'k=v',
  };

  it('writes W3C and multi b3 with this span as the parent, and drops single b3', () => {
    const h: IncomingHttpHeaders = { b3: `${T}-${S}-1`, 'x-b3-flags': '1', tracestate: 'old=1' };
    injectContext(h, trace);
    assert.equal(h.traceparent, `00-${T}-${P}-01`);
    assert.equal(h.tracestate, 'k=v');
    assert.equal(h['x-b3-traceid'], T);
    assert.equal(h['x-b3-spanid'], P);
    assert.equal(h['x-b3-parentspanid'], S);
    assert.equal(h['x-b3-sampled'], '1');
    assert.equal(h['x-b3-flags'], undefined);
    assert.equal(h.b3, undefined);
    // What was injected reads back as the same context.
    const back = extractContext(h);
    assert.equal(back?.traceId, T);
    assert.equal(back?.spanId, P);
  });

  it('propagates an unsampled decision, 64-bit ids in B3 form, and debug', () => {
    const h: IncomingHttpHeaders = { tracestate: 'stale=1', 'x-b3-parentspanid': S };
    injectContext(h, {
      ...trace,
      sampled: false,
      traceId: '0000000000000000a3ce929d0e0e4736',
      parentSpanId: undefined,
      traceState: undefined,
      debug: true,
    });
    assert.equal(h.traceparent, `00-0000000000000000a3ce929d0e0e4736-${P}-00`);
    assert.equal(h['x-b3-traceid'], 'a3ce929d0e0e4736');
    assert.equal(h['x-b3-sampled'], '0');
    assert.equal(h['x-b3-flags'], '1');
    assert.equal(h['x-b3-parentspanid'], undefined);
    assert.equal(h.tracestate, undefined);
  });
});

describe('ids', () => {
  it('are lowercase hex of the right length, distinct, and 64-bit trace ids keep the upper half zero', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = newSpanId();
      assert.match(s, /^[0-9a-f]{16}$/);
      seen.add(s);
    }
    assert.equal(seen.size, 2000);
    assert.match(newTraceId(true), /^[0-9a-f]{32}$/);
    assert.match(newTraceId(false), /^0{16}[0-9a-f]{16}$/);
  });
});
