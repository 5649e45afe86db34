import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessage, encodeAny, encodeMessage } from '../../api/envoy/wire.ts';
import {
  deltaDiscoveryResponseBytes,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryResponse,
} from './response-codec.ts';
import { DELTA_DISCOVERY_RESPONSE, DISCOVERY_RESPONSE } from './service.ts';
import { testCluster, testEndpoints } from './testing.ts';

// Non-default values only: proto3 does not carry defaults (ROUND_ROBIN would come back absent).
const cluster = testCluster('outbound|80||web.shop.svc.cluster.local', { lb_policy: 'LEAST_REQUEST' });
const cla = testEndpoints('outbound|80||web.shop.svc.cluster.local', [
  { address: '10.0.0.1', port: 80, weight: 2 },
]);

describe('response codec', () => {
  it('writes a DiscoveryResponse the generic codec reads back identically', () => {
    const message = {
      version_info: 'abc',
      resources: [encodeAny(cluster), encodeAny(cla)],
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      nonce: '7',
      control_plane: { identifier: 'weft' },
    };
    const fast = encodeDiscoveryResponse(message);
    assert.deepEqual(decodeMessage(DISCOVERY_RESPONSE, fast), {
      version_info: 'abc',
      resources: [cluster, cla],
      type_url: message.type_url,
      nonce: '7',
      control_plane: { identifier: 'weft' },
    });
    // Same field order as protobufjs: the very same bytes.
    assert.deepEqual(Buffer.from(fast), Buffer.from(encodeMessage(DISCOVERY_RESPONSE, message)));
    // Empty strings and an empty list are simply absent, as proto3 encodes them.
    const empty = encodeDiscoveryResponse({ version_info: '', resources: [], type_url: '', nonce: '' });
    assert.equal(empty.length, 0);
  });

  it('writes a DeltaDiscoveryResponse with resources, versions and removed names', () => {
    const message = {
      system_version_info: 'v9',
      resources: [
        { name: 'outbound|80||web.shop.svc.cluster.local', version: 'h1', resource: encodeAny(cluster) },
        { name: 'x', version: 'h2', resource: encodeAny(cla) },
      ],
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      removed_resources: ['gone-1', 'gone-2'],
      nonce: '3',
      control_plane: { identifier: 'weft' },
    };
    assert.deepEqual(decodeMessage(DELTA_DISCOVERY_RESPONSE, encodeDeltaDiscoveryResponse(message)), {
      system_version_info: 'v9',
      resources: [
        { name: 'outbound|80||web.shop.svc.cluster.local', version: 'h1', resource: cluster },
        { name: 'x', version: 'h2', resource: cla },
      ],
      type_url: message.type_url,
      removed_resources: ['gone-1', 'gone-2'],
      nonce: '3',
      control_plane: { identifier: 'weft' },
    });
  });
  it('copies a response made of several blocks into a frame as one block, as Buffer.copy does for grpc-js', () => {
    const bytes = deltaDiscoveryResponseBytes({
      system_version_info: 'v1',
      resources: [{ name: 'a', version: 'h', resource: encodeAny(cluster) }],
      type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      removed_resources: ['gone'],
      nonce: '1',
    });
    const whole = bytes.concat();
    assert.equal(bytes.byteLength, whole.length);
    // grpc-js: output = allocUnsafe(byteLength + 5), prefix in 0..4, then message.copy(output, 5).
    const frame = Buffer.alloc(bytes.byteLength + 7, 0xee);
    assert.equal(bytes.copy(frame, 5), whole.length);
    assert.deepEqual(frame.subarray(0, 5), Buffer.alloc(5, 0xee));
    assert.deepEqual(frame.subarray(5, 5 + whole.length), whole);
    assert.deepEqual(frame.subarray(5 + whole.length), Buffer.alloc(2, 0xee));
    assert.equal(decodeMessage(DELTA_DISCOVERY_RESPONSE, whole).nonce, '1');
  });
});
