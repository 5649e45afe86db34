import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkExposition } from './exposition-check.ts';

const VALID = [
  '# HELP a_total Requests.',
  '# TYPE a_total counter',
  'a_total{x="1",y="a\\"b\\\\c\\nd"} 3',
  'a_total{x="2",} 4 1700000000000',
  '# a plain comment',
  '# TYPE h histogram',
  'h_bucket{le="1"} 1',
  'h_bucket{le="+Inf"} 2',
  'h_sum 3.5',
  'h_count 2',
  'g NaN',
  'g2 -Inf',
  '',
].join('\n');

void test('accepts valid exposition text', () => {
  assert.deepEqual(checkExposition(VALID), []);
  assert.deepEqual(checkExposition(''), []);
});

const INVALID: [string, string, RegExp][] = [
  ['missing final newline', 'a 1', /newline/],
  ['empty line', 'a 1\n\nb 2\n', /empty line/],
  ['bad metric name', '1a 1\n', /invalid metric name/],
  ['bad label name', 'a{1x="v"} 1\n', /invalid label name/],
  ['reserved label name', 'a{__x="v"} 1\n', /invalid label name/],
  ['bad escape', 'a{x="\\q"} 1\n', /invalid escape/],
  ['unterminated value', 'a{x="v} 1\n', /unterminated|expected/],
  ['duplicate label', 'a{x="1",x="2"} 1\n', /duplicate label/],
  ['bad value', 'a 1,5\n', /invalid value/],
  ['two spaces', 'a  1\n', /expected one space/],
  ['unknown type', '# TYPE a countr\na 1\n', /invalid type/],
  ['second TYPE', '# TYPE a counter\n# TYPE a counter\na 1\n', /second TYPE/],
  ['TYPE after samples', 'a 1\n# TYPE a counter\n', /after its samples/],
  ['interleaved family', 'a{x="1"} 1\nb 1\na{x="2"} 1\n', /not contiguous/],
  ['duplicate series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n', /duplicate series/],
  ['negative counter', '# TYPE a counter\na -1\n', /negative/],
  ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
  [
    'decreasing buckets',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    /decreasing/,
  ],
  [
    'count differs from +Inf',
    '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    /differs from _count/,
  ],
  ['bucket without le', '# TYPE h histogram\nh_bucket 2\nh_sum 1\nh_count 2\n', /without a valid le/],
];

for (const [what, text, problem] of INVALID) {
  void test(`rejects ${what}`, () => {
    const errors = checkExposition(text);
    assert.ok(
      errors.some((e) => problem.test(e)),
      `expected ${problem} in ${JSON.stringify(errors)}`,
    );
  });
}
