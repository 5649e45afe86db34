/**
 * The CA's metrics, read from its IssuanceStats at scrape time: Weft's own names (weft_ca_*) and istiod's
 * (citadel_server_*), in their own registry: the control plane renders it only while it runs a CA (a
 * zero expiry time would read as "expired" to an alert).
 */
import { Counter, Gauge } from 'prom-client';
import { Registry } from 'prom-client';
import type { CertificateAuthority } from '../ca/authority.ts';
import type { RefusalReason } from '../ca/issuance-stats.ts';

const REASONS: readonly RefusalReason[] = ['unauthenticated', 'invalid', 'forbidden', 'error'];

/** A counter whose value lives elsewhere (the CA's stats): copied into it at each scrape. */
function readCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: (set: (value: number, labels?: Record<string, string>) => void) => void,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      read((value, labels) => (labels ? this.labels(labels).inc(value) : this.inc(value)));
    },
  });
}

/** `authority` is read at each scrape: the control plane replaces its CA when the root rotates. */
export function caMetrics(authority: () => CertificateAuthority | undefined): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, value: (ca: CertificateAuthority) => number): void =>
    readCounter(registry, name, help, [], (set) => {
      const ca = authority();
      if (ca) set(value(ca));
    });
  const gauge = (name: string, help: string, value: (ca: CertificateAuthority) => number | null): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const ca = authority();
        const v = ca ? value(ca) : null;
        if (v !== null) this.set(v);
      },
    });
  };

  readCounter(
    registry,
    'weft_ca_certificate_requests_total',
    'Certificate signing requests the CA answered, by result (issued, unauthenticated, invalid, forbidden, error).',
    ['result'],
    (set) => {
      const ca = authority();
      if (!ca) return;
      set(ca.issuance.issued, { result: 'issued' });
      for (const r of REASONS) set(ca.issuance.refused[r], { result: r });
    },
  );
  gauge(
    'weft_ca_workload_certificates_valid',
    'Workload certificates the CA issued that have not expired yet.',
    (ca) => ca.issuance.validCertificates().count,
  );
  gauge(
    'weft_ca_workload_certificate_earliest_expiry_timestamp_seconds',
    'Unix time at which the first of the still-valid issued workload certificates expires.',
    (ca) => {
      const earliest = ca.issuance.validCertificates().earliestExpiryMs;
      return earliest === null ? null : earliest / 1000;
    },
  );
  gauge(
    'weft_ca_root_certificate_expiry_timestamp_seconds',
    "Unix time at which the CA's root certificate expires.",
    (ca) => ca.rootNotAfter.getTime() / 1000,
  );
  gauge(
    'weft_ca_signing_certificate_expiry_timestamp_seconds',
    'Unix time at which the certificate that signs workload certificates expires (the root, or a plug-in CA).',
    (ca) => ca.signerNotAfter.getTime() / 1000,
  );

  // istiod's names.
  counter(
    'citadel_server_csr_count',
    'Certificate signing requests received (istiod name).',
    (ca) => ca.issuance.csrReceived,
  );
  counter(
    'citadel_server_success_cert_issuance_count',
    'Certificates issued (istiod name).',
    (ca) => ca.issuance.issued,
  );
  counter(
    'citadel_server_csr_parsing_err_count',
    'Requests refused as not a usable CSR (istiod name).',
    (ca) => ca.issuance.refused.invalid,
  );
  counter(
    'citadel_server_authentication_failure_count',
    'Requests refused for a missing or unknown credential (istiod name).',
    (ca) => ca.issuance.refused.unauthenticated,
  );
  counter(
    'citadel_server_csr_sign_err_count',
    'Requests that failed while signing (istiod name).',
    (ca) => ca.issuance.refused.error,
  );
  gauge(
    'citadel_server_root_cert_expiry_timestamp',
    "Unix time at which the CA's root certificate expires (istiod name).",
    (ca) => ca.rootNotAfter.getTime() / 1000,
  );
  gauge(
    'citadel_server_root_cert_expiry_seconds',
    "Seconds until the CA's root certificate expires (istiod name).",
    (ca) => (ca.rootNotAfter.getTime() - Date.now()) / 1000,
  );
  gauge(
    'citadel_server_cert_chain_expiry_timestamp',
    'Unix time at which the signing certificate expires (istiod name).',
    (ca) => ca.signerNotAfter.getTime() / 1000,
  );
  gauge(
    'citadel_server_cert_chain_expiry_seconds',
    'Seconds until the signing certificate expires (istiod name).',
    (ca) => (ca.signerNotAfter.getTime() - Date.now()) / 1000,
  );
  return registry;
}
