/**
 * What the CA has been asked for and what it issued, for the control plane's metrics (istiod's citadel_server_*
 * counters, and the workload certificates still valid). Plain numbers: the metrics module reads them at scrape.
 */

/** Why a certificate request was refused. */
export type RefusalReason = 'unauthenticated' | 'invalid' | 'forbidden' | 'error';

export class IssuanceStats {
  /** Certificate signing requests received (every CreateCertificate call, refused or not). */
  csrReceived = 0;
  issued = 0;
  readonly refused: Record<RefusalReason, number> = {
    unauthenticated: 0,
    invalid: 0,
    forbidden: 0,
    error: 0,
  };
  /**
   * notAfter (ms) of every issued certificate that has not expired yet, by serial number. Bounded by the
   * issuance rate times the workload lifetime (a renewed certificate stays here until its own expiry).
   */
  readonly #valid = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  recordIssued(serialNumber: string, notAfter: Date): void {
    this.issued += 1;
    this.#valid.set(serialNumber, notAfter.getTime());
  }

  recordRefused(reason: RefusalReason): void {
    this.refused[reason] += 1;
  }

  /** Issued certificates not expired yet, and the earliest of their expiries (ms since the epoch; null if none). */
  validCertificates(): { count: number; earliestExpiryMs: number | null } {
    const now = this.#now();
    let earliest: number | null = null;
    for (const [serial, notAfter] of this.#valid) {
      if (notAfter <= now) this.#valid.delete(serial);
      else if (earliest === null || notAfter < earliest) earliest = notAfter;
    }
    return { count: this.#valid.size, earliestExpiryMs: earliest };
  }
}
