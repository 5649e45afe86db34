import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExpositionError, parseLabels, readSamples } from './exposition.ts';
import type { CounterSeries } from '../proxy/telemetry/istio-metrics.ts';
import { IstioMetrics, renderLabels } from '../proxy/telemetry/istio-metrics.ts';

function all(text: string, wanted: (n: string) => boolean = () => true): [string, string, number][] {
  const out: [string, string, number][] = [];
  readSamples(text, wanted, (n, l, v) => out.push([n, l, v]));
  return out;
}

describe('readSamples', () => {
  it('reads names, label text, values and skips comments and unwanted families', () => {
    const text = [
      '# HELP a_total things',
      '# TYPE a_total counter',
      'a_total{x="1",y="a}b"} 12',
      'b 3.5e2 1700000000000',
      'c{le="+Inf"} +Inf',
      'skipped{this is not even valid',
      '',
    ].join('\n');
    assert.deepEqual(
      all(text, (n) => n !== 'skipped'),
      [
        ['a_total', 'x="1",y="a}b"', 12],
        ['b', '', 350],
        ['c', 'le="+Inf"', Infinity],
      ],
    );
  });

  it('rejects a malformed line of a wanted family, naming the line', () => {
    assert.throws(
      () => all('a 1\na{x="1" 2\n'),
      (e: unknown) => {
        assert.ok(e instanceof ExpositionError);
        assert.match(e.message, /line 2: unterminated labels/);
        return true;
      },
    );
    assert.throws(() => all('a one\n'), /line 1: expected a value/);
    assert.throws(() => all('a 1 2 3\n'), /line 1: expected a value/);
    assert.throws(() => all('a 1 1.5\n'), /line 1: invalid timestamp/);
  });
});

describe('parseLabels', () => {
  it('unescapes \\\\, \\" and \\n and allows a trailing comma', () => {
    assert.deepEqual(
      [...parseLabels('a="x\\\\y",b="q\\"uote",c="two\\nlines",')],
      [
        ['a', 'x\\y'],
        ['b', 'q"uote'],
        ['c', 'two\nlines'],
      ],
    );
    assert.deepEqual([...parseLabels('')], []);
  });

  it('rejects bad names, escapes, repeats and missing quotes', () => {
    assert.throws(() => parseLabels('1a="x"'), /invalid label name/);
    assert.throws(() => parseLabels('a="\\t"'), /invalid escape/);
    assert.throws(() => parseLabels('a="x",a="y"'), /repeated/);
    assert.throws(() => parseLabels('a=x'), /expected "/);
    assert.throws(() => parseLabels('a="x"b="y"'), /expected ,/);
    assert.throws(() => parseLabels('a="x'), /unterminated/);
  });

  it("reads back what Weft's Istio metrics write, odd characters included", () => {
    const m = new IstioMetrics();
    const values = ['pa"th', 'back\\slash', 'new\nline', ''];
    const s = m.series('requests_total', renderLabels(['a', 'b', 'c', 'd'], values)) as CounterSeries;
    s.value = 7;
    const got = all(m.renderPrometheus({}), (n) => n === 'istio_requests_total');
    assert.equal(got.length, 1);
    assert.equal(got[0][2], 7);
    assert.deepEqual([...parseLabels(got[0][1]).values()], values);
  });
});
