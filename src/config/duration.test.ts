import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { istioDurationToProto, parseIstioDurationMs } from './duration.ts';

describe('parseIstioDurationMs', () => {
  it('reads Go durations', () => {
    const cases: [string, number][] = [
      ['1.5s', 1500],
      ['100ms', 100],
      ['3m', 180_000],
      ['1h', 3_600_000],
      ['1m30s', 90_000],
      ['2h45m', 9_900_000],
      ['1.5h', 5_400_000],
      ['500us', 0.5],
      ['500µs', 0.5],
      ['1000000ns', 1],
      ['0', 0],
      ['0s', 0],
      ['+2s', 2000],
      ['.5s', 500],
    ];
    for (const [text, ms] of cases) assert.equal(parseIstioDurationMs(text), ms, text);
  });
  it('rejects what Go rejects, and negative durations', () => {
    for (const text of ['', '1', '5x', 's', '1.5', '1s ', ' 1s', '-1s', '1d', '1e3s', '1s2', '++1s'])
      assert.equal(parseIstioDurationMs(text), undefined, JSON.stringify(text));
  });
});

describe('istioDurationToProto', () => {
  it('gives protobuf JSON seconds', () => {
    assert.equal(istioDurationToProto('1m30s'), '90s');
    assert.equal(istioDurationToProto('250ms'), '0.25s');
    assert.equal(istioDurationToProto('nonsense'), undefined);
  });
});
