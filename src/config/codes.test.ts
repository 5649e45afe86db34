import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { Codes } from './codes.ts';

const docsUrl = new URL('../../docs/analyze-codes.md', import.meta.url);

describe('diagnostic codes', () => {
  it('are unique', () => {
    const codes = Object.values(Codes).map((c) => c.code);
    assert.equal(new Set(codes).size, codes.length);
  });

  it('are each listed in docs/analyze-codes.md with the same severity and name, and nothing else is', () => {
    const rows = fs
      .readFileSync(docsUrl, 'utf8')
      .split('\n')
      .map((line) => /^\| ((?:IST|WE)\d{4}) \| (\w+) \| (\w+) \|/.exec(line))
      .filter((m) => m !== null)
      .map((m) => `${m[1]} ${m[2]} ${m[3]}`)
      .sort();
    const expected = Object.values(Codes)
      .map((c) => `${c.code} ${c.severity} ${c.name}`)
      .sort();
    assert.deepEqual(rows, expected);
  });
});
