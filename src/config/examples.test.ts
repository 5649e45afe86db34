/** The configuration examples the README points to load without errors or unsupported-field warnings. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { analyze } from './analyze/index.ts';
import { loadConfig } from './load.ts';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

describe('configuration examples', () => {
  for (const dir of ['rate-limit', 'mesh']) {
    it(`examples/${dir} loads and analyzes clean`, () => {
      const { resources, diagnostics } = loadConfig([path.join(EXAMPLES, dir)]);
      assert.ok(resources.length > 0);
      const all = [...diagnostics, ...analyze(resources)].filter((d) => d.severity !== 'info');
      assert.deepEqual(
        all.map((d) => `${d.code} ${d.file ?? ''} ${d.resource ?? ''} ${d.field ?? ''}: ${d.message}`),
        [],
      );
    });
  }
});
