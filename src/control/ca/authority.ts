/**
 * The control plane's certificate authority: a root it creates and keeps (ECDSA P-256, files 0600 in its
 * state directory) or an operator's plug-in CA (Istio's layout: ca-cert.pem, ca-key.pem, root-cert.pem,
 * cert-chain.pem), and short-lived workload certificates whose only name is the SPIFFE ID
 * `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
 *
 * The identity a certificate carries comes from the caller's credential, never from the CSR: a CSR that
 * asks for any other name is refused. Keys are generated where they are used; the CA sees public keys only.
 */
import 'reflect-metadata';
import {
  KeyObject,
  X509Certificate,
  createPrivateKey,
  sign as signWith,
  verify as verifyWith,
  webcrypto,
} from 'node:crypto';
import type { webcrypto as WebCrypto } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { csrPemToDer, parseCertificationRequest, signatureCheck, verifyCertificationRequest } from './csr.ts';
import type { CertificationRequest, SignatureCheck } from './csr.ts';
import { WorkloadCertificateTemplate, certificateDer, certificatePem } from './workload-certificate.ts';
import { IssuanceStats } from './issuance-stats.ts';

// @peculiar/x509 works on any WebCrypto; Node's is the one here.
x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = WebCrypto.CryptoKey;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Istio's default workload certificate lifetime. */
export const DEFAULT_WORKLOAD_TTL_MS = DAY_MS;
const ROOT_TTL_MS = 10 * 365 * DAY_MS;
/** Certificates start a little in the past, so a peer whose clock is slightly behind accepts them. */
const BACKDATE_MS = 60_000;
/** At most this many of a refused CSR's names go into the error (a CSR may carry thousands). */
const NAMES_IN_MESSAGE = 8;

/** A request the CA refuses: a bad CSR, or one asking for an identity the credential does not grant. */
export class CertificateRequestError extends Error {
  /** `invalid`: not a usable CSR; `forbidden`: a valid CSR for a name the credential does not grant. */
  readonly kind: 'invalid' | 'forbidden';
  constructor(message: string, kind: 'invalid' | 'forbidden' = 'invalid') {
    super(message);
    this.name = 'CertificateRequestError';
    this.kind = kind;
  }
}

export interface WorkloadIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface AuthorityOptions {
  /** Where a self-made root is kept (created when absent). */
  readonly stateDir: string;
  /** An operator's CA (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); overrides the state dir's root. */
  readonly pluginDir?: string;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** Default lifetime of workload certificates (24 h). */
  readonly workloadTtlMs?: number;
  /** The clock (tests). */
  readonly now?: () => number;
  /** Where issuance is counted; pass the previous CA's when reloading it, so its counters go on. Default: new. */
  readonly issuance?: IssuanceStats;
}

/** A signed workload certificate: the leaf, then the chain up to and including the root (Istio's order). */
export interface IssuedCertificate {
  readonly certChain: readonly string[];
  readonly serialNumber: string;
  readonly notAfter: Date;
}

/** The files a self-made root is kept in. */
export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';

function readPem(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes a file only its owner may read, also when it already exists with wider permissions. */
function writePrivate(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function importKey(pem: string, file: string): KeyObject {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----|\s+/g, '');
  if (!pem.includes('BEGIN PRIVATE KEY'))
    throw new Error(
      `${file}: expected a PKCS#8 "PRIVATE KEY" PEM (convert with openssl pkcs8 -topk8 -nocrypt)`,
    );
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(body, 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new Error(`${file}: not an ECDSA P-256 private key: ${(err as Error).message}`, { cause: err });
  }
  // Leaves are signed ECDSA P-256 / SHA-256 only (the template's signature algorithm).
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error(`${file}: not an ECDSA P-256 private key`);
  return key;
}

/** ECDSA P-256 / SHA-256, DER-encoded as X.509 wants it; on the thread pool, off the event loop. */
function signTbs(key: KeyObject, tbs: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    signWith('sha256', tbs, { key, dsaEncoding: 'der' }, (err, signature) =>
      err === null ? resolve(signature) : reject(err),
    );
  });
}

