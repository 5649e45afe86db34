import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyNode } from '../xds/types.ts';
import { aggregate, changedEndpointKeys } from './discovery.ts';
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
    // The selector is kept: the generator names the services a workload serves (inbound istio.services).
    assert.deepEqual(state.services[0].workloadSelector, { app: 'web' });
    assert.ok(!('inlineEndpoints' in state.services[0]), 'inline endpoints stay inside discovery');
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

describe('incremental aggregation', () => {
  const svc = (name: string, selector: Record<string, string>): ServiceDefinition => ({
    hostname: `${name}.shop.svc.cluster.local`,
    namespace: 'shop',
    ports: [{ name: 'http', number: 80, protocol: 'HTTP' }],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: [],
    origin: 'test',
    workloadSelector: selector,
  });
  const w = (name: string, labels: Record<string, string>, address: string): Workload => ({
    name,
    namespace: 'shop',
    address,
    labels,
    ports: {},
    locality: parseLocality('eu/eu-a'),
    weight: 1,
    serviceAccount: 'sa',
    healthy: true,
    origin: 'test',
  });

  it('recomputes only the services a changed workload is selected by, with the result of a full aggregation', () => {
    const services = [svc('web', { app: 'web' }), svc('api', { app: 'api' }), svc('all', {})];
    let workloads = [
      w('web-1', { app: 'web' }, '10.0.0.1'),
      w('api-1', { app: 'api' }, '10.0.0.2'),
      w('api-2', { app: 'api' }, '10.0.0.3'),
    ];
    const source: DiscoverySource = {
      name: 'mutable',
      services: () => services,
      workloads: () => workloads,
      onChange: () => () => {},
    };
    const first = aggregate([source]);
    workloads = [workloads[0], w('api-1', { app: 'api' }, '10.0.0.22'), workloads[2]];
    const second = aggregate([source], first);
    const web = endpointKey('web.shop.svc.cluster.local', 80);
    const api = endpointKey('api.shop.svc.cluster.local', 80);
    const all = endpointKey('all.shop.svc.cluster.local', 80);
    assert.equal(second.endpoints.get(web), first.endpoints.get(web), 'untouched list kept');
    assert.notEqual(second.endpoints.get(api), first.endpoints.get(api));
    assert.deepEqual([...changedEndpointKeys(first, second)].sort(), [all, api].sort());
    assert.deepEqual(second, aggregate([source]), 'same as aggregating from scratch');
    // A workload added and one removed (a different length).
    workloads = [w('web-2', { app: 'web' }, '10.0.0.9'), ...workloads.slice(1)];
    const third = aggregate([source], second);
    assert.deepEqual(third, aggregate([source]));
    assert.equal(third.endpoints.get(api), second.endpoints.get(api));
    assert.deepEqual([...changedEndpointKeys(second, third)].sort(), [all, web].sort());
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
