/**
 * PKCS#10 certificate signing requests (RFC 2986), read for the three things the CA needs: the public key,
 * the names asked for (subjectAltName in the extensionRequest attribute), and the self-signature that proves
 * the requester holds the private key. Everything else in a CSR is ignored, because nothing else from it
 * reaches the certificate.
 *
 * The input is untrusted: parsing throws `DerError` on anything malformed; checking the signature never
 * throws, it answers false.
 */
import { createPublicKey, constants, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  DerError,
  TAG,
  bitStringBytes,
  childrenOf,
  contentOf,
  contextTag,
  decodeOid,
  decodeSmallInteger,
  elementBytes,
  readTopElement,
} from './der.ts';
import type { DerElement } from './der.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';

/** A subjectAltName entry, named as @peculiar/x509 names them (for messages and comparison). */
export interface RequestedName {
  readonly type: 'url' | 'dns' | 'email' | 'ip' | 'dn' | 'id' | 'other';
  readonly value: string;
}

export interface AlgorithmIdentifier {
  readonly oid: string;
  /** The parameters element, DER, when present. */
  readonly parameters: Uint8Array | undefined;
}

export interface CertificationRequest {
  /** The DER CertificationRequestInfo: the bytes the signature covers. */
  readonly info: Uint8Array;
  /** The requester's SubjectPublicKeyInfo, DER, as sent. */
  readonly subjectPublicKeyInfo: Uint8Array;
  /** The SubjectPublicKeyInfo's algorithm (key type, and curve for EC keys). */
  readonly publicKeyAlgorithm: AlgorithmIdentifier;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Uint8Array;
  /** Every subjectAltName entry of every extensionRequest. */
  readonly requestedNames: readonly RequestedName[];
}

const PEM =
  /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]*)-----END (NEW )?CERTIFICATE REQUEST-----/;

/** The DER inside a "CERTIFICATE REQUEST" PEM block. */
export function csrPemToDer(pem: string): Buffer {
  const match = PEM.exec(pem);
  if (match === null) throw new DerError('no "CERTIFICATE REQUEST" PEM block');
  const der = Buffer.from(match[2].replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new DerError('empty PEM block');
  return der;
}

export function parseCertificationRequest(der: Uint8Array): CertificationRequest {
  const top = childrenOf(der, readTopElement(der, TAG.SEQUENCE, 'CertificationRequest'));
  if (top.length !== 3) throw new DerError(`CertificationRequest has ${top.length} parts, not 3`);
  const [infoEl, algorithmEl, signatureEl] = top;
  if (infoEl.tag !== TAG.SEQUENCE) throw new DerError('CertificationRequestInfo is not a SEQUENCE');
  const info = childrenOf(der, infoEl);
  // The attributes are required by RFC 2986 but some encoders drop an empty set.
  if (info.length !== 3 && info.length !== 4)
    throw new DerError(`CertificationRequestInfo has ${info.length} parts`);
  const [versionEl, subjectEl, spkiEl, attributesEl] = info;
  if (versionEl.tag !== TAG.INTEGER || decodeSmallInteger(contentOf(der, versionEl)) !== 0)
    throw new DerError('CertificationRequestInfo version is not 0');
  if (subjectEl.tag !== TAG.SEQUENCE) throw new DerError('subject is not a Name');
  const publicKeyAlgorithm = readSubjectPublicKeyInfo(der, spkiEl);
  if (attributesEl !== undefined && attributesEl.tag !== contextTag(0, true))
    throw new DerError('attributes are not [0] IMPLICIT SET OF');
  return {
    info: elementBytes(der, infoEl),
    subjectPublicKeyInfo: elementBytes(der, spkiEl),
    publicKeyAlgorithm,
    signatureAlgorithm: readAlgorithmIdentifier(der, algorithmEl),
    signature: bitStringBytes(der, signatureEl),
    requestedNames: attributesEl === undefined ? [] : readRequestedNames(der, attributesEl),
  };
}

function readSubjectPublicKeyInfo(der: Uint8Array, el: DerElement): AlgorithmIdentifier {
  if (el.tag !== TAG.SEQUENCE) throw new DerError('subjectPKInfo is not a SEQUENCE');
  const parts = childrenOf(der, el);
  if (parts.length !== 2) throw new DerError('subjectPKInfo has the wrong shape');
  if (parts[1].tag !== TAG.BIT_STRING) throw new DerError('subjectPublicKey is not a BIT STRING');
  return readAlgorithmIdentifier(der, parts[0]);
}

function readAlgorithmIdentifier(der: Uint8Array, el: DerElement): AlgorithmIdentifier {
  const parts = algorithmParts(der, el);
  return {
    oid: decodeOid(contentOf(der, parts[0])),
    parameters: parts[1] === undefined ? undefined : elementBytes(der, parts[1]),
  };
}

function readRequestedNames(der: Uint8Array, attributes: DerElement): RequestedName[] {
  const names: RequestedName[] = [];
  for (const attribute of childrenOf(der, attributes)) {
    if (attribute.tag !== TAG.SEQUENCE) throw new DerError('Attribute is not a SEQUENCE');
    const parts = childrenOf(der, attribute);
    if (parts.length !== 2 || parts[0].tag !== TAG.OID || parts[1].tag !== TAG.SET)
      throw new DerError('Attribute has the wrong shape');
    if (decodeOid(contentOf(der, parts[0])) !== EXTENSION_REQUEST) continue;
    for (const extensions of childrenOf(der, parts[1])) {
      if (extensions.tag !== TAG.SEQUENCE) throw new DerError('Extensions is not a SEQUENCE');
      for (const extension of childrenOf(der, extensions)) readExtensionNames(der, extension, names);
    }
  }
  return names;
}

function readExtensionNames(der: Uint8Array, extension: DerElement, names: RequestedName[]): void {
  if (extension.tag !== TAG.SEQUENCE) throw new DerError('Extension is not a SEQUENCE');
  const parts = childrenOf(der, extension);
  const value = parts[parts.length - 1];
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts[0].tag !== TAG.OID ||
    (parts.length === 3 && parts[1].tag !== TAG.BOOLEAN) ||
    value.tag !== TAG.OCTET_STRING
  )
    throw new DerError('Extension has the wrong shape');
  if (decodeOid(contentOf(der, parts[0])) !== SUBJECT_ALT_NAME) return;
  const generalNames = contentOf(der, value);
  for (const name of childrenOf(generalNames, readTopElement(generalNames, TAG.SEQUENCE, 'GeneralNames')))
    names.push(generalName(generalNames, name));
}

