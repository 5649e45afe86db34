import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpStatusForGrpc } from './grpc-status.ts';

describe('httpStatusForGrpc (what outlier detection counts for a trailers-only gRPC answer)', () => {
  it('maps gRPC codes as Envoy does', () => {
    const expected: Record<string, number> = {
      '0': 200,
      '1': 499,
      '4': 504,
      '8': 429,
      '13': 500,
      '14': 503,
      '16': 401,
    };
    for (const [code, status] of Object.entries(expected))
      assert.equal(httpStatusForGrpc(code), status, code);
  });

  it('treats unknown and unreadable codes as 500', () => {
    for (const v of ['17', '-1', 'abc', '', '1.5'])
      assert.equal(httpStatusForGrpc(v), 500, JSON.stringify(v));
  });
});
