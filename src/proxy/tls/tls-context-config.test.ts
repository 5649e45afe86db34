import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { compileTransportSocket } from './tls-context-config.ts';
import { compileSecret } from './secret-config.ts';
import {
  certificateFiles,
  CLIENT_ID,
  DOWNSTREAM_TLS_TYPE,
  makeTestPki,
  UPSTREAM_TLS_TYPE,
} from './testing.ts';
import type { TestPki } from './testing.ts';

const P = 'filter_chains[0].transport_socket';

function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('TLS transport socket config', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });

  const downstream = (ctx: Record<string, unknown>): Json => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': DOWNSTREAM_TLS_TYPE, ...ctx },
  });
  const upstream = (ctx: Record<string, unknown>): Json => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': UPSTREAM_TLS_TYPE, ...ctx },
  });

  it('compiles a DownstreamTlsContext with files, SAN matchers, ALPN and TLS params', () => {
    const c = compileTransportSocket(
      downstream({
        require_client_certificate: true,
        common_tls_context: {
          tls_certificates: [certificateFiles(pki.server)],
          validation_context: {
            trusted_ca: { filename: pki.caFile },
            match_typed_subject_alt_names: [
              { san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } },
            ],
          },
          alpn_protocols: ['h2', 'http/1.1'],
          tls_params: {
            tls_minimum_protocol_version: 'TLSv1_3',
            cipher_suites: ['ECDHE-ECDSA-AES128-GCM-SHA256'],
          },
        },
      }),
      P,
      'downstream',
    );
    assert.ok(c);
    assert.equal(c.requireClientCertificate, true);
    assert.equal(c.certificates[0].kind, 'static');
    assert.equal(c.certificates[0].kind === 'static' && c.certificates[0].origin, pki.server.certFile);
    assert.equal(c.validation?.trust.kind, 'static');
    assert.equal(c.validation?.sanMatchers[0].matcher.matches(CLIENT_ID), true);
    assert.deepEqual(c.alpnProtocols, ['h2', 'http/1.1']);
    assert.equal(c.minVersion, 'TLSv1.3');
    assert.equal(c.maxVersion, 'TLSv1.3');
    assert.match(c.ciphers ?? '', /TLS_AES_128_GCM_SHA256.*ECDHE-ECDSA-AES128-GCM-SHA256$/);
  });

  it('compiles an UpstreamTlsContext with SDS secrets and Envoy defaults', () => {
    const c = compileTransportSocket(
      upstream({
        sni: 'outbound_.80_._.svc',
        common_tls_context: {
          tls_certificate_sds_secret_configs: [
            {
              name: 'default',
              sds_config: {
                api_config_source: {
                  api_type: 'GRPC',
                  grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
                  transport_api_version: 'V3',
                },
                resource_api_version: 'V3',
              },
            },
          ],
          combined_validation_context: {
            default_validation_context: { match_subject_alt_names: [{ exact: CLIENT_ID }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
          },
        },
      }),
      'clusters[0].transport_socket',
      'upstream',
    );
    assert.ok(c);
    assert.deepEqual(c.certificates, [{ kind: 'sds', name: 'default', source: 'agent' }]);
    assert.deepEqual(c.validation?.trust, { kind: 'sds', name: 'ROOTCA', source: 'ads' });
    assert.equal(c.validation?.sanMatchers[0].sanType, undefined);
    assert.equal(c.sni, 'outbound_.80_._.svc');
    assert.equal(c.maxSessionKeys, 1);
    assert.equal(c.minVersion, 'TLSv1.2');
  });

  it('treats raw_buffer and no transport socket as plaintext', () => {
    assert.equal(compileTransportSocket(undefined, P, 'downstream'), undefined);
    assert.equal(
      compileTransportSocket({ name: 'envoy.transport_sockets.raw_buffer' }, P, 'downstream'),
      undefined,
    );
    assert.equal(
      compileTransportSocket(
        {
          name: 'x',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
          },
        },
        P,
        'upstream',
      ),
      undefined,
    );
  });

  it('names the field and the file when a file is missing', () => {
    rejects(
      () =>
        compileTransportSocket(
          downstream({
            common_tls_context: {
              tls_certificates: [
                {
                  certificate_chain: { filename: '/nonexistent/cert.pem' },
                  private_key: { filename: pki.server.keyFile },
                },
              ],
            },
          }),
          P,
          'downstream',
        ),
      `${P}.typed_config.common_tls_context.tls_certificates[0].certificate_chain.filename: cannot read "/nonexistent/cert.pem" (ENOENT)`,
    );
  });

  it('rejects an unknown san_type, unsupported SDS sources and unimplemented fields with their paths', () => {
    const vc = (v: Record<string, unknown>): Json =>
      downstream({
        common_tls_context: {
          tls_certificates: [certificateFiles(pki.server)],
          validation_context: { trusted_ca: { filename: pki.caFile }, ...v },
        },
      });
    rejects(
      () =>
        compileTransportSocket(
          vc({ match_typed_subject_alt_names: [{ san_type: 'OTHER_NAME', matcher: { exact: 'x' } }] }),
          P,
          'downstream',
        ),
      `${P}.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: unknown or unsupported value "OTHER_NAME"`,
    );
    rejects(
      () => compileTransportSocket(vc({ crl: { filename: pki.caFile } }), P, 'downstream'),
      `${P}.typed_config.common_tls_context.validation_context.crl: not supported by Weft`,
    );
    const sds = (sdsConfig: Record<string, unknown>): Json =>
      downstream({
        common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 's', sds_config: sdsConfig }] },
      });
    rejects(
      () => compileTransportSocket(sds({ path_config_source: { path: '/etc/sds.yaml' } }), P, 'downstream'),
      /tls_certificate_sds_secret_configs\[0\]\.sds_config\.path_config_source: not supported by Weft/,
    );
    rejects(
      () =>
        compileTransportSocket(
          sds({
            api_config_source: {
              api_type: 'GRPC',
              grpc_services: [{ envoy_grpc: { cluster_name: 'other-sds' } }],
            },
          }),
          P,
          'downstream',
        ),
      /sds_config\.api_config_source\.grpc_services\[0\]\.envoy_grpc\.cluster_name: "other-sds": not supported by Weft/,
    );
    rejects(
      () => compileTransportSocket(downstream({ common_tls_context: {} }), P, 'downstream'),
      `${P}.typed_config.common_tls_context: a server needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)`,
    );
    rejects(
      () => compileTransportSocket(upstream({ common_tls_context: {} }), P, 'downstream'),
      /@type: a downstream transport socket needs a .*DownstreamTlsContext/,
    );
    rejects(
      () =>
        compileTransportSocket(
          upstream({ common_tls_context: { tls_params: { tls_minimum_protocol_version: 'TLSv1_4' } } }),
          P,
          'upstream',
        ),
      `${P}.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version: unknown value "TLSv1_4"`,
    );
    rejects(
      () =>
        compileTransportSocket(
          upstream({
            common_tls_context: { validation_context: { match_subject_alt_names: [{ exact: 'a' }] } },
          }),
          P,
          'upstream',
        ),
      /validation_context\.trusted_ca: required/,
    );
    rejects(
      () =>
        compileTransportSocket(
          downstream({
            require_client_certificate: true,
            common_tls_context: { tls_certificates: [certificateFiles(pki.server)] },
          }),
          P,
          'downstream',
        ),
      /require_client_certificate: needs a validation context/,
    );
  });

  it('compiles static secrets', () => {
    const s = compileSecret(
      { name: 'ca', validation_context: { trusted_ca: { inline_string: pki.caPem } } },
      'static_resources.secrets[0]',
    );
    assert.deepEqual(s, { name: 'ca', value: { kind: 'validation_context', trustedCa: pki.caPem } });
    rejects(
      () =>
        compileSecret(
          {
            name: 'k',
            tls_certificate: {
              certificate_chain: { inline_string: 'nope' },
              private_key: { inline_string: pki.server.keyPem },
            },
          },
          's[0]',
        ),
      's[0].tls_certificate.certificate_chain: no PEM certificate in <inline>',
    );
  });
});
