import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyStatus } from '../control/xds/ads-server.ts';
import { TYPE_URL } from '../control/xds/types.ts';
import { adminAddress, proxiesView, scrapeTargets } from './api.ts';

function status(
  peer: string,
  metadata: Record<string, unknown>,
  types: Partial<ProxyStatus['types'][0]>[] = [],
) {
  return {
    connectionId: '1',
    peer,
    connectedAt: '2026-01-01T00:00:00.000Z',
    stream: 'delta',
    node: {
      id: 'sidecar~127.0.0.10~r.default~default.svc.cluster.local',
      type: 'sidecar',
      name: 'r',
      namespace: 'default',
      workloadName: 'reviews-v2',
      labels: { app: 'reviews', version: 'v2' },
      metadata,
    },
    types: types.map((t) => ({
      typeUrl: TYPE_URL.cluster,
      lastSentVersion: 'v1',
      lastAckedVersion: 'v1',
      state: 'SYNCED',
      ...t,
    })),
  } as unknown as ProxyStatus;
}

describe('adminAddress', () => {
  it('takes WEFT_ADMIN_ADDRESS, else the admin port of a proxy connected over loopback', () => {
    assert.equal(
      adminAddress(status('10.0.0.5:4000', { WEFT_ADMIN_ADDRESS: '10.0.0.5:15000' })),
      '10.0.0.5:15000',
    );
    assert.equal(adminAddress(status('127.0.0.1:4000', { WEFT_ADMIN_PORT: 15123 })), '127.0.0.1:15123');
    assert.equal(
      adminAddress(status('ipv4:127.0.0.1:4000', { WEFT_ADMIN_PORT: '15123' })),
      '127.0.0.1:15123',
    );
    assert.equal(adminAddress(status('10.0.0.5:4000', { WEFT_ADMIN_PORT: 15123 })), null);
    assert.equal(adminAddress(status('127.0.0.1:4000', { WEFT_ADMIN_ADDRESS: 'http://x/y' })), null);
  });

  it('scrapes each admin once, with the workload it serves', () => {
    const s = status('127.0.0.1:1', { WEFT_ADMIN_PORT: 15001 });
    assert.deepEqual(scrapeTargets([s, s]), [
      {
        address: '127.0.0.1:15001',
        proxyId: s.node.id,
        name: 'r.default',
        ips: [],
        workload: { name: 'reviews-v2', namespace: 'default', app: 'reviews', version: 'v2' },
      },
    ]);
  });
});

describe('proxiesView', () => {
  it('names each type, keeps the NACK error and reports the worst state', () => {
    const view = proxiesView([
      status('127.0.0.1:1', {}, [
        {},
        { typeUrl: TYPE_URL.listener, state: 'NACK', error: 'Listener "x": bad field' },
        { typeUrl: TYPE_URL.route, state: 'STALE' },
      ]),
    ]);
    const p = view.proxies[0];
    assert.equal(p.state, 'NACK');
    assert.deepEqual(
      p.types.map((t) => [t.type, t.state, t.error]),
      [
        ['CDS', 'SYNCED', undefined],
        ['LDS', 'NACK', 'Listener "x": bad field'],
        ['RDS', 'STALE', undefined],
      ],
    );
    assert.equal(p.adminAddress, null);
  });
});
