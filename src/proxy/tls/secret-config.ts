/**
 * envoy.extensions.transport_sockets.tls.v3.Secret: a named certificate with its key, or a trust bundle.
 * Used for the bootstrap's static_resources.secrets (and by SDS, whose resources have the same shape).
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, onlyFields, optObject, requiredString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { compileDataSource } from './data-source.ts';
import type { SecretValue } from './secrets.ts';

export function compileSecret(json: Json | undefined, path: string): { name: string; value: SecretValue } {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['name', 'tls_certificate', 'validation_context'], {
    session_ticket_keys: 'not supported by Weft',
    generic_secret: 'not supported by Weft',
  });
  const name = requiredString(obj, 'name', path);
  const cert = optObject(obj, 'tls_certificate', path);
  const validation = optObject(obj, 'validation_context', path);
  if (cert !== undefined && validation !== undefined)
    throw new ConfigError(path, 'set either tls_certificate or validation_context');
  if (cert !== undefined) {
    const p = fieldPath(path, 'tls_certificate');
    const c = compileCertificate(cert, p);
    return {
      name,
      value: { kind: 'tls_certificate', certificateChain: c.chain.text, privateKey: c.key.text },
    };
  }
  if (validation !== undefined) {
    const p = fieldPath(path, 'validation_context');
    onlyFields(validation, p, ['trusted_ca']);
    const ca = compileDataSource(validation.trusted_ca, fieldPath(p, 'trusted_ca'));
    return { name, value: { kind: 'validation_context', trustedCa: ca.text } };
  }
  throw new ConfigError(path, 'tls_certificate or validation_context is required');
}

/** envoy.extensions.transport_sockets.tls.v3.TlsCertificate (PEM chain and key). */
export function compileCertificate(
  obj: Record<string, Json>,
  path: string,
): { chain: ReturnType<typeof compileDataSource>; key: ReturnType<typeof compileDataSource> } {
  onlyFields(obj, path, ['certificate_chain', 'private_key'], {
    password: 'encrypted private keys are not supported by Weft',
    private_key_provider: 'not supported by Weft',
    pkcs12: 'not supported by Weft (use certificate_chain and private_key)',
    ocsp_staple: 'not supported by Weft',
    signed_certificate_timestamp: 'not supported by Weft',
    watched_directory: 'not supported by Weft',
  });
  const chain = compileDataSource(obj.certificate_chain, fieldPath(path, 'certificate_chain'));
  const key = compileDataSource(obj.private_key, fieldPath(path, 'private_key'));
  if (!chain.text.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(fieldPath(path, 'certificate_chain'), `no PEM certificate in ${chain.origin}`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.text))
    throw new ConfigError(fieldPath(path, 'private_key'), `no PEM private key in ${key.origin}`);
  return { chain, key };
}