function keyPem(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

function randomSerial(): Uint8Array {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // a positive INTEGER
  return bytes;
}

function splitPems(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export class CertificateAuthority {
  readonly trustDomain: string;
  /** The root every workload trusts, PEM. */
  readonly rootPem: string;
  readonly rootNotAfter: Date;
  /** The certificate that signs workload certificates (the root itself, unless a plug-in CA). */
  readonly signerNotAfter: Date;
  readonly issuance: IssuanceStats;
  readonly #signerKey: KeyObject;
  readonly #signerNotAfter: number;
  /** The signer and the certificates between it and the root (the root last), PEM. */
  readonly #chain: readonly string[];
  readonly #workloadTtlMs: number;
  /** What every certificate the signer issues shares, encoded once. */
  readonly #template: WorkloadCertificateTemplate;
  readonly #now: () => number;

  private constructor(
    opts: AuthorityOptions,
    signer: x509.X509Certificate,
    signerKey: KeyObject,
    chain: readonly string[],
    rootPem: string,
    template: WorkloadCertificateTemplate,
  ) {
    this.trustDomain = opts.trustDomain ?? 'cluster.local';
    this.#workloadTtlMs = opts.workloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS;
    this.#now = opts.now ?? Date.now;
    this.#signerNotAfter = signer.notAfter.getTime();
    this.signerNotAfter = signer.notAfter;
    this.rootNotAfter = new x509.X509Certificate(rootPem).notAfter;
    this.issuance = opts.issuance ?? new IssuanceStats(this.#now);
    this.#signerKey = signerKey;
    this.#chain = chain;
    this.rootPem = rootPem;
    this.#template = template;
  }

  static async #create(
    opts: AuthorityOptions,
    signer: x509.X509Certificate,
    signerKey: KeyObject,
    chain: readonly string[],
    rootPem: string,
  ): Promise<CertificateAuthority> {
    const template = await WorkloadCertificateTemplate.create(signer, opts.trustDomain ?? 'cluster.local');
    return new CertificateAuthority(opts, signer, signerKey, chain, rootPem, template);
  }

  /** Loads the plug-in CA, else the state dir's root, creating that root on first start. */
  static async open(opts: AuthorityOptions): Promise<CertificateAuthority> {
    if (opts.pluginDir !== undefined) return CertificateAuthority.#plugin(opts, opts.pluginDir);
    fs.mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    const certFile = path.join(opts.stateDir, ROOT_CERT_FILE);
    const keyFile = path.join(opts.stateDir, ROOT_KEY_FILE);
    if (fs.existsSync(certFile) || fs.existsSync(keyFile)) {
      const certPem = readPem(certFile);
      const key = importKey(readPem(keyFile), keyFile);
      const cert = new x509.X509Certificate(certPem);
      return CertificateAuthority.#create(opts, cert, key, [cert.toString('pem')], cert.toString('pem'));
    }
    const now = (opts.now ?? Date.now)();
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const name = `O=${opts.trustDomain ?? 'cluster.local'}, CN=Weft root CA`;
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: Buffer.from(randomSerial()).toString('hex'),
      name,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ROOT_TTL_MS),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pem = root.toString('pem');
    writePrivate(keyFile, keyPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)));
    writePrivate(certFile, `${pem}\n`);
    return CertificateAuthority.#create(opts, root, KeyObject.from(keys.privateKey), [pem], pem);
  }

  static async #plugin(opts: AuthorityOptions, dir: string): Promise<CertificateAuthority> {
    const caCertFile = path.join(dir, 'ca-cert.pem');
    const caKeyFile = path.join(dir, 'ca-key.pem');
    const rootFile = path.join(dir, 'root-cert.pem');
    const chainFile = path.join(dir, 'cert-chain.pem');
    const signerPemText = readPem(caCertFile);
    const signer = new x509.X509Certificate(signerPemText);
    const key = importKey(readPem(caKeyFile), caKeyFile);
    // Files replaced one by one (a rotation) may be caught half-way: never sign with another certificate's key.
    const probe = Buffer.from('weft plug-in CA key check');
    if (
      !verifyWith(
        'sha256',
        probe,
        new X509Certificate(signerPemText).publicKey,
        signWith('sha256', probe, key),
      )
    )
      throw new Error(`${caKeyFile}: not the key of ${caCertFile}`);
    const rootPem = splitPems(readPem(rootFile))[0];
    if (rootPem === undefined) throw new Error(`${rootFile}: no certificate`);
    // cert-chain.pem is the signer's chain to the root; the signer's own certificate leads it.
    const chain = fs.existsSync(chainFile) ? splitPems(readPem(chainFile)) : [signer.toString('pem')];
    const signerPem = signer.toString('pem');
    const first = chain[0] === undefined ? undefined : new x509.X509Certificate(chain[0]).toString('pem');
    const full = first === signerPem ? chain : [signerPem, ...chain];
    const root = new x509.X509Certificate(rootPem);
    if (new x509.X509Certificate(full[full.length - 1]).toString('pem') !== root.toString('pem'))
      full.push(root.toString('pem'));
    if (!(await signer.verify({ publicKey: await findIssuerKey(signer, full, root) })))
      throw new Error(`${caCertFile}: not signed by the next certificate of ${chainFile} or by ${rootFile}`);
    return CertificateAuthority.#create(opts, signer, key, full, root.toString('pem'));
  }

  spiffeId(identity: WorkloadIdentity): string {
    return `spiffe://${this.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
  }

  /**
   * Signs `csrPem` for `identity` (what the caller's credential proved). The CSR must be validly self-signed
   * and ask for exactly that SPIFFE ID (or for no name at all). `ttlMs` is capped by the signer's own expiry.
   */
  async sign(
    csrPem: string,
    identity: WorkloadIdentity,
    ttlMs = this.#workloadTtlMs,
  ): Promise<IssuedCertificate> {
    let request: CertificationRequest;
    try {
      request = parseCertificationRequest(csrPemToDer(csrPem));
    } catch (err) {
      throw new CertificateRequestError(`not a PEM certificate signing request: ${(err as Error).message}`);
    }
    let check: SignatureCheck;
    try {
      check = signatureCheck(request);
    } catch (err) {
      throw new CertificateRequestError(
        `the CSR's key or signature algorithm is not usable: ${(err as Error).message}`,
      );
    }
    if (!(await verifyCertificationRequest(request, check)))
      throw new CertificateRequestError('the CSR signature does not verify');
    const granted = this.spiffeId(identity);
    const asked = request.requestedNames;
    if (asked.length > 0 && (asked.length !== 1 || asked[0].type !== 'url' || asked[0].value !== granted)) {
      const shown = asked.slice(0, NAMES_IN_MESSAGE).map((n) => `${n.type}:${n.value}`);
      if (asked.length > NAMES_IN_MESSAGE) shown.push(`and ${asked.length - NAMES_IN_MESSAGE} more`);
      throw new CertificateRequestError(
        `the CSR asks for ${shown.join(', ')}; the credential grants only ${granted}`,
        'forbidden',
      );
    }
    if (!(ttlMs > 0)) throw new CertificateRequestError(`invalid lifetime ${ttlMs} ms`);
    const now = this.#now();
    const notAfter = new Date(Math.min(now + ttlMs, this.#signerNotAfter));
    const serial = randomSerial();
    const tbs = this.#template.tbsCertificate({
      serial,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      subjectPublicKeyInfo: request.subjectPublicKeyInfo,
      uri: granted,
    });
    const leaf = certificatePem(certificateDer(tbs, await signTbs(this.#signerKey, tbs)));
    return { certChain: [leaf, ...this.#chain], serialNumber: Buffer.from(serial).toString('hex'), notAfter };
  }
}

/** The public key of the certificate in `chain` (or the root) that issued `cert`. */
async function findIssuerKey(
  cert: x509.X509Certificate,
  chain: readonly string[],
  root: x509.X509Certificate,
): Promise<CryptoKey> {
  const candidates = [...chain.map((p) => new x509.X509Certificate(p)), root];
  const issuer =
    candidates.find((c) => c.subject === cert.issuer && c.serialNumber !== cert.serialNumber) ?? root;
  return (await issuer.publicKey.export()) as CryptoKey;
}
