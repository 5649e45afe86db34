import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { histogramQuantile } from './quantile.ts';

const cumulative = (pairs: [number, number][]): Map<number, number> => new Map(pairs);

describe('histogramQuantile', () => {
  it('interpolates inside the bucket holding the rank', () => {
    // 90 observations in (1, 5], 10 in (100, 250].
    const h = cumulative([
      [1, 0],
      [5, 90],
      [100, 90],
      [250, 100],
      [Infinity, 100],
    ]);
    assert.ok(Math.abs(histogramQuantile(0.5, h)! - (1 + 4 * (50 / 90))) < 1e-9);
    assert.ok(Math.abs(histogramQuantile(0.99, h)! - (100 + 150 * 0.9)) < 1e-9);
    assert.equal(histogramQuantile(0.9, h), 5);
  });

  it('starts the first bucket at 0 and answers the top finite bound for +Inf', () => {
    assert.equal(
      histogramQuantile(
        0.5,
        cumulative([
          [10, 4],
          [Infinity, 4],
        ]),
      ),
      5,
    );
    assert.equal(
      histogramQuantile(
        0.99,
        cumulative([
          [10, 0],
          [20, 1],
          [Infinity, 10],
        ]),
      ),
      20,
    );
  });

  it('has no answer without observations or without +Inf', () => {
    assert.equal(histogramQuantile(0.5, cumulative([[Infinity, 0]])), null);
    assert.equal(histogramQuantile(0.5, cumulative([[10, 3]])), null);
    assert.equal(histogramQuantile(0.5, new Map()), null);
  });
});
