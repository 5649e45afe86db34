/**
 * The workload's certificate agent (istio-agent's job, inside the proxy): makes the workload's key, has the
 * control plane's CA sign a CSR for it (Istio's IstioCertificateService/CreateCertificate, authenticated
 * by the workload's bootstrap token), hands the result to the proxy as the `default` SDS secret, and renews
 * it at about half its lifetime. A renewal swaps the secret for new handshakes; connections already up keep
 * the certificate they started with. Failures retry with backoff while the current certificate lasts.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from '../../core/logger.ts';
import { createLogger } from '../../core/logger.ts';
import type { Counter, StatsStore } from '../stats/store.ts';
import type { SecretManager } from '../tls/secrets.ts';
import { Backoff } from '../xds/backoff.ts';
import { GrpcCallError, UnaryChannel } from '../xds/grpc-unary.ts';
import {
  CREATE_CERTIFICATE_PATH,
  decodeCertificateResponse,
  encodeCertificateRequest,
} from '../../api/istio/ca-messages.ts';
import { newKeyAndCsr } from './csr.ts';
import { WORKLOAD_SECRET } from '../../api/istio/mesh-names.ts';

export interface CertificateAgentOptions {
  /** The CA's gRPC address, host:port. */
  readonly caAddress: string;
  /** The token file, read at every request (a rotated token is picked up). */
  readonly tokenFile: string;
  /** Requested lifetime in seconds; 0 lets the CA decide. */
  readonly ttlSeconds?: number;
  readonly secrets: SecretManager;
  readonly stats: StatsStore;
  /** Renew at this share of the lifetime (default 0.5), ± `jitter` (default 0.05). */
  readonly renewAt?: number;
  readonly jitter?: number;
  readonly callTimeoutMs?: number;
  readonly backoff?: Backoff;
  readonly logger?: Logger;
}

export interface IssuedInfo {
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly identity: string;
}

export class CertificateAgent {
  readonly #opts: CertificateAgentOptions;
  readonly #log: Logger;
  readonly #channel: UnaryChannel;
  readonly #backoff: Backoff;
  readonly #issued: Counter;
  readonly #failed: Counter;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #current: IssuedInfo | undefined;
  #first: { promise: Promise<void>; resolve: () => void };

  constructor(opts: CertificateAgentOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? createLogger('agent');
    this.#channel = new UnaryChannel(opts.caAddress);
    this.#backoff = opts.backoff ?? new Backoff({ baseMs: 1000, maxMs: 30_000 });
    this.#issued = opts.stats.counter('agent.certificate.issued');
    this.#failed = opts.stats.counter('agent.certificate.failed');
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#first = { promise, resolve };
  }

  get current(): IssuedInfo | undefined {
    return this.#current;
  }

  /** Starts fetching; the promise settles when the first certificate is in place (or never, if none comes). */
  start(): Promise<void> {
    void this.#renew();
    return this.#first.promise;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#channel.close();
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    try {
      const info = await this.#fetch();
      if (this.#stopped) return;
      this.#backoff.reset();
      this.#current = info;
      this.#issued.inc();
      this.#log.info('workload certificate issued', {
        identity: info.identity,
        serial: info.serialNumber,
        notAfter: info.notAfter.toISOString(),
      });
      this.#first.resolve();
      // The lifetime counts from now, not from notBefore: CAs backdate notBefore for clock skew.
      const remaining = info.notAfter.getTime() - Date.now();
      const share = (this.#opts.renewAt ?? 0.5) + (Math.random() * 2 - 1) * (this.#opts.jitter ?? 0.05);
      this.#schedule(Math.max(0, remaining * share));
    } catch (err) {
      if (this.#stopped) return;
      this.#failed.inc();
      let wait = this.#backoff.next();
      // Never wait past the current certificate's end.
      const until = this.#current ? this.#current.notAfter.getTime() - Date.now() : Infinity;
      wait = Math.max(0, Math.min(wait, until));
      this.#log.warn('workload certificate request failed; retrying', {
        error: (err as Error).message,
        retryInMs: wait,
        currentValidForMs: Number.isFinite(until) ? until : null,
      });
      this.#schedule(wait);
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renew(), ms);
    this.#timer.unref();
  }

  async #fetch(): Promise<IssuedInfo> {
    const token = readToken(this.#opts.tokenFile);
    const { privateKeyPem, csrPem } = await newKeyAndCsr();
    const body = encodeCertificateRequest({ csr: csrPem, validitySeconds: this.#opts.ttlSeconds ?? 0 });
    const reply = await new Promise<Buffer>((resolve, reject) =>
      this.#channel.call(
        CREATE_CERTIFICATE_PATH,
        body,
        { timeoutMs: this.#opts.callTimeoutMs ?? 10_000, metadata: { authorization: `Bearer ${token}` } },
        (err, message) => (err !== null || message === undefined ? reject(describe(err)) : resolve(message)),
      ),
    );
    const chain = decodeCertificateResponse(reply);
    if (chain.length === 0) throw new Error('the CA answered with no certificate');
    const leaf = new X509Certificate(chain[0]);
    if (!leaf.checkPrivateKey(createPrivateKey(privateKeyPem)))
      throw new Error('the CA answered with a certificate for another key');
    // Istio's order: leaf, intermediates, root. The root is the trust bundle's business, not the chain's.
    const presented = chain.length > 1 ? chain.slice(0, -1) : chain;
    this.#opts.secrets.set(WORKLOAD_SECRET, {
      kind: 'tls_certificate',
      certificateChain: presented.map((p) => p.trim() + '\n').join(''),
      privateKey: privateKeyPem,
    });
    const uri = /URI:([^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1] ?? '';
    return {
      serialNumber: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      identity: uri,
    };
  }
}

function readToken(file: string): string {
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the workload token ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (token === '') throw new Error(`the workload token file ${file} is empty`);
  return token;
}

function describe(err: Error | null): Error {
  if (err instanceof GrpcCallError) return new Error(`the CA refused: ${err.message}`);
  return err ?? new Error('empty answer from the CA');
}
