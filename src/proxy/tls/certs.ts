/**
 * The certificates the proxy's TLS contexts use, for the admin /certs endpoint (Envoy's JSON shape) and the
 * server.*_until_first_cert_expiring gauges.
 */
import { X509Certificate } from 'node:crypto';
import type { SecretManager } from './secrets.ts';
import type { CommonTlsConfig } from './tls-context-config.ts';
import { sansOf } from './san.ts';

export interface CertificateDetails {
  readonly path: string;
  readonly serial_number: string;
  readonly subject_alt_names: readonly (
    { readonly uri: string } | { readonly dns: string } | { readonly ip_address: string }
  )[];
  /** A string, as proto3 JSON prints Envoy's uint64. */
  readonly days_until_expiration: string;
  readonly valid_from: string;
  readonly expiration_time: string;
}

export interface CertsResponse {
  readonly certificates: readonly {
    readonly ca_cert: readonly CertificateDetails[];
    readonly cert_chain: readonly CertificateDetails[];
  }[];
}

const DAY_MS = 86_400_000;

/** Every certificate of a PEM bundle, in order; unparsable blocks are left out. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      /* not a certificate Node can read: nothing to report */
    }
  }
  return out;
}

function details(cert: X509Certificate, path: string, nowMs: number): CertificateDetails {
  const sans = sansOf(cert);
  const expiry = new Date(cert.validTo).getTime();
  return {
    path,
    serial_number: cert.serialNumber.toLowerCase(),
    subject_alt_names: [
      ...sans.uri.map((uri) => ({ uri })),
      ...sans.dns.map((dns) => ({ dns })),
      ...sans.ip.map((ip_address) => ({ ip_address })),
    ],
    days_until_expiration: String(Math.max(0, Math.floor((expiry - nowMs) / DAY_MS))),
    valid_from: new Date(cert.validFrom).toISOString().replace('.000Z', 'Z'),
    expiration_time: new Date(expiry).toISOString().replace('.000Z', 'Z'),
  };
}

interface ContextCerts {
  readonly ca: { cert: X509Certificate; path: string }[];
  readonly chain: { cert: X509Certificate; path: string }[];
}

/** The certificates a context uses now (SDS secrets as they currently are). */
function contextCerts(tls: CommonTlsConfig, secrets: SecretManager): ContextCerts {
  const chain: ContextCerts['chain'] = [];
  for (const c of tls.certificates) {
    let pem: string | undefined;
    let path: string;
    if (c.kind === 'static') {
      pem = c.certificateChain;
      path = c.origin;
    } else {
      const s = secrets.get(c.name)?.value;
      pem = s?.kind === 'tls_certificate' ? s.certificateChain : undefined;
      path = `secret:${c.name}`;
    }
    // The leaf is the certificate in use; Envoy reports it alone for the chain.
    const leaf = pem === undefined ? undefined : pemCertificates(pem)[0];
    if (leaf !== undefined) chain.push({ cert: leaf, path });
  }
  const ca: ContextCerts['ca'] = [];
  const trust = tls.validation?.trust;
  if (trust?.kind === 'static')
    for (const cert of pemCertificates(trust.trustedCa)) ca.push({ cert, path: trust.origin });
  else if (trust?.kind === 'sds') {
    const s = secrets.get(trust.name)?.value;
    if (s?.kind === 'validation_context')
      for (const cert of pemCertificates(s.trustedCa)) ca.push({ cert, path: `secret:${trust.name}` });
  }
  return { ca, chain };
}

export function renderCerts(
  contexts: readonly CommonTlsConfig[],
  secrets: SecretManager,
  nowMs = Date.now(),
): CertsResponse {
  return {
    certificates: contexts.map((tls) => {
      const { ca, chain } = contextCerts(tls, secrets);
      return {
        ca_cert: ca.map((c) => details(c.cert, c.path, nowMs)),
        cert_chain: chain.map((c) => details(c.cert, c.path, nowMs)),
      };
    }),
  };
}

/** Milliseconds until the first certificate in use expires (negative if one has), or undefined when none is used. */
export function msUntilFirstExpiry(
  contexts: readonly CommonTlsConfig[],
  secrets: SecretManager,
  nowMs = Date.now(),
): number | undefined {
  let first: number | undefined;
  for (const tls of contexts) {
    const { ca, chain } = contextCerts(tls, secrets);
    for (const { cert } of [...ca, ...chain]) {
      const t = new Date(cert.validTo).getTime();
      if (first === undefined || t < first) first = t;
    }
  }
  return first === undefined ? undefined : first - nowMs;
}
