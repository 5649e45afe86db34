import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENVOY_DEFAULT_TAG_SPECIFIERS, TagExtractor, tokensToRegex } from './tags.ts';

const envoy = new TagExtractor(ENVOY_DEFAULT_TAG_SPECIFIERS);

function extract(name: string): [string, Record<string, string>] {
  const r = envoy.extract(name);
  return [r.name, Object.fromEntries(r.tags)];
}

void test('cluster stats: cluster name, response code and class', () => {
  assert.deepEqual(extract('cluster.foo.upstream_rq_total'), [
    'cluster.upstream_rq_total',
    { 'envoy.cluster_name': 'foo' },
  ]);
  assert.deepEqual(extract('cluster.foo.upstream_rq_200'), [
    'cluster.upstream_rq',
    { 'envoy.response_code': '200', 'envoy.cluster_name': 'foo' },
  ]);
  assert.deepEqual(extract('cluster.foo.upstream_rq_2xx'), [
    'cluster.upstream_rq_xx',
    { 'envoy.response_code_class': '2', 'envoy.cluster_name': 'foo' },
  ]);
  // Labels come out in specifier order: response code before cluster name, as Envoy prints them.
  assert.deepEqual(
    envoy.extract('cluster.foo.upstream_rq_503').tags.map((t) => t[0]),
    ['envoy.response_code', 'envoy.cluster_name'],
  );
});

void test('a four-digit suffix is not a response code; _rq_ must precede it', () => {
  assert.deepEqual(extract('cluster.foo.upstream_rq_2000'), [
    'cluster.upstream_rq_2000',
    { 'envoy.cluster_name': 'foo' },
  ]);
  assert.deepEqual(extract('cluster.foo.upstream_cx_200'), [
    'cluster.upstream_cx_200',
    { 'envoy.cluster_name': 'foo' },
  ]);
});

void test('Envoy default: only the first dot-free segment is the cluster name', () => {
  assert.deepEqual(extract('cluster.reviews.default.upstream_rq_total'), [
    'cluster.default.upstream_rq_total',
    { 'envoy.cluster_name': 'reviews' },
  ]);
});

void test('HTTP connection manager prefix, plain and listener-scoped', () => {
  assert.deepEqual(extract('http.ingress_http.downstream_rq_5xx'), [
    'http.downstream_rq_xx',
    { 'envoy.response_code_class': '5', 'envoy.http_conn_manager_prefix': 'ingress_http' },
  ]);
  assert.deepEqual(extract('http.ingress_http.downstream_cx_active'), [
    'http.downstream_cx_active',
    { 'envoy.http_conn_manager_prefix': 'ingress_http' },
  ]);
  assert.deepEqual(extract('listener.10.0.0.1_8080.http.inbound.downstream_rq_2xx'), [
    'listener.http.downstream_rq_xx',
    {
      'envoy.response_code_class': '2',
      'envoy.http_conn_manager_prefix': 'inbound',
      'envoy.listener_address': '10.0.0.1_8080',
    },
  ]);
});

void test('listener address: IPv4, IPv6, stat prefix, and admin is left alone', () => {
  assert.deepEqual(extract('listener.0.0.0.0_15001.downstream_cx_total'), [
    'listener.downstream_cx_total',
    { 'envoy.listener_address': '0.0.0.0_15001' },
  ]);
  assert.deepEqual(extract('listener.[__1]_15006.downstream_cx_total'), [
    'listener.downstream_cx_total',
    { 'envoy.listener_address': '[__1]_15006' },
  ]);
  assert.deepEqual(extract('listener.virtualOutbound.downstream_cx_total'), [
    'listener.downstream_cx_total',
    { 'envoy.listener_address': 'virtualOutbound' },
  ]);
  assert.deepEqual(extract('listener.admin.downstream_cx_total'), ['listener.admin.downstream_cx_total', {}]);
});

