/**
 * The TLS transport socket (`envoy.transport_sockets.tls`): DownstreamTlsContext for filter chains and
 * UpstreamTlsContext for clusters, compiled into plain, immutable settings. Certificates named inline or by
 * file are loaded here; those named by SDS are resolved at runtime through the SecretManager.
 */
import tls from 'node:tls';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { typeNameOfUrl } from '../../api/envoy/descriptor.ts';
import {
  asObject,
  durationMs,
  intInRange,
  objectItems,
  onlyFields,
  optBool,
  optObject,
  optString,
  stringItems,
} from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { compileStringMatcher } from '../router/string-matcher.ts';
import type { StringMatcher } from '../router/string-matcher.ts';
import { compileDataSource } from './data-source.ts';
import { compileSdsSecretConfig } from './sds-config.ts';
import type { SecretRef } from './sds-config.ts';
import { compileCertificate } from './secret-config.ts';

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_TRANSPORT_SOCKET = 'envoy.transport_sockets.raw_buffer';
const DOWNSTREAM_TYPE = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TYPE = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW_BUFFER_TYPE = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export type SanType = 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS';

export interface SanMatcher {
  /** undefined: the deprecated match_subject_alt_names, which tries every SAN type. */
  readonly sanType: SanType | undefined;
  readonly matcher: StringMatcher;
  /** The matcher as configured: part of the context's identity (a compiled regex does not serialize). */
  readonly spec: string;
}

/** A certificate with its key: loaded from the config, or a named secret. */
export type CertificateProvider =
  | {
      readonly kind: 'static';
      readonly certificateChain: string;
      readonly privateKey: string;
      readonly origin: string;
    }
  | ({ readonly kind: 'sds' } & SecretRef);

/** The trusted roots: loaded from the config, or a named validation_context secret. */
export type TrustProvider =
  | { readonly kind: 'static'; readonly trustedCa: string; readonly origin: string }
  | ({ readonly kind: 'sds' } & SecretRef);

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface CommonTlsConfig {
  readonly certificates: readonly CertificateProvider[];
  /** Peer verification; absent means the peer's certificate is not verified (Envoy's behaviour). */
  readonly validation:
    { readonly trust: TrustProvider; readonly sanMatchers: readonly SanMatcher[] } | undefined;
  readonly alpnProtocols: readonly string[];
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** OpenSSL cipher list, when cipher_suites is set. */
  readonly ciphers: string | undefined;
  /** OpenSSL curve list, when ecdh_curves is set. */
  readonly ecdhCurves: string | undefined;
}

export interface DownstreamTlsConfig extends CommonTlsConfig {
  readonly side: 'downstream';
  readonly requireClientCertificate: boolean;
  /** session_timeout in seconds, when set. */
  readonly sessionTimeoutSeconds: number | undefined;
}

export interface UpstreamTlsConfig extends CommonTlsConfig {
  readonly side: 'upstream';
  /** Empty: no SNI. */
  readonly sni: string;
  /** How many TLS sessions to keep per host for resumption (0 disables); Envoy's default is 1. */
  readonly maxSessionKeys: number;
}

export type TlsContextConfig = DownstreamTlsConfig | UpstreamTlsConfig;

/**
 * A filter chain's or cluster's transport_socket: the TLS settings, or undefined for plaintext
 * (raw_buffer, or no transport_socket at all).
 */
export function compileTransportSocket(
  json: Json | undefined,
  path: string,
  side: 'downstream',
): DownstreamTlsConfig | undefined;
export function compileTransportSocket(
  json: Json | undefined,
  path: string,
  side: 'upstream',
): UpstreamTlsConfig | undefined;
export function compileTransportSocket(
  json: Json | undefined,
  path: string,
  side: 'downstream' | 'upstream',
): TlsContextConfig | undefined {
  if (json === undefined || json === null) return undefined;
  const obj = asObject(json, path);
  onlyFields(obj, path, ['name', 'typed_config']);
  const name = optString(obj, 'name', path) ?? '';
  const typed = optObject(obj, 'typed_config', path);
  const configPath = fieldPath(path, 'typed_config');
  const expected = side === 'downstream' ? DOWNSTREAM_TYPE : UPSTREAM_TYPE;
  if (typed === undefined) {
    if (name === RAW_BUFFER_TRANSPORT_SOCKET) return undefined;
    if (name === TLS_TRANSPORT_SOCKET) throw new ConfigError(configPath, `required (a ${expected})`);
    throw new ConfigError(fieldPath(path, 'name'), `unsupported transport socket ${JSON.stringify(name)}`);
  }
  const typeName = typeNameOfUrl(optString(typed, '@type', configPath) ?? '');
  if (typeName === RAW_BUFFER_TYPE) {
    onlyFields(typed, configPath, ['@type']);
    return undefined;
  }
  if (typeName !== expected) {
    const other = side === 'downstream' ? UPSTREAM_TYPE : DOWNSTREAM_TYPE;
    throw new ConfigError(
      fieldPath(configPath, '@type'),
      typeName === other
        ? `a ${side} transport socket needs a ${expected}, not a ${other}`
        : `unsupported transport socket type ${JSON.stringify(typeName)}`,
    );
  }
  return side === 'downstream'
    ? compileDownstreamTlsContext(typed, configPath)
    : compileUpstreamTlsContext(typed, configPath);
}

