import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { processMetrics } from './process-metrics.ts';

const value = (text: string, name: string): number => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in\n${text}`);
  return Number(m[1]);
};

describe('process metrics of the proxy', () => {
  it("reports this process's CPU, memory and event-loop delay; promtool parses them", async () => {
    const source = processMetrics();
    assert.equal(processMetrics(), source); // one per process
    source.renderPrometheus({}); // starts a fresh delay interval
    // (the first timer tick after a reset only takes a timestamp: let it pass before blocking)
    await new Promise((r) => setTimeout(r, 50));
    // Block the loop for 150 ms: the interval's longest delay must show it.
    const until = Date.now() + 150;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 60));
    const text = source.renderPrometheus({});
    const cpu = process.cpuUsage();
    assert.ok(value(text, 'process_cpu_seconds_total') <= (cpu.user + cpu.system) / 1e6);
    assert.ok(value(text, 'process_cpu_seconds_total') >= 0.15);
    const rss = value(text, 'process_resident_memory_bytes');
    assert.ok(Math.abs(rss - process.memoryUsage.rss()) < 64 * 1048576);
    assert.ok(
      Math.abs(value(text, 'process_start_time_seconds') - (Date.now() / 1000 - process.uptime())) < 2,
    );
    const max = value(text, 'nodejs_eventloop_lag_max_seconds');
    assert.ok(max >= 0.1 && max < 5, `max delay ${max}`);
    assert.ok(value(text, 'nodejs_eventloop_lag_p99_seconds') <= max);
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(check.error, undefined, 'promtool must be installed');
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it("keeps to Envoy's ?filter=", () => {
    const text = processMetrics().renderPrometheus({ filter: /resident/ });
    assert.deepEqual(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' ')[0]),
      ['process_resident_memory_bytes'],
    );
  });
});
