import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { findMessageType } from './descriptor.ts';
import { decodeAny, decodeMessage, encodeAny, encodeMessage, EncodedAny, WireError } from './wire.ts';

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const fixtures = [
  new URL('../../../examples/bootstrap/front-proxy.yaml', import.meta.url),
  new URL('../../../test/fixtures/bootstrap/http.yaml', import.meta.url),
  new URL('../../../test/fixtures/bootstrap/tcp-proxy.yaml', import.meta.url),
  new URL('../../../test/fixtures/bootstrap/camel-case.json', import.meta.url),
];

describe('Envoy wire codec', () => {
  for (const url of fixtures) {
    it(`round-trips ${url.pathname.split('/').slice(-2).join('/')} through protobuf bytes`, () => {
      const canonical = normalize(BOOTSTRAP, parse(fs.readFileSync(url, 'utf8')), '');
      const bytes = encodeMessage(BOOTSTRAP, canonical);
      assert.ok(bytes.length > 50);
      assert.deepEqual(decodeMessage(BOOTSTRAP, bytes), canonical);
    });
  }

  it('maps well-known types: durations, wrappers, Struct, Value, enums, 64-bit integers', () => {
    const cluster = normalize(
      'envoy.config.cluster.v3.Cluster',
      {
        name: 'c',
        type: 'STRICT_DNS',
        connect_timeout: '0.25s',
        per_connection_buffer_limit_bytes: 32768,
        lb_policy: 'RING_HASH',
        ring_hash_lb_config: { minimum_ring_size: 4096 },
        metadata: {
          filter_metadata: { istio: { labels: { app: 'a' }, weights: [1, 2.5], on: true, none: null } },
        },
        dns_refresh_rate: '-1.5s',
      },
      '',
    );
    const decoded = decodeMessage(
      'envoy.config.cluster.v3.Cluster',
      encodeMessage('envoy.config.cluster.v3.Cluster', cluster),
    );
    assert.deepEqual(decoded, cluster);
    assert.equal(decoded.connect_timeout, '0.25s');
    assert.equal(decoded.dns_refresh_rate, '-1.5s');
  });

  it('encodes a resource once as an Any and reuses it inside a DiscoveryResponse', () => {
    const resource = normalize(
      'google.protobuf.Any',
      {
        '@type': 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
        cluster_name: 'outbound|80||reviews.default.svc.cluster.local',
        endpoints: [
          {
            locality: { region: 'r1', zone: 'z1' },
            lb_endpoints: [
              {
                endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 9080 } } },
                load_balancing_weight: 3,
              },
            ],
          },
        ],
      },
      '',
    ) as { [key: string]: never };
    const any = encodeAny(resource);
    assert.ok(any instanceof EncodedAny);
    assert.equal(any.typeUrl, 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment');
    assert.deepEqual(decodeAny(any.typeUrl, any.value), resource);
    const response = encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
      version_info: '7',
      type_url: any.typeUrl,
      nonce: 'n1',
      resources: [any, any],
    });
    const back = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', response);
    assert.deepEqual(back, {
      version_info: '7',
      resources: [resource, resource],
      type_url: any.typeUrl,
      nonce: 'n1',
    });
  });

  it('carries a node with Istio metadata in a DiscoveryRequest', () => {
    const request = {
      node: {
        id: 'sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local',
        cluster: 'reviews.default',
        metadata: { NAME: 'reviews-v1', NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v1' } },
        locality: { region: 'eu', zone: 'eu-a' },
      },
      resource_names: ['a', 'b'],
      type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener',
      error_detail: { code: 3, message: 'bad listener' },
    };
    const bytes = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', request);
    assert.deepEqual(decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', bytes), request);
  });

  it('rejects malformed bytes and unknown Any types with a WireError, never another exception', () => {
    const garbage = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]);
    assert.throws(() => decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', garbage), WireError);
    const unknownAny = encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
      resources: [new EncodedAny('type.googleapis.com/not.a.Type', Uint8Array.of(1, 2))],
    });
    assert.throws(
      () => decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', unknownAny),
      /unsupported resource or extension type "type.googleapis.com\/not.a.Type"/,
    );
    assert.throws(
      () => encodeMessage('envoy.config.cluster.v3.Cluster', { nmae: 'x' }),
      /unknown field "nmae"/,
    );
    assert.throws(
      () => encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'x', lb_policy: 'ROUND_ROBINN' }),
      /lb_policy: unknown value "ROUND_ROBINN" for LbPolicy/,
    );
    assert.ok(findMessageType('envoy.service.discovery.v3.DeltaDiscoveryRequest'));
  });

  it('survives random bytes: decodes or throws WireError', () => {
    let seed = 42;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: 1 + (i % 64) }, rand);
      try {
        decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', bytes);
      } catch (err) {
        assert.ok(err instanceof WireError, String(err));
      }
    }
  });
});