export function compileDownstreamTlsContext(json: Json, path: string): DownstreamTlsConfig {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['@type', 'common_tls_context', 'require_client_certificate', 'session_timeout'], {
    require_sni: 'not supported by Weft',
    session_ticket_keys: 'not supported by Weft',
    session_ticket_keys_sds_secret_config: 'not supported by Weft',
    disable_stateless_session_resumption: 'not supported by Weft',
    disable_stateful_session_resumption: 'not supported by Weft',
    ocsp_staple_policy: 'not supported by Weft',
    full_scan_certs_on_sni_mismatch: 'not supported by Weft',
    prefer_client_ciphers: 'not supported by Weft',
  });
  const common = compileCommonTlsContext(obj.common_tls_context, fieldPath(path, 'common_tls_context'));
  if (common.certificates.length === 0)
    throw new ConfigError(
      fieldPath(path, 'common_tls_context'),
      'a server needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)',
    );
  const requireClientCertificate = optBool(obj, 'require_client_certificate', path) ?? false;
  if (requireClientCertificate && common.validation === undefined)
    throw new ConfigError(
      fieldPath(path, 'require_client_certificate'),
      'needs a validation context with trusted_ca to verify client certificates',
    );
  const timeoutMs = durationMs(obj, 'session_timeout', path, 0);
  return {
    side: 'downstream',
    ...common,
    requireClientCertificate,
    sessionTimeoutSeconds: timeoutMs > 0 ? Math.max(1, Math.round(timeoutMs / 1000)) : undefined,
  };
}

export function compileUpstreamTlsContext(json: Json, path: string): UpstreamTlsConfig {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['@type', 'common_tls_context', 'sni', 'max_session_keys', 'allow_renegotiation'], {
    enforce_rsa_key_usage: 'not supported by Weft',
    auto_host_sni: 'not supported by Weft (set sni)',
    auto_sni_san_validation: 'not supported by Weft',
  });
  if (optBool(obj, 'allow_renegotiation', path) === true)
    throw new ConfigError(fieldPath(path, 'allow_renegotiation'), 'renegotiation is not supported by Weft');
  const sni = optString(obj, 'sni', path) ?? '';
  if (sni.length > 255) throw new ConfigError(fieldPath(path, 'sni'), 'longer than 255 characters');
  return {
    side: 'upstream',
    ...compileCommonTlsContext(obj.common_tls_context, fieldPath(path, 'common_tls_context')),
    sni,
    maxSessionKeys: intInRange(obj, 'max_session_keys', path, 0, 2 ** 32 - 1, 1),
  };
}

const TLS_VERSIONS: Readonly<Record<string, TlsVersion | 'AUTO'>> = {
  TLS_AUTO: 'AUTO',
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};
const VERSION_ORDER: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Node's TLS 1.3 suites: Envoy's cipher_suites only restrict TLS 1.2 and below, so 1.3 keeps them all. */
const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

