import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ListenerConfig } from './listener/types.ts';
import { ServerStats, versionNumber } from './server-stats.ts';
import { StatsStore } from './stats/store.ts';

const listener = (host: string, port: number): { config: ListenerConfig } => ({
  config: { address: { host, port } } as unknown as ListenerConfig,
});

describe('ServerStats', () => {
  it("sets Envoy's server.* gauges: state, version, concurrency, and connections over all listeners", () => {
    const store = new StatsStore();
    const stats = new ServerStats(store, '1.22.3');
    const g = (name: string): number => store.gauge(name).value;
    assert.equal(g('server.state'), 3); // INITIALIZING
    assert.equal(g('server.version'), 12203);
    assert.equal(g('server.concurrency'), 1);
    store.gauge('listener.127.0.0.1_15001.downstream_cx_active').set(4);
    store.gauge('listener.[::1]_15006.downstream_cx_active').set(2);
    store.gauge('listener.10.0.0.1_80.downstream_cx_active').set(7); // not an active listener
    stats.flush('LIVE', [listener('127.0.0.1', 15001), listener('::1', 15006)]);
    assert.equal(g('server.state'), 0);
    assert.equal(g('server.total_connections'), 6);
    stats.flush('DRAINING', []);
    assert.equal(g('server.state'), 1);
    assert.equal(g('server.total_connections'), 0);
    stats.flush('STOPPED', []);
    assert.equal(g('server.state'), 1);
  });

  it('reads a version as one number, 0 when it is not x.y.z', () => {
    assert.equal(versionNumber('0.1.0'), 100);
    assert.equal(versionNumber('2.0.15-rc1'), 20015);
    assert.equal(versionNumber('dev'), 0);
  });
});
