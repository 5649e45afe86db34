import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import {
  buildAgentBootstrap,
  canonicalServiceName,
  defaultInstanceIp,
  parseHostPort,
  parseLabels,
  parseLocality,
} from './agent-bootstrap.ts';
import { compileBootstrap } from './compile.ts';

const base = {
  xdsAddress: '127.0.0.1:15010',
  type: 'sidecar' as const,
  name: 'reviews-v1-7d9f',
  namespace: 'bookinfo',
  ip: '10.44.0.7',
};

describe('the agent bootstrap (istio-agent style)', () => {
  it('identifies the workload as Istio does', () => {
    const doc = buildAgentBootstrap({
      ...base,
      labels: { app: 'reviews', version: 'v1' },
      serviceAccount: 'bookinfo-reviews',
      locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: '' },
      workloadName: 'reviews-v1',
    });
    assert.deepEqual(doc.node, {
      id: 'sidecar~10.44.0.7~reviews-v1-7d9f.bookinfo~bookinfo.svc.cluster.local',
      cluster: 'reviews.bookinfo',
      metadata: {
        NAME: 'reviews-v1-7d9f',
        NAMESPACE: 'bookinfo',
        LABELS: { app: 'reviews', version: 'v1' },
        SERVICE_ACCOUNT: 'bookinfo-reviews',
        WORKLOAD_NAME: 'reviews-v1',
        INSTANCE_IPS: '10.44.0.7',
        INTERCEPTION_MODE: 'NONE',
        CLUSTER_ID: 'Kubernetes',
        ISTIO_VERSION: VERSION,
        ENVOY_PROMETHEUS_PORT: 15090,
        ENVOY_STATUS_PORT: 15021,
        WEFT_ADMIN_PORT: 15000,
      },
      locality: { region: 'eu-west', zone: 'eu-west-1a', sub_zone: '' },
    });
  });

  it('adds extra metadata, which may override the defaults', () => {
    const doc = buildAgentBootstrap({
      ...base,
      metadata: { WEFT_OUTBOUND_PORT: '15001', INTERCEPTION_MODE: 'REDIRECT' },
    });
    const md = (doc.node as { metadata: Record<string, unknown> }).metadata;
    assert.equal(md.WEFT_OUTBOUND_PORT, '15001');
    assert.equal(md.INTERCEPTION_MODE, 'REDIRECT');
    assert.equal(md.NAME, 'reviews-v1-7d9f');
  });

  it('names a gateway router~, and defaults what was not given', () => {
    const doc = buildAgentBootstrap({
      ...base,
      type: 'router',
      name: 'ingress-1',
      namespace: 'istio-system',
    });
    const node = doc.node as Record<string, unknown>;
    assert.equal(node.id, 'router~10.44.0.7~ingress-1.istio-system~istio-system.svc.cluster.local');
    assert.equal(node.cluster, 'ingress-1.istio-system', 'no labels: the workload name');
    assert.equal(node.locality, undefined);
    const md = node.metadata as Record<string, unknown>;
    assert.equal(md.SERVICE_ACCOUNT, 'default');
    assert.equal(md.WORKLOAD_NAME, 'ingress-1');
    assert.deepEqual(md.LABELS, {});
  });

  it('is a valid Weft bootstrap: ADS to the control plane, stats and health listeners on the admin server', () => {
    const doc = buildAgentBootstrap({
      ...base,
      delta: true,
      adminPort: 25000,
      prometheusPort: 25090,
      healthPort: 25021,
    });
    const b = compileBootstrap(doc, 'agent');
    assert.deepEqual(b.dynamic?.ads, {
      apiType: 'DELTA_GRPC',
      clusterName: 'xds-grpc',
      authority: 'xds-grpc',
      nodeOnFirstMessageOnly: true,
    });
    assert.ok(b.dynamic?.lds && b.dynamic.cds);
    assert.deepEqual(b.admin, { address: { host: '127.0.0.1', port: 25000 } });
    const xds = b.clusters.find((c) => c.name === 'xds-grpc')!;
    assert.equal(xds.type, 'STATIC');
    assert.ok(xds.http2);
    assert.deepEqual(xds.localityEndpoints[0].endpoints[0].port, 15010);
    assert.deepEqual(
      b.listeners.map((l) => [l.name, l.address.host, l.address.port]),
      [
        ['prometheus', '0.0.0.0', 25090],
        ['health', '0.0.0.0', 25021],
      ],
    );
    for (const c of b.clusters.filter((x) => x.name !== 'xds-grpc'))
      assert.equal(c.localityEndpoints[0].endpoints[0].port, 25000);
    const none = compileBootstrap(
      buildAgentBootstrap({ ...base, adminPort: 25000, prometheusPort: 0, healthPort: 0 }),
      'agent',
    );
    assert.deepEqual(none.listeners, [], 'port 0 leaves the stats and health listeners out');
    const dns = compileBootstrap(
      buildAgentBootstrap({ ...base, xdsAddress: 'istiod.istio-system.svc:15012' }),
      'agent',
    );
    assert.equal(dns.clusters[0].type, 'STRICT_DNS');
  });

  it('refuses bad identities and addresses', () => {
    const bad = (o: Partial<Parameters<typeof buildAgentBootstrap>[0]>, message: RegExp): void =>
      assert.throws(
        () => buildAgentBootstrap({ ...base, ...o }),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    bad({ name: '' }, /^--name: required/);
    bad({ namespace: 'Bad_NS' }, /^--namespace: "Bad_NS" is not a valid namespace name/);
    bad({ ip: '10.0.0' }, /^--ip: "10\.0\.0" is not an IP address/);
    bad({ xdsAddress: 'istiod' }, /^--xds-address: expected host:port/);
    bad({ adminPort: 0 }, /^--admin-port: must be a fixed port/);
    bad({ healthPort: 70000 }, /^--health-port: invalid port 70000/);
  });
});

describe('agent option parsing', () => {
  it('labels, locality, host:port', () => {
    assert.deepEqual(parseLabels('app=web, version=v1,team=a=b'), { app: 'web', version: 'v1', team: 'a=b' });
    assert.deepEqual(parseLabels(''), {});
    assert.throws(() => parseLabels('app'), /--labels: expected key=value, got "app"/);
    assert.deepEqual(parseLocality('eu/eu-1/rack'), { region: 'eu', zone: 'eu-1', subZone: 'rack' });
    assert.deepEqual(parseLocality('eu'), { region: 'eu', zone: '', subZone: '' });
    assert.throws(() => parseLocality('a/b/c/d'), /--locality/);
    assert.deepEqual(parseHostPort('[::1]:15010', 'x'), { host: '::1', port: 15010 });
    assert.deepEqual(parseHostPort('istiod:15010', 'x'), { host: 'istiod', port: 15010 });
    assert.throws(() => parseHostPort('istiod:0', 'x'), /x: expected host:port/);
  });

  it("Istio's canonical service name, and a default instance IP", () => {
    assert.equal(canonicalServiceName({ 'service.istio.io/canonical-name': 'c', app: 'a' }, 'w'), 'c');
    assert.equal(canonicalServiceName({ 'app.kubernetes.io/name': 'k', app: 'a' }, 'w'), 'k');
    assert.equal(canonicalServiceName({ app: 'a' }, 'w'), 'a');
    assert.equal(canonicalServiceName({}, 'w'), 'w');
    assert.notEqual(defaultInstanceIp(), '');
  });
});