function compileCommonTlsContext(json: Json | undefined, path: string): CommonTlsConfig {
  const obj: JsonObject = json === undefined || json === null ? {} : asObject(json, path);
  onlyFields(
    obj,
    path,
    [
      'tls_params',
      'tls_certificates',
      'tls_certificate_sds_secret_configs',
      'validation_context',
      'validation_context_sds_secret_config',
      'combined_validation_context',
      'alpn_protocols',
    ],
    {
      tls_certificate_provider_instance: 'not supported by Weft (use tls_certificate_sds_secret_configs)',
      tls_certificate_certificate_provider: 'not supported by Weft',
      tls_certificate_certificate_provider_instance: 'not supported by Weft',
      validation_context_certificate_provider: 'not supported by Weft',
      validation_context_certificate_provider_instance: 'not supported by Weft',
      custom_handshaker: 'not supported by Weft',
      custom_tls_certificate_selector: 'not supported by Weft',
      key_log: 'not supported by Weft',
    },
  );
  const certificates: CertificateProvider[] = [
    ...objectItems(obj, 'tls_certificates', path).map(({ item, path: p }): CertificateProvider => {
      const { chain, key } = compileCertificate(item, p);
      return { kind: 'static', certificateChain: chain.text, privateKey: key.text, origin: chain.origin };
    }),
    ...objectItems(obj, 'tls_certificate_sds_secret_configs', path).map(
      ({ item, path: p }): CertificateProvider => ({ kind: 'sds', ...compileSdsSecretConfig(item, p) }),
    ),
  ];
  const alpnProtocols = stringItems(obj, 'alpn_protocols', path);
  alpnProtocols.forEach((p, i) => {
    if (p.length === 0 || Buffer.byteLength(p) > 255)
      throw new ConfigError(`${fieldPath(path, 'alpn_protocols')}[${i}]`, 'must be 1 to 255 bytes long');
  });
  return {
    certificates,
    validation: compileValidation(obj, path),
    alpnProtocols,
    ...compileTlsParams(optObject(obj, 'tls_params', path), fieldPath(path, 'tls_params')),
  };
}

function compileTlsParams(
  obj: JsonObject | undefined,
  path: string,
): Pick<CommonTlsConfig, 'minVersion' | 'maxVersion' | 'ciphers' | 'ecdhCurves'> {
  if (obj === undefined)
    return { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: undefined, ecdhCurves: undefined };
  onlyFields(
    obj,
    path,
    ['tls_minimum_protocol_version', 'tls_maximum_protocol_version', 'cipher_suites', 'ecdh_curves'],
    {
      signature_algorithms: 'not supported by Weft',
      compliance_policies: 'not supported by Weft',
    },
  );
  const version = (key: string, auto: TlsVersion): TlsVersion => {
    const v = optString(obj, key, path) ?? 'TLS_AUTO';
    const mapped = TLS_VERSIONS[v];
    if (mapped === undefined)
      throw new ConfigError(fieldPath(path, key), `unknown value ${JSON.stringify(v)}`);
    return mapped === 'AUTO' ? auto : mapped;
  };
  const minVersion = version('tls_minimum_protocol_version', 'TLSv1.2');
  const maxVersion = version('tls_maximum_protocol_version', 'TLSv1.3');
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion))
    throw new ConfigError(
      path,
      `tls_minimum_protocol_version ${minVersion} is above the maximum ${maxVersion}`,
    );

  const suites = stringItems(obj, 'cipher_suites', path);
  let ciphers: string | undefined;
  if (suites.length > 0) {
    // BoringSSL's equal-preference groups "[A|B]" have no OpenSSL form: their members keep their order.
    const names = suites.flatMap((s) => s.replace(/^\[|\]$/g, '').split('|'));
    ciphers = names.some((n) => n.startsWith('TLS_'))
      ? names.join(':')
      : `${TLS13_SUITES}:${names.join(':')}`;
    try {
      tls.createSecureContext({ ciphers });
    } catch (err) {
      throw new ConfigError(fieldPath(path, 'cipher_suites'), `not usable: ${(err as Error).message}`);
    }
  }
  const curves = stringItems(obj, 'ecdh_curves', path);
  let ecdhCurves: string | undefined;
  if (curves.length > 0) {
    ecdhCurves = curves.join(':');
    try {
      tls.createSecureContext({ ecdhCurve: ecdhCurves });
    } catch (err) {
      throw new ConfigError(fieldPath(path, 'ecdh_curves'), `not usable: ${(err as Error).message}`);
    }
  }
  return { minVersion, maxVersion, ciphers, ecdhCurves };
}