function generalName(buf: Uint8Array, el: DerElement): RequestedName {
  const content = contentOf(buf, el);
  switch (el.tag) {
    case contextTag(1, false):
      return { type: 'email', value: Buffer.from(content).toString('latin1') };
    case contextTag(2, false):
      return { type: 'dns', value: Buffer.from(content).toString('latin1') };
    case contextTag(6, false):
      return { type: 'url', value: Buffer.from(content).toString('latin1') };
    case contextTag(7, false):
      return { type: 'ip', value: ipText(content) };
    case contextTag(4, true):
      return { type: 'dn', value: Buffer.from(content).toString('hex') };
    case contextTag(8, false):
      return { type: 'id', value: decodeOid(content) };
    default:
      return { type: 'other', value: Buffer.from(elementBytes(buf, el)).toString('hex') };
  }
}

function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  const hex = Buffer.from(bytes).toString('hex');
  return bytes.length === 16 ? (hex.match(/.{4}/g) ?? []).join(':') : hex;
}

// --- the self-signature ---

const HASHES: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const ECDSA: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};
const RSA_PKCS1: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const RSA_PSS = '1.2.840.113549.1.1.10';
const MGF1 = '1.2.840.113549.1.1.8';
const ED25519 = '1.3.101.112';
/** Key types by SubjectPublicKeyInfo algorithm; read from the DER because asking a KeyObject costs more. */
const KEY_TYPES: Readonly<Record<string, string>> = {
  '1.2.840.10045.2.1': 'ec',
  '1.2.840.113549.1.1.1': 'rsa',
  [RSA_PSS]: 'rsa-pss',
  [ED25519]: 'ed25519',
};
/** The curves WebCrypto (what this CA accepted before) knows. */
const CURVES: Readonly<Record<string, string>> = {
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
};
const NULL = Uint8Array.of(TAG.NULL, 0);

/** How to check a request's signature: node:crypto `verify`'s algorithm and key options. */
export interface SignatureCheck {
  readonly hash: string | null;
  readonly key: KeyObject;
  readonly padding?: number;
  readonly saltLength?: number;
}

/**
 * The requester's key and how its signature algorithm is checked; throws `DerError` when the key cannot be
 * read or does not fit the algorithm (ECDSA on P-256/384/521, RSA PKCS#1 v1.5 or PSS, Ed25519).
 */
