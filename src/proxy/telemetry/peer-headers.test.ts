import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeInfo } from '../bootstrap/types.ts';
import { decodePeerHeader, ownPeerHeaders, peerFromNodeMetadata } from './peer-headers.ts';
import { peerFromPrincipal, peerFromWorkloadMetadata, peerWithPrincipal } from './peer-metadata.ts';
import { encodeStruct } from './proto-struct.ts';

const NODE: NodeInfo = {
  id: 'sidecar~10.0.0.1~echo-v1-abc.default~default.svc.cluster.local',
  cluster: 'echo.default',
  locality: undefined,
  metadata: {
    NAME: 'echo-v1-abc',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'echo-v1',
    CLUSTER_ID: 'Kubernetes',
    MESH_ID: 'cluster.local',
    SERVICE_ACCOUNT: 'echo',
    LABELS: { app: 'echo', version: 'v1' },
    // Not one of the exchanged keys: stays private.
    ISTIO_VERSION: '1.22.0',
  },
};

describe('peer metadata headers', () => {
  it('encodes our node once and decodes it back to the same frozen peer', () => {
    const own = ownPeerHeaders(NODE);
    assert.equal(ownPeerHeaders(NODE), own, 'encoded once per node');
    assert.equal(own.id, NODE.id);
    const peer = decodePeerHeader(own.metadata);
    assert.deepEqual(peer, {
      workload: 'echo-v1',
      namespace: 'default',
      labels: { app: 'echo', version: 'v1' },
      cluster: 'Kubernetes',
      serviceAccount: 'echo',
      meshId: 'cluster.local',
    });
    assert.ok(Object.isFrozen(peer));
    assert.equal(decodePeerHeader(own.metadata), peer, 'a repeated header is a cache hit');
    assert.doesNotMatch(Buffer.from(own.metadata, 'base64').toString('latin1'), /ISTIO_VERSION/);
  });

  it('treats hostile values as absent', () => {
    const huge = encodeStruct({ WORKLOAD_NAME: 'x'.repeat(20_000) }).toString('base64');
    const wrongTypes = encodeStruct({ WORKLOAD_NAME: 42, NAMESPACE: ['a'], LABELS: 'not-a-struct' }).toString(
      'base64',
    );
    for (const bad of [
      '',
      '!!!not base64!!!',
      'AAAA',
      '/////w==',
      huge,
      Buffer.from([0x0a, 0x7f]).toString('base64'),
    ]) {
      assert.equal(decodePeerHeader(bad), undefined, JSON.stringify(bad.slice(0, 40)));
    }
    // Well-formed but with the wrong types: a peer with nothing known.
    assert.deepEqual(decodePeerHeader(wrongTypes), {});
  });

  it('keeps only string labels', () => {
    const peer = peerFromNodeMetadata({ LABELS: { app: 'a', n: 3, nested: { x: 'y' } } });
    assert.deepEqual(peer.labels, { app: 'a' });
  });
});

describe('peer discovery from endpoint metadata and identities', () => {
  it("parses Istio's workload string", () => {
    const peer = peerFromWorkloadMetadata('reviews-v2;bookinfo;reviews;v2;Kubernetes');
    assert.deepEqual(peer, {
      workload: 'reviews-v2',
      namespace: 'bookinfo',
      labels: {
        app: 'reviews',
        'service.istio.io/canonical-name': 'reviews',
        version: 'v2',
        'service.istio.io/canonical-revision': 'v2',
      },
      cluster: 'Kubernetes',
    });
    assert.equal(peerFromWorkloadMetadata('reviews-v2;bookinfo;reviews;v2;Kubernetes'), peer);
    assert.equal(peerFromWorkloadMetadata('only;three;parts'), undefined);
  });

  it('reads namespace and service account from a SPIFFE ID', () => {
    assert.deepEqual(peerFromPrincipal('spiffe://cluster.local/ns/shop/sa/cart'), {
      namespace: 'shop',
      principal: 'spiffe://cluster.local/ns/shop/sa/cart',
      serviceAccount: 'cart',
    });
    assert.deepEqual(peerFromPrincipal('spiffe://td/other'), { principal: 'spiffe://td/other' });
  });

  it('adds a verified principal to a peer, once per pair', () => {
    const peer = peerFromNodeMetadata({ WORKLOAD_NAME: 'w' });
    const a = peerWithPrincipal(peer, 'spiffe://td/ns/n/sa/s');
    assert.equal(a.workload, 'w');
    assert.equal(a.principal, 'spiffe://td/ns/n/sa/s');
    assert.equal(peerWithPrincipal(peer, 'spiffe://td/ns/n/sa/s'), a);
    assert.equal(peerWithPrincipal(a, 'spiffe://td/ns/n/sa/s'), a);
  });
});