/** validation_context, validation_context_sds_secret_config or combined_validation_context (one of them). */
function compileValidation(obj: JsonObject, path: string): CommonTlsConfig['validation'] {
  const set = [
    'validation_context',
    'validation_context_sds_secret_config',
    'combined_validation_context',
  ].filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length > 1) throw new ConfigError(path, `set only one of ${set.join(', ')}`);
  const inline = optObject(obj, 'validation_context', path);
  if (inline !== undefined) {
    const p = fieldPath(path, 'validation_context');
    const v = compileValidationContext(inline, p);
    if (v.trust === undefined)
      throw new ConfigError(fieldPath(p, 'trusted_ca'), 'required (peer verification needs trusted roots)');
    return { trust: v.trust, sanMatchers: v.sanMatchers };
  }
  const sds = obj.validation_context_sds_secret_config;
  if (sds !== undefined && sds !== null)
    return {
      trust: {
        kind: 'sds',
        ...compileSdsSecretConfig(sds, fieldPath(path, 'validation_context_sds_secret_config')),
      },
      sanMatchers: [],
    };
  const combined = optObject(obj, 'combined_validation_context', path);
  if (combined === undefined) return undefined;
  const p = fieldPath(path, 'combined_validation_context');
  onlyFields(combined, p, ['default_validation_context', 'validation_context_sds_secret_config'], {
    validation_context_certificate_provider: 'not supported by Weft',
    validation_context_certificate_provider_instance: 'not supported by Weft',
    custom_validator_config: 'not supported by Weft',
  });
  const def = optObject(combined, 'default_validation_context', p);
  const defaults = def
    ? compileValidationContext(def, fieldPath(p, 'default_validation_context'))
    : { trust: undefined, sanMatchers: [] };
  const sdsPath = fieldPath(p, 'validation_context_sds_secret_config');
  if (
    combined.validation_context_sds_secret_config === undefined ||
    combined.validation_context_sds_secret_config === null
  )
    throw new ConfigError(sdsPath, 'required');
  if (defaults.trust !== undefined)
    throw new ConfigError(
      fieldPath(fieldPath(p, 'default_validation_context'), 'trusted_ca'),
      'not supported by Weft next to validation_context_sds_secret_config (the secret gives the trusted roots)',
    );
  return {
    trust: { kind: 'sds', ...compileSdsSecretConfig(combined.validation_context_sds_secret_config, sdsPath) },
    sanMatchers: defaults.sanMatchers,
  };
}

const SAN_TYPES: readonly SanType[] = ['URI', 'DNS', 'EMAIL', 'IP_ADDRESS'];

/** envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext. */
function compileValidationContext(
  obj: JsonObject,
  path: string,
): { trust: TrustProvider | undefined; sanMatchers: SanMatcher[] } {
  onlyFields(obj, path, ['trusted_ca', 'match_typed_subject_alt_names', 'match_subject_alt_names']);
  let trust: TrustProvider | undefined;
  if (obj.trusted_ca !== undefined && obj.trusted_ca !== null) {
    const ca = compileDataSource(obj.trusted_ca, fieldPath(path, 'trusted_ca'));
    if (!ca.text.includes('-----BEGIN CERTIFICATE-----'))
      throw new ConfigError(fieldPath(path, 'trusted_ca'), `no PEM certificate in ${ca.origin}`);
    trust = { kind: 'static', trustedCa: ca.text, origin: ca.origin };
  }
  const sanMatchers: SanMatcher[] = [
    ...objectItems(obj, 'match_typed_subject_alt_names', path).map(({ item, path: p }): SanMatcher => {
      onlyFields(item, p, ['san_type', 'matcher'], { oid: 'not supported by Weft' });
      const t = optString(item, 'san_type', p) ?? 'SAN_TYPE_UNSPECIFIED';
      if (!(SAN_TYPES as readonly string[]).includes(t))
        throw new ConfigError(
          fieldPath(p, 'san_type'),
          t === 'SAN_TYPE_UNSPECIFIED' ? 'required' : `unknown or unsupported value ${JSON.stringify(t)}`,
        );
      return {
        sanType: t as SanType,
        matcher: compileStringMatcher(item.matcher, fieldPath(p, 'matcher')),
        spec: JSON.stringify(item),
      };
    }),
    ...(Array.isArray(obj.match_subject_alt_names) ? obj.match_subject_alt_names : []).map(
      (m, i): SanMatcher => ({
        sanType: undefined,
        matcher: compileStringMatcher(m, `${fieldPath(path, 'match_subject_alt_names')}[${i}]`),
        spec: JSON.stringify(m),
      }),
    ),
  ];
  return { trust, sanMatchers };
}
