// The malloc_trim addon and the proxy's periodic trim, with the real addon built by scripts/build-native.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { MallocTrimmer } from './memory-trim.ts';
import { StatsStore } from './stats/store.ts';
import { startProxy, waitFor } from '../../test/support/proxy.ts';
import type { RunningProxy } from '../../test/support/proxy.ts';
import { request } from '../../test/support/http.ts';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const addonPath = path.join(repo, 'build/native/malloc_trim.node');

/**
 * A child process fills ~60 MB of malloc'd memory (Buffers), allocates one more buffer after them so
 * the heap's top stays in use, frees the rest and collects: glibc keeps the freed middle resident. It
 * prints its anonymous RSS before and after one mallocTrim.
 */
const fragmenter = `
const { mallocTrim } = require(${JSON.stringify(addonPath)});
const anonKb = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]);
let filler = [];
for (let i = 0; i < 40000; i++) filler.push(Buffer.allocUnsafeSlow(1500).fill(1));
const pin = Buffer.allocUnsafeSlow(1500).fill(2);
filler = null;
globalThis.gc();
setTimeout(() => {
  globalThis.gc();
  const before = anonKb();
  mallocTrim((released) => console.log(JSON.stringify({ before, after: anonKb(), released, pin: pin[0] })));
}, 300);
`;

before(async () => {
  // Self-sufficient when run alone; a no-op when `npm run build` already compiled the addon.
  if (process.platform === 'linux') await run(process.execPath, [path.join(repo, 'scripts/build-native.ts')]);
});

describe('malloc_trim addon', { skip: process.platform !== 'linux' && 'needs Linux and glibc' }, () => {
  it('gives freed memory from the middle of the heap back to the system', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', fragmenter], { timeout: 30_000 });
    const { before, after, released } = JSON.parse(stdout) as {
      before: number;
      after: number;
      released: boolean;
    };
    assert.equal(released, true);
    // ~60 MB were freed; glibc alone returns none of it while the pinned buffer holds the heap's top.
    assert.ok(before - after > 30_000, `anonymous RSS ${before} kB before the trim, ${after} kB after`);
  });

  it('rejects a missing callback with a TypeError', () => {
    const addon = createRequire(import.meta.url)(addonPath) as { mallocTrim(cb: unknown): void };
    for (const bad of [undefined, 1, 'f', {}]) assert.throws(() => addon.mallocTrim(bad), TypeError);
  });
});

describe('MallocTrimmer', { skip: process.platform !== 'linux' && 'needs Linux and glibc' }, () => {
  it('trims on its interval, one at a time, and stops', async () => {
    const stats = new StatsStore();
    const trimmer = new MallocTrimmer(stats, 20);
    assert.deepEqual(trimmer.start(), { available: true });
    const runs = stats.counter('server.memory_trim.runs');
    await waitFor(() => runs.value >= 3, 10_000, 'three trims');
    trimmer.stop();
    await new Promise((r) => setTimeout(r, 100)); // a trim already queued may still complete
    const stopped = runs.value;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(runs.value, stopped, 'no trim after stop()');
  });

  describe('in a running proxy', () => {
    let proxy: RunningProxy;
    before(async () => {
      proxy = await startProxy({
        admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      });
    });
    after(async () => {
      await proxy?.stop();
    });

    it('reports its trims in the admin stats', async () => {
      await waitFor(
        async () => {
          const stats = (await request(proxy.adminPort, { path: '/stats' })).body;
          const runs = /server\.memory_trim\.runs: (\d+)/.exec(stats);
          return runs !== null && Number(runs[1]) >= 1;
        },
        10_000,
        'a trim reported in /stats',
      );
    });
  });
});
