/**
 * A PKCS#10 certificate signing request for a fresh ECDSA P-256 key, DER-encoded by hand: the request has
 * a fixed shape (a one-attribute subject, the public key, no requested extensions — the CA takes the
 * identity from the workload's credential, never from the CSR), so a few lines of DER keep an X.509
 * library (and its memory) out of every sidecar.
 */
import { generateKeyPair, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

const OID_ORGANIZATION = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x0a]);
const OID_ECDSA_SHA256 = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else header = [tag, 0x82, n >> 8, n & 0xff]; // a CSR is far below 64 KiB
  return Buffer.concat([Buffer.from(header), content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));

export interface KeyAndCsr {
  /** PKCS#8 PEM; stays in the workload. */
  readonly privateKeyPem: string;
  readonly csrPem: string;
}

function pem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${body.trimEnd()}\n-----END ${label}-----\n`;
}

/** The DER of a CSR for `publicKey`, self-signed with `privateKey` (ECDSA with SHA-256). */
export function csrDer(publicKey: KeyObject, privateKey: KeyObject, organization: string): Buffer {
  const subject = seq(tlv(0x31, seq(OID_ORGANIZATION, tlv(0x0c, Buffer.from(organization, 'utf8')))));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = seq(
    Buffer.from([0x02, 0x01, 0x00]), // version 0
    subject,
    spki,
    Buffer.from([0xa0, 0x00]), // no attributes
  );
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return seq(info, seq(OID_ECDSA_SHA256), tlv(0x03, Buffer.concat([Buffer.from([0x00]), signature])));
}

/** A new P-256 key and a CSR for it. */
export async function newKeyAndCsr(organization = 'weft-workload'): Promise<KeyAndCsr> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>(
    (resolve, reject) =>
      generateKeyPair('ec', { namedCurve: 'prime256v1' }, (err, pub, priv) =>
        err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }),
      ),
  );
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: pem('CERTIFICATE REQUEST', csrDer(publicKey, privateKey, organization)),
  };
}
