import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import { compileBootstrap } from '../bootstrap/compile.ts';
import { certificateFiles, downstreamTransportSocket, makeTestPki } from './testing.ts';
import type { TestPki } from './testing.ts';

function listener(sdsConfig?: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        transport_socket: downstreamTransportSocket({
          common_tls_context: {
            tls_certificate_sds_secret_configs: [
              { name: 'cert', ...(sdsConfig ? { sds_config: sdsConfig } : {}) },
            ],
          },
        }),
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
              stat_prefix: 't',
              cluster: 'c',
            },
          },
        ],
      },
    ],
  };
}

const cluster = { name: 'c', type: 'STATIC', load_assignment: { cluster_name: 'c', endpoints: [] } };

describe('secrets in the bootstrap', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });

  it('registers static secrets and accepts references to them', () => {
    const b = compileBootstrap(
      {
        static_resources: {
          listeners: [listener()],
          clusters: [cluster],
          secrets: [{ name: 'cert', tls_certificate: certificateFiles(pki.server) }],
        },
      },
      'test',
    );
    assert.equal(b.secrets?.[0].name, 'cert');
    assert.equal(b.secrets?.[0].value.kind, 'tls_certificate');
  });

  it('refuses an unknown static secret and SDS over ads without an ADS stream', () => {
    assert.throws(
      () => compileBootstrap({ static_resources: { listeners: [listener()], clusters: [cluster] } }, 'test'),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message ===
          'static_resources.listeners[0].filter_chains[0].transport_socket: unknown static secret "cert" (not in static_resources.secrets; set sds_config for SDS)',
    );
    assert.throws(
      () =>
        compileBootstrap(
          { static_resources: { listeners: [listener({ ads: {} })], clusters: [cluster] } },
          'test',
        ),
      /secret "cert" comes from SDS over ads, which needs dynamic_resources.ads_config/,
    );
    assert.throws(
      () =>
        compileBootstrap(
          {
            static_resources: {
              secrets: [
                { name: 'x', validation_context: { trusted_ca: { filename: pki.caFile } } },
                { name: 'x', validation_context: { trusted_ca: { filename: pki.caFile } } },
              ],
            },
          },
          'test',
        ),
      /static_resources.secrets\[1\].name: duplicate secret name "x"/,
    );
  });
});
