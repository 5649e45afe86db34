// Smoke test of the chaos benchmark harness: a short, slow run of two scenarios through a real Weft
// proxy. It checks the report's shape and that the counts add up, never performance.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_REPLICAS, renderChaosMarkdown, runChaos } from './harness.ts';
import { quantile } from './load.ts';
import { takeChaosFlags } from './section.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
// The sources, not dist/: what is under test, and never a stale build.
const weftCli = path.join(repoRoot, 'src', 'cli', 'main.ts');

void describe('chaos benchmark harness', () => {
  void it('quantile uses the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(xs, 0.5), 50);
    assert.equal(quantile(xs, 0.99), 99);
    assert.equal(quantile(xs, 1), 100);
    assert.ok(Number.isNaN(quantile([], 0.5)));
  });

  void it('takes its flags out of the load benchmark arguments', () => {
    assert.deepEqual(takeChaosFlags(['--quick', '--chaos']), { argv: ['--quick'], mode: 'also' });
    assert.deepEqual(takeChaosFlags(['--chaos-only', '--chaos']), { argv: [], mode: 'only' });
    assert.deepEqual(takeChaosFlags(['--reps', '2']), { argv: ['--reps', '2'], mode: 'off' });
  });

  void it(
    'runs two scenarios for 2 s at 100 rps and reports counts that add up',
    { timeout: 90_000 },
    async () => {
      const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'weft-chaos-'));
      try {
        const report = await runChaos(
          {
            rps: 100,
            durationS: 2,
            warmupS: 0,
            replicas: DEFAULT_REPLICAS,
            scenarios: ['round-robin', 'peak-ewma+retries+outlier'],
            weftCli,
            weftNodeArgs: [],
            tmpDir,
            requestTimeoutMs: 5000,
          },
          () => {},
        );
        assert.equal(report.kind, 'chaos');
        assert.deepEqual(
          report.scenarios.map((s) => s.name),
          ['round-robin', 'peak-ewma+retries+outlier'],
        );
        for (const s of report.scenarios) {
          assert.equal(s.sent, 200, s.name);
          assert.equal(s.ok + s.failed + s.errors, s.sent, s.name);
          assert.equal(s.successRate, s.ok / s.sent);
          assert.deepEqual(Object.keys(s.replicas).sort(), ['failing', 'healthy', 'slow']);
          const upstream = Object.values(s.replicas).reduce((n, c) => n + c.requests, 0);
          // Every answered request reached a replica at least once (more with retries).
          assert.ok(upstream >= s.ok + s.failed, `${s.name}: ${upstream} upstream < ${s.ok + s.failed}`);
          assert.equal(s.replicas.healthy.failed + s.replicas.slow.failed, 0);
          assert.ok(s.p50Ms <= s.p99Ms && s.p99Ms <= s.p999Ms && s.p999Ms <= s.maxMs, s.name);
        }
        const rr = report.scenarios[0];
        // Without retries every 503 of the failing replica reaches the client, and nothing else fails.
        assert.equal(rr.failed, rr.replicas.failing.failed);
        assert.equal(rr.failedByStatus['503'] ?? 0, rr.failed);
        assert.equal(report.targets.length, 1); // one policy scenario; the p99 comparison needs both
        const md = renderChaosMarkdown(report);
        assert.match(md, /\| round-robin \| 200 \|/);
        assert.match(md, /\| peak-ewma\+retries\+outlier \| 200 \|/);
      } finally {
        rmSync(tmpDir, { recursive: true, force: true });
      }
    },
  );
});
