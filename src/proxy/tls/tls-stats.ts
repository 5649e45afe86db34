/** TLS counters with Envoy's names, under a listener's or a cluster's prefix (`listener.<addr>.ssl.*`, `cluster.<name>.ssl.*`). */
import type { Counter, StatsStore } from '../stats/store.ts';

export class TlsStats {
  readonly handshake: Counter;
  readonly connectionError: Counter;
  readonly failVerifyNoCert: Counter;
  readonly failVerifyError: Counter;
  readonly failVerifySan: Counter;
  readonly noCertificate: Counter;
  readonly sessionReused: Counter;
  /** Weft's own: connections refused because a secret the context needs has not arrived yet. */
  readonly secretNotReady: Counter;

  /** `prefix` ends with a dot, e.g. `listener.127.0.0.1_8443.`. */
  constructor(store: StatsStore, prefix: string) {
    const p = `${prefix}ssl.`;
    this.handshake = store.counter(p + 'handshake');
    this.connectionError = store.counter(p + 'connection_error');
    this.failVerifyNoCert = store.counter(p + 'fail_verify_no_cert');
    this.failVerifyError = store.counter(p + 'fail_verify_error');
    this.failVerifySan = store.counter(p + 'fail_verify_san');
    this.noCertificate = store.counter(p + 'no_certificate');
    this.sessionReused = store.counter(p + 'session_reused');
    this.secretNotReady = store.counter(p + 'secret_not_ready');
  }
}