void test('other default families', () => {
  assert.deepEqual(extract('tcp.outbound_tcp.downstream_cx_total'), [
    'tcp.downstream_cx_total',
    { 'envoy.tcp_prefix': 'outbound_tcp' },
  ]);
  assert.deepEqual(extract('vhost.backend.vcluster.other.upstream_rq_200'), [
    'vhost.vcluster.upstream_rq',
    { 'envoy.response_code': '200', 'envoy.virtual_cluster': 'other', 'envoy.virtual_host': 'backend' },
  ]);
  assert.deepEqual(extract('http.ingress.rds.local.route.config.update_success'), [
    'http.rds.update_success',
    { 'envoy.http_conn_manager_prefix': 'ingress', 'envoy.rds_route_config': 'local.route.config' },
  ]);
  assert.deepEqual(extract('cluster.foo.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256'), [
    'cluster.ssl.ciphers',
    { cipher_suite: 'ECDHE-RSA-AES128-GCM-SHA256', 'envoy.cluster_name': 'foo' },
  ]);
  assert.deepEqual(extract('server.live'), ['server.live', {}]);
});

void test('tokenized patterns translate to anchored regexes', () => {
  assert.equal(tokensToRegex('cluster.$.**'), String.raw`^cluster\.(([^.]+)\.).*`);
  assert.equal(tokensToRegex('vhost.*.route.$.**'), String.raw`^vhost\.[^.]+\.route\.(([^.]+)\.).*`);
  assert.equal(tokensToRegex('a.**.b.$'), String.raw`^a\.(?:[^.]+\.)*b(\.([^.]+))$`);
  const last = new TagExtractor([{ name: 't', regex: tokensToRegex('a.**.b.$') }]);
  assert.deepEqual(last.extract('a.x.y.b.v'), { name: 'a.x.y.b', tags: [['t', 'v']] });
});

void test('custom specifiers: RE2 POSIX classes, single group, fixed values, first tag name wins', () => {
  const x = new TagExtractor([
    { name: 'cluster_name', regex: String.raw`^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)` },
    { name: 'port', regex: String.raw`\.port_([[:digit:]]+)$` },
    { name: 'mesh', fixedValue: 'weft' },
    { name: 'cluster_name', regex: String.raw`^(x)` },
  ]);
  assert.deepEqual(x.extract('cluster.outbound|80||reviews.default.svc.cluster.local.upstream_rq_total'), {
    name: 'cluster.upstream_rq_total',
    tags: [
      ['cluster_name', 'outbound|80||reviews.default.svc.cluster.local'],
      ['mesh', 'weft'],
    ],
  });
  // With a single group, that group is both the value and the text removed.
  assert.deepEqual(x.extract('server.port_80'), {
    name: 'server.port_',
    tags: [
      ['port', '80'],
      ['mesh', 'weft'],
    ],
  });
  assert.throws(() => new TagExtractor([{ name: 'bad', regex: '(' }]));
});

void test('mesh cluster names and address-bearing stat prefixes are taken whole', () => {
  assert.deepEqual(
    extract('cluster.outbound|9080|v1|reviews.default.svc.cluster.local.circuit_breakers.default.cx_open'),
    [
      'cluster.circuit_breakers.default.cx_open',
      { 'envoy.cluster_name': 'outbound|9080|v1|reviews.default.svc.cluster.local' },
    ],
  );
  assert.deepEqual(extract('cluster.inbound|9080||.upstream_rq_503'), [
    'cluster.upstream_rq',
    { 'envoy.response_code': '503', 'envoy.cluster_name': 'inbound|9080||' },
  ]);
  assert.deepEqual(extract('http.outbound_10.0.0.1_15001.downstream_rq_total'), [
    'http.downstream_rq_total',
    { 'envoy.http_conn_manager_prefix': 'outbound_10.0.0.1_15001' },
  ]);
  assert.deepEqual(extract('tcp.outbound_10.0.0.1_9000.downstream_cx_total'), [
    'tcp.downstream_cx_total',
    { 'envoy.tcp_prefix': 'outbound_10.0.0.1_9000' },
  ]);
  // A dotted name that is not a mesh service is still cut at its first dot, as Envoy does.
  assert.deepEqual(extract('cluster.api.example.com.upstream_cx_total')[1], { 'envoy.cluster_name': 'api' });
});
