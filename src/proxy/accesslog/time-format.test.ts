import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileTimeFormat, isoTime } from './time-format.ts';

describe('START_TIME formats', () => {
  it("the default ISO form equals Date's, in any order of times (the per-second cache never leaks)", () => {
    const times = [0, 999, 1000, 1_700_000_000_000, 1_700_000_000_999, 1_700_000_001_000, 1_699_999_999_999];
    let x = 1_764_000_000_000;
    for (let i = 0; i < 500; i++) {
      x += Math.floor(Math.random() * 1500) - 500;
      times.push(x, x + 0.75);
    }
    for (const t of times) assert.equal(isoTime(t), new Date(Math.floor(t)).toISOString(), `at ${t}`);
  });

  it('strftime patterns with fractions and epoch seconds', () => {
    const f = compileTimeFormat('%Y-%m-%dT%H:%M:%E3S %s %6f', 'f');
    assert.equal(f(Date.UTC(2024, 4, 1, 12, 3, 4, 56)), '2024-05-01T12:03:04.056 1714564984 056000');
  });
});
