import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamTransport } from '../tls/upstream.ts';
import {
  computeClusterService,
  hostOfAuthority,
  peerCanonicalRevision,
  peerCanonicalService,
  pinnedUpstreamPrincipal,
} from './labels.ts';
import { peerFromNodeMetadata } from './peer-headers.ts';

function transport(matchers: unknown[] | undefined): UpstreamTransport {
  return {
    tls: matchers === undefined ? undefined : { validation: { sanMatchers: matchers } },
  } as unknown as UpstreamTransport;
}
const exact = (text: string, sanType = 'URI', ignoreCase = false): unknown => ({
  sanType,
  matcher: { kind: 'exact', text, ignoreCase },
});

describe('label helpers', () => {
  it('pins the upstream principal only when one exact URI SAN is accepted', () => {
    assert.equal(
      pinnedUpstreamPrincipal(transport([exact('spiffe://td/ns/a/sa/b')])),
      'spiffe://td/ns/a/sa/b',
    );
    assert.equal(pinnedUpstreamPrincipal(transport(undefined)), null);
    assert.equal(pinnedUpstreamPrincipal(transport([])), null);
    assert.equal(pinnedUpstreamPrincipal(transport([exact('spiffe://a'), exact('spiffe://b')])), null);
    assert.equal(pinnedUpstreamPrincipal(transport([exact('x.example', 'DNS')])), null);
    assert.equal(
      pinnedUpstreamPrincipal(
        transport([{ sanType: 'URI', matcher: { kind: 'prefix', text: 'spiffe://' } }]),
      ),
      null,
    );
  });

  it('derives the destination service from metadata, then an outbound cluster name', () => {
    assert.deepEqual(computeClusterService('x', { host: 'a.b.svc.cluster.local', name: '', namespace: '' }), {
      host: 'a.b.svc.cluster.local',
      name: 'a',
      namespace: 'b',
    });
    assert.deepEqual(computeClusterService('outbound|80|v1|api.example.com', undefined), {
      host: 'api.example.com',
      name: 'api.example.com',
      namespace: 'unknown',
    });
    assert.equal(computeClusterService('inbound|80||', undefined), null);
    assert.equal(computeClusterService('plain', undefined), null);
  });

  it('strips the port from an authority', () => {
    assert.equal(hostOfAuthority('a.b:8080'), 'a.b');
    assert.equal(hostOfAuthority('a.b'), 'a.b');
    assert.equal(hostOfAuthority('[::1]:80'), '[::1]');
  });

  it("defaults the canonical service and revision as Istio's injector does", () => {
    assert.equal(peerCanonicalService(undefined), 'unknown');
    assert.equal(peerCanonicalRevision(undefined), 'unknown');
    const byApp = peerFromNodeMetadata({
      WORKLOAD_NAME: 'w',
      LABELS: { app: 'shop', 'app.kubernetes.io/version': '2' },
    });
    assert.equal(peerCanonicalService(byApp), 'shop');
    assert.equal(peerCanonicalRevision(byApp), '2');
    const bare = peerFromNodeMetadata({ WORKLOAD_NAME: 'w' });
    assert.equal(peerCanonicalService(bare), 'w');
    assert.equal(peerCanonicalRevision(bare), 'latest');
  });
});
