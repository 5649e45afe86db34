import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENVOY_DEFAULT_BUCKETS, HistogramImpl, SUPPORTED_QUANTILES } from './histogram.ts';

void test('bucket counts follow Prometheus le (value <= bound) semantics', () => {
  const h = new HistogramImpl('h');
  for (const v of [0, 0.5, 0.51, 1, 4.99, 5, 3600000, 3600000.1, 1e12]) h.record(v);
  const counts = Array.from(h.bucketCounts);
  assert.equal(counts.length, ENVOY_DEFAULT_BUCKETS.length + 1);
  assert.equal(counts[0], 2); // 0 and 0.5 are <= 0.5
  assert.equal(counts[1], 2); // 0.51 and 1
  assert.equal(counts[2], 2); // 4.99 and 5
  assert.equal(counts[ENVOY_DEFAULT_BUCKETS.length - 1], 1); // 3600000
  assert.equal(counts[ENVOY_DEFAULT_BUCKETS.length], 2); // above the last bound
  assert.equal(h.count, 9);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    9,
  );
});

void test('negative values count as 0; NaN and Infinity are ignored', () => {
  const h = new HistogramImpl('h');
  h.record(-3);
  h.record(NaN);
  h.record(Infinity);
  assert.equal(h.count, 1);
  assert.equal(h.sum, 0);
  assert.equal(h.bucketCounts[0], 1);
  assert.equal(h.cumulative.quantile(0.5), 0);
});

void test('quantiles of 1..10000 are within 1% of the exact order statistics', () => {
  const h = new HistogramImpl('h');
  for (let i = 1; i <= 10000; i++) h.record(i);
  for (const q of SUPPORTED_QUANTILES) {
    const exact = Math.max(1, Math.ceil(q * 10000));
    const est = h.cumulative.quantile(q);
    assert.ok(Math.abs(est - exact) <= exact * 0.01, `P${q * 100}: ${est} vs ${exact}`);
  }
  assert.equal(h.cumulative.quantile(0), 1);
  assert.equal(h.cumulative.quantile(1), 10000);
});

void test('quantiles span decades: sub-millisecond and hours', () => {
  const h = new HistogramImpl('h');
  const values: number[] = [];
  // A fixed geometric spread from 0.002 ms to ~2.9 h.
  for (let i = 0; i < 1000; i++) values.push(0.002 * Math.pow(1.0213, i));
  for (const v of values) h.record(v);
  values.sort((a, b) => a - b);
  for (const q of [0.25, 0.5, 0.9, 0.99]) {
    const exact = values[Math.ceil(q * values.length) - 1];
    const est = h.cumulative.quantile(q);
    // Two significant digits per bin: at most ~10% relative error, usually far less.
    assert.ok(Math.abs(est - exact) <= exact * 0.1, `P${q * 100}: ${est} vs ${exact}`);
  }
});

void test('a single value is reported exactly at every quantile', () => {
  const h = new HistogramImpl('h');
  h.record(42.7);
  for (const q of SUPPORTED_QUANTILES) assert.equal(h.cumulative.quantile(q), 42.7);
});

void test('interval resets on merge while cumulative keeps everything', () => {
  const h = new HistogramImpl('h');
  h.record(10);
  h.mergeInterval();
  assert.ok(Number.isNaN(h.interval.quantile(0.5)));
  assert.equal(h.cumulative.quantile(0.5), 10);
  h.record(20);
  assert.equal(h.interval.quantile(0.5), 20);
  assert.equal(h.cumulative.count, 2);
  assert.ok(Number.isNaN(new HistogramImpl('empty').cumulative.quantile(0.5)));
});

void test('recording after the first sample reuses the same bin arrays', () => {
  const h = new HistogramImpl('h');
  assert.equal(h.cumulative.bins, null, 'unused histograms allocate no sketch');
  h.record(1);
  const bins = h.cumulative.bins;
  for (let i = 0; i < 1000; i++) h.record(i * 7.3);
  assert.equal(h.cumulative.bins, bins);
});
