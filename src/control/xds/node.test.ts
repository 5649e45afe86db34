import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeError, parseIstioNodeId, parseProxyNode } from './node.ts';

describe('parseProxyNode', () => {
  it('reads an Istio sidecar id and metadata', () => {
    const node = parseProxyNode({
      id: 'sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local',
      cluster: 'reviews.default',
      metadata: {
        NAME: 'reviews-v1-abc',
        NAMESPACE: 'default',
        LABELS: { app: 'reviews', version: 'v1' },
        SERVICE_ACCOUNT: 'bookinfo-reviews',
        WORKLOAD_NAME: 'reviews-v1',
        INSTANCE_IPS: '10.0.0.1, fd00::1',
        CLUSTER_ID: 'Kubernetes',
      },
      locality: { region: 'eu-west', zone: 'eu-west-1a', sub_zone: 'rack7' },
    });
    assert.deepEqual(node, {
      id: 'sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local',
      type: 'sidecar',
      name: 'reviews-v1-abc',
      namespace: 'default',
      dnsDomain: 'default.svc.cluster.local',
      ipAddresses: ['10.0.0.1', 'fd00::1'],
      labels: { app: 'reviews', version: 'v1' },
      serviceAccount: 'bookinfo-reviews',
      workloadName: 'reviews-v1',
      locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: 'rack7' },
      cluster: 'reviews.default',
      metadata: {
        NAME: 'reviews-v1-abc',
        NAMESPACE: 'default',
        LABELS: { app: 'reviews', version: 'v1' },
        SERVICE_ACCOUNT: 'bookinfo-reviews',
        WORKLOAD_NAME: 'reviews-v1',
        INSTANCE_IPS: '10.0.0.1, fd00::1',
        CLUSTER_ID: 'Kubernetes',
      },
    });
  });

  it('falls back to the id for name, namespace and IP when metadata is absent', () => {
    const node = parseProxyNode({
      id: 'router~10.1.2.3~ingress-gw-7d9.istio-system~istio-system.svc.cluster.local',
    });
    assert.equal(node.type, 'router');
    assert.equal(node.name, 'ingress-gw-7d9');
    assert.equal(node.namespace, 'istio-system');
    assert.deepEqual(node.ipAddresses, ['10.1.2.3']);
    assert.equal(node.workloadName, 'ingress-gw-7d9');
    assert.deepEqual(node.labels, {});
    assert.deepEqual(node.locality, { region: '', zone: '', subZone: '' });
    assert.equal(node.serviceAccount, '');
  });

  it('treats GENERATOR=grpc as proxyless even with an Istio-form id', () => {
    const node = parseProxyNode({
      id: 'sidecar~10.0.0.5~client-1.shop~shop.svc.cluster.local',
      metadata: { GENERATOR: 'grpc' },
    });
    assert.equal(node.type, 'grpc');
    assert.equal(node.name, 'client-1');
    assert.equal(node.namespace, 'shop');
  });

  it('treats an arbitrary id as a proxyless gRPC client', () => {
    const a = parseProxyNode({ id: 'my-grpc-client-42' });
    assert.equal(a.type, 'grpc');
    assert.equal(a.name, 'my-grpc-client-42');
    assert.equal(a.namespace, 'default');
    assert.equal(a.dnsDomain, 'default.svc.cluster.local');
    assert.deepEqual(a.ipAddresses, []);
    const b = parseProxyNode({ id: 'client~x', metadata: { NAMESPACE: 'payments' } });
    assert.equal(b.type, 'grpc');
    assert.equal(b.namespace, 'payments');
    // Four parts but not an IP, or not a known proxy type: not Istio's form.
    assert.equal(parseIstioNodeId('sidecar~not-an-ip~a.b~b.svc.cluster.local'), null);
    assert.equal(parseIstioNodeId('waypoint~10.0.0.1~a.b~b.svc.cluster.local'), null);
  });

  it('rejects a missing node, an empty id, and metadata of the wrong shape with the field named', () => {
    assert.throws(() => parseProxyNode(undefined), /must carry node/);
    assert.throws(() => parseProxyNode({ id: '' }), /node.id is empty/);
    assert.throws(
      () => parseProxyNode({ id: 'x', metadata: { LABELS: 'app=x' } }),
      /node.metadata.LABELS: expected an object/,
    );
    assert.throws(
      () => parseProxyNode({ id: 'x', metadata: { LABELS: { a: 1 } } }),
      /node.metadata.LABELS.a/,
    );
    assert.throws(() => parseProxyNode({ id: 'x', metadata: { NAMESPACE: 3 } }), /node.metadata.NAMESPACE/);
    assert.throws(() => parseProxyNode({ id: 'x', metadata: { INSTANCE_IPS: '10.0.0.1,bogus' } }), NodeError);
  });
});
