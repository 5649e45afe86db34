import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import { normalize } from './normalize.ts';

const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Asserts that normalizing throws a ConfigError with exactly this message. */
function rejects(typeName: string, value: unknown, path: string, message: string): void {
  assert.throws(
    () => normalize(typeName, value, path),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('normalize: field names', () => {
  it('accepts proto and JSON names and outputs proto names in declaration order', () => {
    const out = normalize(CLUSTER, { lbPolicy: 'RANDOM', name: 'a', connect_timeout: '1s' }, '');
    assert.deepEqual(out, { name: 'a', connect_timeout: '1s', lb_policy: 'RANDOM' });
    assert.deepEqual(Object.keys(out as object), ['name', 'connect_timeout', 'lb_policy']);
  });

  it('rejects an unknown field with its path and a suggestion', () => {
    rejects(
      CLUSTER,
      { name: 'a', lb_polcy: 'RANDOM' },
      'static_resources.clusters[0]',
      'static_resources.clusters[0].lb_polcy: unknown field "lb_polcy" (did you mean "lb_policy"?)',
    );
    rejects(
      CLUSTER,
      { lbPolcy: 'RANDOM' },
      'c',
      'c.lbPolcy: unknown field "lbPolcy" (did you mean "lb_policy"?)',
    );
  });

  it('suggests nothing for a name far from every field', () => {
    rejects(CLUSTER, { zzzzzzzzzzzz: 1 }, 'c', 'c.zzzzzzzzzzzz: unknown field "zzzzzzzzzzzz"');
  });

  it('rejects a field given under both names', () => {
    rejects(
      CLUSTER,
      { lb_policy: 'RANDOM', lbPolicy: 'RANDOM' },
      'c',
      'c.lbPolicy: field set twice (as "lb_policy" and "lbPolicy")',
    );
  });

  it('names the root path when the path is empty', () => {
    rejects(BOOTSTRAP, { nodes: {} }, '', 'nodes: unknown field "nodes" (did you mean "node"?)');
  });

  it('treats null as "not set"', () => {
    assert.deepEqual(normalize(CLUSTER, { name: 'a', lb_policy: null, load_assignment: null }, ''), {
      name: 'a',
    });
  });

  it('drops default values of fields without presence, as proto3 does', () => {
    const out = normalize(
      CLUSTER,
      {
        name: '',
        respect_dns_ttl: false,
        lb_policy: 'ROUND_ROBIN',
        dns_refresh_rate: '0s',
        health_checks: [],
        typed_extension_protocol_options: {},
        per_connection_buffer_limit_bytes: 0,
      },
      '',
    );
    // Messages and wrappers keep presence: "0s" and a UInt32Value of 0 are values, not "unset".
    assert.deepEqual(out, { per_connection_buffer_limit_bytes: 0, dns_refresh_rate: '0s' });
  });

  it('keeps default values of oneof members, which have presence', () => {
    assert.deepEqual(normalize('envoy.config.core.v3.SocketAddress', { address: '::', port_value: 0 }, ''), {
      address: '::',
      port_value: 0,
    });
    assert.deepEqual(normalize(CLUSTER, { type: 'STATIC' }, ''), { type: 'STATIC' });
  });

  it('accepts deprecated fields', () => {
    // Cluster.use_tcp_for_dns_lookups is deprecated in v3 but still part of the API.
    assert.deepEqual(normalize(CLUSTER, { use_tcp_for_dns_lookups: true }, ''), {
      use_tcp_for_dns_lookups: true,
    });
  });
});

describe('normalize: scalars', () => {
  it('reports the expected JSON type', () => {
    rejects(CLUSTER, { name: 5 }, 'c', 'c.name: expected a string, got 5');
    rejects(CLUSTER, { respect_dns_ttl: 'yes' }, 'c', 'c.respect_dns_ttl: expected true or false, got "yes"');
    rejects(CLUSTER, { load_assignment: [] }, 'c', 'c.load_assignment: expected an object, got an array');
    rejects(CLUSTER, { name: { a: 1 } }, 'c', 'c.name: expected a string, got an object');
  });

  it('accepts 32-bit integers as numbers or numeric strings and range-checks them', () => {
    const sa = 'envoy.config.core.v3.SocketAddress';
    assert.deepEqual(normalize(sa, { address: '::1', port_value: '8080' }, ''), {
      address: '::1',
      port_value: 8080,
    });
    rejects(sa, { port_value: -1 }, 'a', 'a.port_value: -1 is out of range for uint32 (0..4294967295)');
    rejects(sa, { port_value: 1.5 }, 'a', 'a.port_value: expected an integer (uint32), got 1.5');
    rejects(sa, { port_value: '12a' }, 'a', 'a.port_value: expected an integer (uint32), got "12a"');
  });

  it('turns 64-bit integers given as strings into numbers', () => {
    const out = normalize(
      CLUSTER,
      { circuit_breakers: { thresholds: [{ max_connections: '100' }] }, dns_refresh_rate: '5s' },
      '',
    );
    assert.deepEqual(out, {
      dns_refresh_rate: '5s',
      circuit_breakers: { thresholds: [{ max_connections: 100 }] },
    });
    const bs = normalize(BOOTSTRAP, { stats_flush_interval: '5s', node: { id: 'n' } }, '');
    assert.deepEqual(bs, { node: { id: 'n' }, stats_flush_interval: '5s' });
    // HttpConnectionManager has no int64; Cluster.CommonLbConfig.ConsistentHashingLbConfig.hash_balance_factor is uint32,
    // RingHashLbConfig.minimum_ring_size is a UInt64Value wrapper.
    assert.deepEqual(normalize(CLUSTER, { ring_hash_lb_config: { minimum_ring_size: '1024' } }, ''), {
      ring_hash_lb_config: { minimum_ring_size: 1024 },
    });
    rejects(
      CLUSTER,
      { ring_hash_lb_config: { minimum_ring_size: '18446744073709551615' } },
      'c',
      'c.ring_hash_lb_config.minimum_ring_size: 18446744073709552000 is out of range for uint64 (0..9007199254740991)',
    );
  });

  it('accepts doubles as numbers or numeric strings', () => {
    const out = normalize(CLUSTER, { common_lb_config: { healthy_panic_threshold: { value: '12.5' } } }, '');
    assert.deepEqual(out, { common_lb_config: { healthy_panic_threshold: { value: 12.5 } } });
    rejects(
      CLUSTER,
      { common_lb_config: { healthy_panic_threshold: { value: 'x' } } },
      'c',
      'c.common_lb_config.healthy_panic_threshold.value: expected a number, got "x"',
    );
  });

  it('checks bytes are base64', () => {
    const t = 'envoy.config.core.v3.DataSource';
    assert.deepEqual(normalize(t, { inline_bytes: 'aGVsbG8=' }, ''), { inline_bytes: 'aGVsbG8=' });
    rejects(
      t,
      { inline_bytes: 'not base64!' },
      'd',
      'd.inline_bytes: expected base64-encoded bytes, got "not base64!"',
    );
  });
});

describe('normalize: enums', () => {
  it('accepts names and numbers and outputs names', () => {
    assert.deepEqual(normalize(CLUSTER, { lb_policy: 'MAGLEV' }, ''), { lb_policy: 'MAGLEV' });
    assert.deepEqual(normalize(CLUSTER, { lb_policy: 1 }, ''), { lb_policy: 'LEAST_REQUEST' });
  });

  it('rejects unknown names and numbers exactly', () => {
    rejects(
      CLUSTER,
      { lb_policy: 'ROUND_ROBINN' },
      'static_resources.clusters[1]',
      'static_resources.clusters[1].lb_policy: unknown value "ROUND_ROBINN"',
    );
    rejects(CLUSTER, { lb_policy: 99 }, 'c', 'c.lb_policy: unknown value 99');
    rejects(CLUSTER, { lb_policy: true }, 'c', 'c.lb_policy: expected an enum value name, got true');
  });
});

describe('normalize: well-known types', () => {
  it('validates Duration strings', () => {
    assert.deepEqual(normalize(CLUSTER, { connect_timeout: '0.250s' }, ''), { connect_timeout: '0.250s' });
    rejects(
      CLUSTER,
      { connect_timeout: '5' },
      'c',
      'c.connect_timeout: invalid duration "5" (expected e.g. "1.5s")',
    );
    rejects(
      CLUSTER,
      { connect_timeout: '5ms' },
      'c',
      'c.connect_timeout: invalid duration "5ms" (expected e.g. "1.5s")',
    );
    rejects(
      CLUSTER,
      { connect_timeout: 5 },
      'c',
      'c.connect_timeout: expected a duration string like "1.5s", got 5',
    );
    rejects(
      CLUSTER,
      { connect_timeout: '999999999999s' },
      'c',
      'c.connect_timeout: duration 999999999999s is out of range',
    );
  });

  it('takes wrapper types as plain values', () => {
    const out = normalize(CLUSTER, { per_connection_buffer_limit_bytes: 1024, respect_dns_ttl: true }, '');
    assert.deepEqual(out, { per_connection_buffer_limit_bytes: 1024, respect_dns_ttl: true });
    rejects(
      CLUSTER,
      { per_connection_buffer_limit_bytes: { value: 1 } },
      'c',
      'c.per_connection_buffer_limit_bytes: expected an integer (uint32), got an object',
    );
  });

  it('copies Struct values as any JSON', () => {
    const metadata = { filter_metadata: { 'envoy.lb': { canary: true, list: [1, 'two', null, { x: {} }] } } };
    assert.deepEqual(normalize('envoy.config.core.v3.Metadata', metadata, ''), metadata);
    rejects(
      'envoy.config.core.v3.Metadata',
      { filter_metadata: { 'envoy.lb': 'x' } },
      'm',
      'm.filter_metadata["envoy.lb"]: expected an object, got "x"',
    );
  });

  it('keeps "__proto__" in a Struct an ordinary key', () => {
    const value = JSON.parse('{"id":"n","metadata":{"__proto__":{"polluted":1}}}') as unknown;
    const out = normalize('envoy.config.core.v3.Node', value, '') as { metadata: Record<string, unknown> };
    assert.ok(Object.hasOwn(out.metadata, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(out.metadata), Object.prototype);
  });

  it('resolves Any by @type, canonicalizes the URL and normalizes the fields', () => {
    const out = normalize(
      CLUSTER,
      {
        typedExtensionProtocolOptions: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'example.com/x/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: '10' } },
          },
        },
      },
      '',
    );
    assert.deepEqual(out, {
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 10 } },
        },
      },
    });
  });

  it('rejects an Any of an unknown type, without @type, or with bad inner fields', () => {
    const filter = 'envoy.config.listener.v3.Filter';
    rejects(
      filter,
      {
        name: 'x',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
        },
      },
      'f',
      'f.typed_config: unsupported extension type "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"',
    );
    rejects(
      filter,
      { typed_config: { stat_prefix: 'x' } },
      'f',
      'f.typed_config: missing "@type" (e.g. "type.googleapis.com/<message name>")',
    );
    rejects(
      filter,
      { typed_config: { '@type': `type.googleapis.com/${HCM}`, statPrefix: 1 } },
      'f',
      'f.typed_config.stat_prefix: expected a string, got 1',
    );
    rejects(
      filter,
      { typed_config: { '@type': `type.googleapis.com/${HCM}`, bogus: 1 } },
      'f',
      'f.typed_config.bogus: unknown field "bogus"',
    );
    rejects(
      filter,
      { typed_config: { '@type': 'type.googleapis.com/..x' } },
      'f',
      'f.typed_config: unsupported extension type "type.googleapis.com/..x"',
    );
  });

  it('uses the "value" form for well-known types inside Any', () => {
    const filter = 'envoy.config.listener.v3.Filter';
    const out = normalize(
      filter,
      { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' } },
      '',
    );
    assert.deepEqual(out, {
      name: 'x',
      typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' },
    });
    rejects(
      filter,
      { typed_config: { '@type': 'type.googleapis.com/google.protobuf.Duration', seconds: 1 } },
      'f',
      'f.typed_config.seconds: unknown field "seconds"',
    );
  });
});

