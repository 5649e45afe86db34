/**
 * Workload certificates encoded from a template. Everything a signer's certificates share (issuer, subject,
 * algorithm, the fixed extensions) is encoded once, by @peculiar/x509, when the template is made; each
 * certificate then only encodes its serial, validity, public key and SPIFFE ID, which is most of the cost of
 * issuing one when a general ASN.1 library does all of it.
 *
 * The extensions, their order and their criticality are what this CA has always issued:
 * basicConstraints (critical, CA:FALSE), keyUsage (critical, digitalSignature + keyEncipherment),
 * extKeyUsage (serverAuth, clientAuth), subjectAltName (critical, the one URI), authorityKeyIdentifier.
 */
import * as x509 from '@peculiar/x509';
import {
  TAG,
  childrenOf,
  contextTag,
  elementBytes,
  encodeBitString,
  encodeElement,
  encodeOid,
  encodeTime,
  encodeUnsignedInteger,
  readTopElement,
} from './der.ts';

const SUBJECT_ALT_NAME = encodeOid('2.5.29.17');
const CRITICAL = Uint8Array.of(TAG.BOOLEAN, 1, 0xff);
const ECDSA_WITH_SHA256 = encodeElement(TAG.SEQUENCE, encodeOid('1.2.840.10045.4.3.2'));
const VERSION_3 = encodeElement(contextTag(0, true), encodeUnsignedInteger(Uint8Array.of(2)));
const URI_NAME = contextTag(6, false);

/** What varies from one workload certificate to the next. */
export interface WorkloadCertificateFields {
  /** Big-endian magnitude; encoded as a positive INTEGER. */
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The workload's SubjectPublicKeyInfo, DER. */
  readonly subjectPublicKeyInfo: Uint8Array;
  /** The SPIFFE ID, the certificate's only name. */
  readonly uri: string;
}

export class WorkloadCertificateTemplate {
  /** signature AlgorithmIdentifier then issuer Name: between the serial and the validity. */
  readonly #algorithmAndIssuer: Buffer;
  readonly #subject: Uint8Array;
  readonly #extensionsBeforeName: Buffer;
  readonly #extensionsAfterName: Uint8Array;

  constructor(
    issuer: Uint8Array,
    subject: Uint8Array,
    extensionsBeforeName: Uint8Array[],
    extensionsAfterName: Uint8Array,
  ) {
    this.#algorithmAndIssuer = Buffer.concat([ECDSA_WITH_SHA256, issuer]);
    this.#subject = subject;
    this.#extensionsBeforeName = Buffer.concat(extensionsBeforeName);
    this.#extensionsAfterName = extensionsAfterName;
  }

  /** The template for certificates `signer` issues in `trustDomain` (subject `O=<trust domain>`). */
  static async create(
    signer: x509.X509Certificate,
    trustDomain: string,
  ): Promise<WorkloadCertificateTemplate> {
    const der = (ext: x509.Extension): Uint8Array => new Uint8Array(ext.rawData);
    return new WorkloadCertificateTemplate(
      subjectNameOf(new Uint8Array(signer.rawData)),
      new Uint8Array(new x509.Name(`O=${trustDomain}`).toArrayBuffer()),
      [
        der(new x509.BasicConstraintsExtension(false, undefined, true)),
        der(
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
            true,
          ),
        ),
        der(
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
        ),
      ],
      der(await x509.AuthorityKeyIdentifierExtension.create(signer)),
    );
  }

  /** The DER TBSCertificate, ready to be signed with ECDSA P-256 / SHA-256. */
  tbsCertificate(fields: WorkloadCertificateFields): Buffer {
    return encodeElement(
      TAG.SEQUENCE,
      VERSION_3,
      encodeUnsignedInteger(fields.serial),
      this.#algorithmAndIssuer,
      encodeElement(TAG.SEQUENCE, encodeTime(fields.notBefore), encodeTime(fields.notAfter)),
      this.#subject,
      fields.subjectPublicKeyInfo,
      encodeElement(
        contextTag(3, true),
        encodeElement(
          TAG.SEQUENCE,
          this.#extensionsBeforeName,
          subjectAltName(fields.uri),
          this.#extensionsAfterName,
        ),
      ),
    );
  }
}

/** The subject is empty of names (only the trust domain), so the SAN is critical (RFC 5280 §4.2.1.6). */
function subjectAltName(uri: string): Buffer {
  // IA5String: a SPIFFE ID is ASCII.
  if (!/^[\x20-\x7e]+$/.test(uri)) throw new RangeError(`not an ASCII URI: ${JSON.stringify(uri)}`);
  const names = encodeElement(TAG.SEQUENCE, encodeElement(URI_NAME, Buffer.from(uri, 'latin1')));
  return encodeElement(TAG.SEQUENCE, SUBJECT_ALT_NAME, CRITICAL, encodeElement(TAG.OCTET_STRING, names));
}

/** The signed certificate from its TBSCertificate and the signer's DER ECDSA signature. */
export function certificateDer(tbsCertificate: Uint8Array, signature: Uint8Array): Buffer {
  return encodeElement(TAG.SEQUENCE, tbsCertificate, ECDSA_WITH_SHA256, encodeBitString(signature));
}

/** PEM the way @peculiar/x509 writes it (64-column lines, no final newline), so chains look as before. */
export function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`;
}

/** The subject Name of a DER certificate, byte for byte (what its certificates' issuer must be). */
export function subjectNameOf(certificate: Uint8Array): Uint8Array {
  const [tbs] = childrenOf(certificate, readTopElement(certificate, TAG.SEQUENCE, 'Certificate'));
  if (tbs?.tag !== TAG.SEQUENCE) throw new Error('Certificate has no TBSCertificate');
  const fields = childrenOf(certificate, tbs);
  // version (optional), serial, signature, issuer, validity, subject
  const subject = fields[fields[0]?.tag === contextTag(0, true) ? 5 : 4];
  if (subject?.tag !== TAG.SEQUENCE) throw new Error('Certificate has no subject Name');
  return elementBytes(certificate, subject);
}
