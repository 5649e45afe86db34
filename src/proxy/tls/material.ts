/**
 * The certificates and trusted roots one TLS context uses right now: static ones from its configuration
 * and named ones from the SecretManager. Holds the context's secret watches until released.
 */
import type { SecureContextOptions } from 'node:tls';
import type { CommonTlsConfig } from './tls-context-config.ts';
import type { SecretManager } from './secrets.ts';
import { leafOf, sansOf } from './san.ts';

export interface TlsMaterial {
  readonly certificates: readonly { readonly certificateChain: string; readonly privateKey: string }[];
  readonly trustedCa: string | undefined;
  /** Our first certificate's first URI SAN (the local principal). */
  readonly localPrincipal: string | undefined;
  /** Our first certificate's URI SANs (XFCC's By= entries). */
  readonly localUriSans: readonly string[];
  /** Changes whenever any secret the context uses changes. */
  readonly version: string;
}

export class TlsMaterialSource {
  private readonly config: CommonTlsConfig;
  private readonly secrets: SecretManager;
  private readonly releases: (() => void)[] = [];
  private cached: TlsMaterial | undefined;

  /** `onChange` runs when a secret this context uses arrives or changes. */
  constructor(config: CommonTlsConfig, secrets: SecretManager, onChange: () => void = () => undefined) {
    this.config = config;
    this.secrets = secrets;
    const names = new Map<string, 'static' | 'ads' | 'agent'>();
    for (const c of config.certificates) if (c.kind === 'sds') names.set(c.name, c.source);
    const trust = config.validation?.trust;
    if (trust?.kind === 'sds') names.set(trust.name, trust.source);
    for (const [name, source] of names) this.releases.push(secrets.watch(name, source, onChange));
  }

  /** The current material, or undefined while a named secret has not arrived (or has the wrong kind). */
  current(): TlsMaterial | undefined {
    const parts: string[] = [];
    const certificates: { certificateChain: string; privateKey: string }[] = [];
    for (const c of this.config.certificates) {
      if (c.kind === 'static') {
        certificates.push({ certificateChain: c.certificateChain, privateKey: c.privateKey });
        continue;
      }
      const s = this.secrets.get(c.name);
      if (s === undefined || s.value.kind !== 'tls_certificate') return undefined;
      certificates.push({ certificateChain: s.value.certificateChain, privateKey: s.value.privateKey });
      parts.push(`${c.name}@${s.version}`);
    }
    let trustedCa: string | undefined;
    const trust = this.config.validation?.trust;
    if (trust?.kind === 'static') trustedCa = trust.trustedCa;
    else if (trust?.kind === 'sds') {
      const s = this.secrets.get(trust.name);
      if (s === undefined || s.value.kind !== 'validation_context') return undefined;
      trustedCa = s.value.trustedCa;
      parts.push(`${trust.name}@${s.version}`);
    }
    const version = parts.join(',');
    if (this.cached !== undefined && this.cached.version === version) return this.cached;
    const leaf = certificates.length > 0 ? leafOf(certificates[0].certificateChain) : undefined;
    const localUriSans = sansOf(leaf).uri;
    this.cached = { certificates, trustedCa, localPrincipal: localUriSans[0], localUriSans, version };
    return this.cached;
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

/** The options of node:tls for a context's material and protocol settings. */
export function secureContextOptions(config: CommonTlsConfig, material: TlsMaterial): SecureContextOptions {
  return {
    ...(material.certificates.length > 0
      ? {
          cert: material.certificates.map((c) => c.certificateChain),
          key: material.certificates.map((c) => c.privateKey),
        }
      : {}),
    ...(material.trustedCa !== undefined ? { ca: material.trustedCa } : {}),
    minVersion: config.minVersion,
    maxVersion: config.maxVersion,
    ...(config.ciphers !== undefined ? { ciphers: config.ciphers } : {}),
    ...(config.ecdhCurves !== undefined ? { ecdhCurve: config.ecdhCurves } : {}),
  };
}