describe('normalize: repeated, maps and oneofs', () => {
  it('requires arrays for repeated fields and names the element path', () => {
    rejects(
      BOOTSTRAP,
      { static_resources: { clusters: { name: 'a' } } },
      '',
      'static_resources.clusters: expected an array, got an object',
    );
    rejects(
      BOOTSTRAP,
      { static_resources: { clusters: [{ name: 'a' }, { name: 'b', lb_policy: 'ROUND_ROBINN' }] } },
      '',
      'static_resources.clusters[1].lb_policy: unknown value "ROUND_ROBINN"',
    );
    rejects(
      BOOTSTRAP,
      { static_resources: { clusters: [null] } },
      '',
      'static_resources.clusters[0]: expected an object, got null',
    );
  });

  it('normalizes map values and keeps the keys', () => {
    const vh = 'envoy.config.route.v3.VirtualHost';
    const out = normalize(
      vh,
      {
        name: 'v',
        domains: ['*'],
        typedPerFilterConfig: {
          'envoy.filters.http.router': {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
            suppressEnvoyHeaders: true,
          },
        },
      },
      '',
    );
    assert.deepEqual(out, {
      name: 'v',
      domains: ['*'],
      typed_per_filter_config: {
        'envoy.filters.http.router': {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
          suppress_envoy_headers: true,
        },
      },
    });
    rejects(
      vh,
      { typed_per_filter_config: [] },
      'v',
      'v.typed_per_filter_config: expected an object (map), got an array',
    );
  });

  it('rejects two members of one oneof', () => {
    rejects(
      CLUSTER,
      { type: 'STATIC', cluster_type: { name: 'x' } },
      'c',
      'c.cluster_type: conflicts with "type": only one field of oneof "cluster_discovery_type" may be set',
    );
    rejects(
      'envoy.config.core.v3.SocketAddress',
      { port_value: 1, named_port: 'http' },
      'a',
      'a.named_port: conflicts with "port_value": only one field of oneof "port_specifier" may be set',
    );
  });

  it('lets a oneof member be null without counting it as set', () => {
    assert.deepEqual(
      normalize('envoy.config.core.v3.SocketAddress', { port_value: null, named_port: 'http' }, ''),
      { named_port: 'http' },
    );
  });
});

describe('normalize: hostile input', () => {
  it('stops at cyclic structures with a ConfigError', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.a = [cyclic];
    assert.throws(() => normalize('envoy.config.core.v3.Node', { metadata: cyclic }, ''), ConfigError);
  });

  it('refuses non-JSON values', () => {
    rejects(
      'envoy.config.core.v3.Node',
      { metadata: { a: new Date(0) } },
      '',
      'metadata.a: expected a JSON value, got an object',
    );
    rejects(
      'envoy.config.core.v3.Node',
      { metadata: { a: Number.NaN } },
      '',
      'metadata.a: expected a finite number, got NaN',
    );
    rejects('envoy.config.core.v3.Node', { id: undefined }, '', 'id: expected a string, got undefined');
  });

  it('throws a plain Error for a type the descriptor lacks (a programming error, not a config error)', () => {
    assert.throws(
      () => normalize('no.such.Type', {}, ''),
      (err: unknown) => err instanceof Error && !(err instanceof ConfigError),
    );
  });
});
