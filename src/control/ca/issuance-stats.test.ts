import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IssuanceStats } from './issuance-stats.ts';

describe('IssuanceStats', () => {
  it('keeps issued certificates until they expire, and reports the earliest expiry of those left', () => {
    let now = 1_000_000;
    const stats = new IssuanceStats(() => now);
    assert.deepEqual(stats.validCertificates(), { count: 0, earliestExpiryMs: null });
    stats.recordIssued('a', new Date(now + 1000));
    stats.recordIssued('b', new Date(now + 5000));
    stats.recordIssued('c', new Date(now + 3000));
    assert.deepEqual(stats.validCertificates(), { count: 3, earliestExpiryMs: now + 1000 });
    now += 1000; // `a` expires at this very instant: no longer valid.
    assert.deepEqual(stats.validCertificates(), { count: 2, earliestExpiryMs: 1_003_000 });
    now += 10_000;
    assert.deepEqual(stats.validCertificates(), { count: 0, earliestExpiryMs: null });
    assert.equal(stats.issued, 3);
  });

  it('counts refusals by reason', () => {
    const stats = new IssuanceStats();
    stats.recordRefused('forbidden');
    stats.recordRefused('forbidden');
    stats.recordRefused('error');
    assert.deepEqual(stats.refused, { unauthenticated: 0, invalid: 0, forbidden: 2, error: 1 });
  });
});
