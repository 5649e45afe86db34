import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TcpSession } from '../network/tcp-session.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { IstioMetrics } from './istio-metrics.ts';
import { compileIstioStats } from './stats-config.ts';
import { IstioTcpStats } from './tcp-stats.ts';

const clusters = { get: () => undefined } as unknown as ClusterManager;

function session(): TcpSession & { bytesSent: number; bytesReceived: number } {
  return {
    clusterName: '',
    flags: '',
    upstreamHost: { istioWorkload: 'db-v1;data;db;v1;east' },
    downstreamPeer: undefined,
    upstreamPeer: undefined,
    downstreamSecurity: undefined,
    observerState: new Map(),
    bytesSent: 0,
    bytesReceived: 0,
  } as unknown as TcpSession & { bytesSent: number; bytesReceived: number };
}

function value(metrics: IstioMetrics, family: string): number | undefined {
  const line = metrics
    .renderPrometheus({})
    .split('\n')
    .find((l) => l.startsWith(family + '{'));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('istio.stats TCP observer', () => {
  it('reports bytes periodically while the connection lasts, then the rest at close', async () => {
    const metrics = new IstioMetrics();
    const stats = new IstioTcpStats(compileIstioStats({ tcp_reporting_duration: '0.05s' }, 'c'), {
      metrics,
      clusters,
      node: undefined,
      trafficDirection: 'OUTBOUND',
    });
    const s = session();
    stats.onOpen(s);
    assert.equal(s.upstreamPeer?.workload, 'db-v1', 'workload discovery from the endpoint');
    stats.onUpstreamConnected(s);
    assert.equal(value(metrics, 'istio_tcp_connections_opened_total'), 1);
    s.bytesSent = 100;
    s.bytesReceived = 40;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(value(metrics, 'istio_tcp_sent_bytes_total'), 100, 'reported before the close');
    assert.equal(value(metrics, 'istio_tcp_received_bytes_total'), 40);
    assert.equal(value(metrics, 'istio_tcp_connections_closed_total'), undefined);
    s.bytesSent = 150;
    stats.onClose(s);
    assert.equal(value(metrics, 'istio_tcp_sent_bytes_total'), 150, 'each byte counted once');
    assert.equal(value(metrics, 'istio_tcp_received_bytes_total'), 40);
    assert.equal(value(metrics, 'istio_tcp_connections_opened_total'), 1);
    assert.equal(value(metrics, 'istio_tcp_connections_closed_total'), 1);
  });

  it('counts a connection that never reached its upstream as opened and closed, with its flags', () => {
    const metrics = new IstioMetrics();
    const stats = new IstioTcpStats(compileIstioStats({}, 'c'), {
      metrics,
      clusters,
      node: undefined,
      trafficDirection: 'INBOUND',
    });
    const s = session();
    stats.onOpen(s);
    (s as { flags: string }).flags = 'UF';
    stats.onClose(s);
    const text = metrics.renderPrometheus({});
    assert.match(
      text,
      /^istio_tcp_connections_opened_total\{reporter="destination",.*response_flags="UF",connection_security_policy="none"\} 1$/m,
    );
    assert.match(text, /^istio_tcp_connections_closed_total\{.*response_flags="UF".*\} 1$/m);
    assert.doesNotMatch(text, /response_code=/);
  });
});
