/** Subject alternative names of X.509 certificates, and Envoy's SAN matching for peer verification. */
import { X509Certificate } from 'node:crypto';
import type { SanMatcher, SanType } from './tls-context-config.ts';

export interface SubjectAltNames {
  readonly uri: readonly string[];
  readonly dns: readonly string[];
  readonly email: readonly string[];
  readonly ip: readonly string[];
}

export const NO_SANS: SubjectAltNames = { uri: [], dns: [], email: [], ip: [] };

/**
 * Parses Node's subjectAltName text ("DNS:a, URI:spiffe://x, IP Address:1.2.3.4, email:e"); values with
 * a comma or quote come JSON-quoted, as Node escapes them.
 */
export function parseSubjectAltName(text: string | undefined): SubjectAltNames {
  if (!text) return NO_SANS;
  const out = { uri: [] as string[], dns: [] as string[], email: [] as string[], ip: [] as string[] };
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(entry)) {
    let value = m[2];
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    switch (m[1]) {
      case 'URI':
        out.uri.push(value);
        break;
      case 'DNS':
        out.dns.push(value);
        break;
      case 'email':
        out.email.push(value);
        break;
      case 'IP Address':
        out.ip.push(value);
        break;
    }
  }
  return out;
}

export function sansOf(cert: X509Certificate | undefined): SubjectAltNames {
  return cert === undefined ? NO_SANS : parseSubjectAltName(cert.subjectAltName);
}

/** The leaf of a PEM chain, or undefined when it does not parse. */
export function leafOf(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function valuesOf(sans: SubjectAltNames, type: SanType): readonly string[] {
  switch (type) {
    case 'URI':
      return sans.uri;
    case 'DNS':
      return sans.dns;
    case 'EMAIL':
      return sans.email;
    case 'IP_ADDRESS':
      return sans.ip;
  }
}

/** Envoy's rule: with no matchers every certificate passes; otherwise any SAN matching any matcher does. */
export function sansMatch(sans: SubjectAltNames, matchers: readonly SanMatcher[]): boolean {
  if (matchers.length === 0) return true;
  for (const m of matchers) {
    const types: readonly SanType[] =
      m.sanType === undefined ? ['URI', 'DNS', 'EMAIL', 'IP_ADDRESS'] : [m.sanType];
    for (const t of types) {
      for (const v of valuesOf(sans, t)) if (m.matcher.matches(dnsAware(t, v, m))) return true;
    }
  }
  return false;
}

/** Envoy matches a wildcard DNS SAN ("*.example.com") against an exact matcher for one label. */
function dnsAware(type: SanType, value: string, m: SanMatcher): string {
  if (type !== 'DNS' || !value.startsWith('*.') || m.matcher.kind !== 'exact') return value;
  const want = m.matcher.text;
  const dot = want.indexOf('.');
  return dot > 0 && want.slice(dot) === value.slice(1) ? want : value;
}

/** RFC 2253 order (most specific first, comma separated) from Node's one-attribute-per-line subject. */
export function rfc2253Subject(cert: X509Certificate): string {
  return cert.subject.split('\n').filter(Boolean).reverse().join(',');
}