export function signatureCheck(request: CertificationRequest): SignatureCheck {
  const { keyType, curve } = keyTypeOf(request.publicKeyAlgorithm);
  let key: KeyObject;
  try {
    // Also checks that the key is what its algorithm identifier says.
    key = createPublicKey({ key: Buffer.from(request.subjectPublicKeyInfo), format: 'der', type: 'spki' });
  } catch (err) {
    throw new DerError(`unreadable public key: ${(err as Error).message}`);
  }
  const { oid, parameters } = request.signatureAlgorithm;
  const absentOrNull = parameters === undefined || Buffer.from(parameters).equals(NULL);
  if (oid in ECDSA && absentOrNull) {
    if (keyType !== 'ec' || curve === undefined)
      throw new DerError(`an ECDSA signature needs a P-256, P-384 or P-521 key, not ${keyType}`);
    return { hash: ECDSA[oid], key };
  }
  if (oid in RSA_PKCS1 && absentOrNull) {
    if (keyType !== 'rsa') throw new DerError(`an RSA signature needs an RSA key, not ${keyType}`);
    return { hash: RSA_PKCS1[oid], key, padding: constants.RSA_PKCS1_PADDING };
  }
  if (oid === RSA_PSS) {
    if (keyType !== 'rsa' && keyType !== 'rsa-pss')
      throw new DerError(`an RSA-PSS signature needs an RSA key, not ${keyType}`);
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, ...pssParameters(parameters) };
  }
  if (oid === ED25519 && parameters === undefined) {
    if (keyType !== 'ed25519')
      throw new DerError(`an Ed25519 signature needs an Ed25519 key, not ${keyType}`);
    return { hash: null, key };
  }
  throw new DerError(`unsupported signature algorithm ${oid}`);
}

function keyTypeOf(algorithm: AlgorithmIdentifier): { keyType: string; curve?: string } {
  const keyType = KEY_TYPES[algorithm.oid] ?? algorithm.oid;
  if (keyType !== 'ec') return { keyType };
  const parameters = algorithm.parameters;
  // Only named curves: explicit curve parameters are refused (RFC 5480 forbids them too).
  if (parameters === undefined || parameters[0] !== TAG.OID)
    return { keyType: 'ec with explicit or no curve' };
  const oid = decodeOid(contentOf(parameters, readTopElement(parameters, TAG.OID, 'namedCurve')));
  const curve = CURVES[oid];
  return curve === undefined ? { keyType: `ec on curve ${oid}` } : { keyType, curve };
}

/** RSASSA-PSS-params (RFC 4055): hash, MGF1 with the same hash, salt length, trailer 1. */
function pssParameters(parameters: Uint8Array | undefined): { hash: string; saltLength: number } {
  if (parameters === undefined) throw new DerError('RSA-PSS without parameters');
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let saltLength = 20;
  for (const field of childrenOf(parameters, readTopElement(parameters, TAG.SEQUENCE, 'RSASSA-PSS-params'))) {
    const inner = childrenOf(parameters, field);
    if (inner.length !== 1) throw new DerError('RSASSA-PSS-params field has the wrong shape');
    const el = inner[0];
    if (field.tag === contextTag(0, true)) hash = hashOf(parameters, el);
    else if (field.tag === contextTag(1, true)) {
      const mgf = algorithmParts(parameters, el);
      if (mgf.length !== 2 || decodeOid(contentOf(parameters, mgf[0])) !== MGF1)
        throw new DerError('RSA-PSS mask generation is not MGF1');
      mgfHash = hashOf(parameters, mgf[1]);
    } else if (field.tag === contextTag(2, true)) {
      if (el.tag !== TAG.INTEGER) throw new DerError('RSA-PSS salt length is not an INTEGER');
      saltLength = decodeSmallInteger(contentOf(parameters, el));
    } else if (field.tag === contextTag(3, true)) {
      if (el.tag !== TAG.INTEGER || decodeSmallInteger(contentOf(parameters, el)) !== 1)
        throw new DerError('RSA-PSS trailer field is not 1');
    } else throw new DerError('unknown RSASSA-PSS-params field');
  }
  // node:crypto uses the signature's hash for MGF1 too.
  if (mgfHash !== hash) throw new DerError(`RSA-PSS with ${hash} but MGF1 with ${mgfHash}`);
  return { hash, saltLength };
}

function algorithmParts(buf: Uint8Array, el: DerElement): DerElement[] {
  if (el.tag !== TAG.SEQUENCE) throw new DerError('AlgorithmIdentifier is not a SEQUENCE');
  const parts = childrenOf(buf, el);
  if (parts.length < 1 || parts.length > 2 || parts[0].tag !== TAG.OID)
    throw new DerError('AlgorithmIdentifier has the wrong shape');
  return parts;
}

function hashOf(buf: Uint8Array, el: DerElement): string {
  const parts = algorithmParts(buf, el);
  if (parts.length === 2 && parts[1].tag !== TAG.NULL) throw new DerError('hash parameters are not NULL');
  const hash = HASHES[decodeOid(contentOf(buf, parts[0]))];
  if (hash === undefined) throw new DerError('unsupported hash');
  return hash;
}

/** Whether the request is signed by the key it carries; false also when the signature is malformed. */
export function verifyCertificationRequest(
  request: CertificationRequest,
  check: SignatureCheck,
): Promise<boolean> {
  const { hash, key, padding, saltLength } = check;
  return new Promise((resolve) => {
    try {
      // With a callback node:crypto verifies on the thread pool, off the event loop.
      verify(hash, request.info, { key, padding, saltLength }, request.signature, (err, ok) =>
        resolve(err === null && ok),
      );
    } catch {
      resolve(false);
    }
  });
}
