import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyNode } from '../xds/types.ts';
import { aggregate } from './discovery.ts';
import type { DiscoverySource, ServiceDefinition } from './discovery.ts';
import { protocolOf } from './protocol.ts';
import { RegistrySource, workloadOfNode } from './registry-source.ts';
import type { Workload } from './types.ts';
import { endpointKey, parseLocality } from './types.ts';

function node(over: Partial<ProxyNode> = {}): ProxyNode {
  return {
    id: 'sidecar~10.0.0.7~web-1.shop~shop.svc.cluster.local',
    type: 'sidecar',
    name: 'web-1',
    namespace: 'shop',
    dnsDomain: 'shop.svc.cluster.local',
    ipAddresses: ['10.0.0.7'],
    labels: { app: 'web', version: 'v2' },
    serviceAccount: 'web',
    workloadName: 'web',
    locality: { region: 'eu', zone: 'eu-a', subZone: '' },
    cluster: 'web.shop',
    metadata: { POD_PORTS: '[{"name":"http","containerPort":8080,"protocol":"TCP"}]' },
    ...over,
  };
}

function staticSource(services: ServiceDefinition[], workloads: Workload[]): DiscoverySource {
  return { name: 'static', services: () => services, workloads: () => workloads, onChange: () => () => {} };
}

describe('protocol selection (Istio rules)', () => {
  const cases: [Parameters<typeof protocolOf>[0], string][] = [
    [{ protocol: 'HTTP' }, 'HTTP'],
    [{ protocol: 'grpc' }, 'GRPC'],
    [{ name: 'http-web' }, 'HTTP'],
    [{ name: 'http2' }, 'HTTP2'],
    [{ name: 'grpc-web-api' }, 'GRPC-WEB'],
    [{ name: 'grpc-api' }, 'GRPC'],
    [{ name: 'tcp-db' }, 'TCP'],
    [{ name: 'mysql' }, 'MYSQL'],
    [{ name: 'web' }, 'UNSPECIFIED'],
    [{ name: 'httpx-web' }, 'UNSPECIFIED'],
    [{ name: 'http-web', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    [{ name: 'http-web', protocol: 'TCP' }, 'TCP'],
    [{ protocol: 'BOGUS', name: 'http' }, 'UNSPECIFIED'],
  ];
  for (const [port, expected] of cases) {
    it(`${JSON.stringify(port)} → ${expected}`, () => assert.equal(protocolOf(port), expected));
  }
});

describe('discovery aggregation', () => {
  const service: ServiceDefinition = {
    hostname: 'web.shop.svc.cluster.local',
    namespace: 'shop',
    ports: [
      { name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 },
      { name: 'admin', number: 9000, protocol: 'HTTP' },
    ],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: [],
    origin: 'test',
    workloadSelector: { app: 'web' },
  };
  const workload = (
    name: string,
    ns: string,
    labels: Record<string, string>,
    ports: Record<string, number> = {},
  ): Workload => ({
    name,
    namespace: ns,
    address: `10.0.0.${name.length}`,
    labels,
    ports,
    locality: parseLocality('eu/eu-a'),
    weight: 1,
    serviceAccount: 'sa',
    healthy: true,
    origin: 'test',
  });

  it('selects workloads by labels in the service namespace and maps ports by name, then targetPort, then number', () => {
    const state = aggregate([
      staticSource(
        [service],
        [
          workload('a', 'shop', { app: 'web' }, { http: 18080 }),
          workload('bb', 'shop', { app: 'web', version: 'v2' }),
          workload('ccc', 'other', { app: 'web' }),
          workload('dddd', 'shop', { app: 'api' }),
        ],
      ),
    ]);
    const http = state.endpoints.get(endpointKey(service.hostname, 80))!;
    assert.deepEqual(
      http.map((e) => [e.workloadName, e.port]),
      [
        ['a', 18080],
        ['bb', 8080],
      ],
    );
    const admin = state.endpoints.get(endpointKey(service.hostname, 9000))!;
    assert.deepEqual(
      admin.map((e) => e.port),
      [9000, 9000],
    );
    assert.equal(state.services.length, 1);
    assert.ok(!('workloadSelector' in state.services[0]), 'selector stays inside discovery');
  });

  it('an earlier source owns a host; workloads of every source are joined', () => {
    const other: ServiceDefinition = { ...service, origin: 'later', workloadSelector: { app: 'none' } };
    const state = aggregate([
      staticSource([service], []),
      staticSource([other], [workload('e', 'shop', { app: 'web' })]),
    ]);
    assert.equal(state.services[0].origin, 'test');
    assert.equal(state.endpoints.get(endpointKey(service.hostname, 80))!.length, 1);
  });
});

describe('auto-registration', () => {
  it('a sidecar node becomes a workload with its POD_PORTS; gateways and gRPC clients do not', () => {
    const w = workloadOfNode(node())!;
    assert.equal(w.address, '10.0.0.7');
    assert.deepEqual(w.ports, { http: 8080 });
    assert.equal(w.serviceAccount, 'web');
    assert.equal(workloadOfNode(node({ type: 'router' })), undefined);
    assert.equal(workloadOfNode(node({ type: 'grpc' })), undefined);
    assert.equal(workloadOfNode(node({ ipAddresses: [] })), undefined);
    assert.deepEqual(workloadOfNode(node({ metadata: { POD_PORTS: 'not json' } }))!.ports, {});
  });

  it('keeps a workload while any stream is open and removes it a grace period after the last one ends', async () => {
    const registry = new RegistrySource({ graceMs: 50 });
    let changes = 0;
    registry.onChange(() => changes++);
    registry.connected(node());
    registry.connected(node());
    assert.equal(registry.workloads().length, 1);
    registry.disconnected(node());
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(registry.workloads().length, 1, 'one stream is still open');
    registry.disconnected(node());
    registry.connected(node());
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(registry.workloads().length, 1, 'reconnected within the grace period');
    registry.disconnected(node());
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(registry.workloads().length, 0);
    assert.equal(changes, 2, 'registered once, removed once');
    registry.close();
  });
});
