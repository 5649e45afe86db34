import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { findMessageType, loadEnvoyTypes, typeNameOfUrl } from './descriptor.ts';

describe('Envoy type descriptor', () => {
  it('loads once and is cached', () => {
    assert.equal(loadEnvoyTypes(), loadEnvoyTypes());
  });

  it('has the bootstrap, the supported extensions, the xDS resources and ADS', () => {
    for (const name of [
      'envoy.config.bootstrap.v3.Bootstrap',
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
      'envoy.extensions.filters.http.router.v3.Router',
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      'envoy.config.endpoint.v3.ClusterLoadAssignment',
      'envoy.service.discovery.v3.DiscoveryRequest',
      'envoy.service.discovery.v3.DeltaDiscoveryResponse',
      'google.protobuf.Timestamp',
    ]) {
      assert.ok(findMessageType(name) !== undefined, name);
    }
    const ads = loadEnvoyTypes().lookup('envoy.service.discovery.v3.AggregatedDiscoveryService');
    assert.ok(ads instanceof protobuf.Service);
    assert.deepEqual(Object.keys(ads.methods).sort(), [
      'DeltaAggregatedResources',
      'StreamAggregatedResources',
    ]);
  });

  it('is pruned: no validation rules, no comments, no unreachable types', () => {
    assert.equal(findMessageType('validate.FieldRules')?.fullName, undefined);
    assert.equal(
      findMessageType('envoy.extensions.filters.network.redis_proxy.v3.RedisProxy')?.fullName,
      undefined,
    );
    const text = fs.readFileSync(new URL('../../api/envoy/descriptor.gen.json', import.meta.url), 'utf8');
    assert.ok(!text.includes('validate.rules'));
    assert.ok(!text.includes('"comment"'));
    // Roughly 100 KB today; a jump means the pruning broke.
    assert.ok(text.length < 400_000, `descriptor is ${text.length} bytes`);
  });

  it('keeps the deprecated marker on fields', () => {
    assert.equal(
      findMessageType('envoy.config.cluster.v3.Cluster')?.fields.use_tcp_for_dns_lookups.options?.deprecated,
      true,
    );
  });

  it('resolves only well-formed full names, from the root', () => {
    assert.equal(findMessageType('Bootstrap')?.fullName, undefined);
    assert.equal(findMessageType('.envoy.config.bootstrap.v3.Bootstrap')?.fullName, undefined);
    assert.equal(findMessageType('envoy..Bootstrap')?.fullName, undefined);
    assert.equal(findMessageType('')?.fullName, undefined);
    assert.equal(
      findMessageType('envoy.config.cluster.v3.Cluster.LbPolicy')?.fullName,
      undefined,
      'an enum is not a message',
    );
  });

  it('takes the type name after the last slash of a type URL', () => {
    assert.equal(typeNameOfUrl('type.googleapis.com/a.b.C'), 'a.b.C');
    assert.equal(typeNameOfUrl('example.com/x/y/a.b.C'), 'a.b.C');
    assert.equal(typeNameOfUrl('a.b.C'), 'a.b.C');
  });
});
