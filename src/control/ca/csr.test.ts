/**
 * The CSR reader against requests made by openssl (every key type the CA accepts), and against hostile
 * input: garbage, every truncation, every single-byte change, keys that do not fit the algorithm.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { csrPemToDer, parseCertificationRequest, signatureCheck, verifyCertificationRequest } from './csr.ts';
import type { CertificationRequest } from './csr.ts';
import { DerError } from './der.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-csr-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** A CSR made by openssl with `keyArgs` (and `san` as its subjectAltName), DER. */
function opensslCsr(keyArgs: string[], san?: string): Buffer {
  const args = [
    'req',
    '-new',
    ...keyArgs,
    '-nodes',
    '-keyout',
    path.join(work, 'key.pem'),
    '-subj',
    '/O=test',
  ];
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`);
  const pem = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  return csrPemToDer(pem);
}

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

async function accepted(der: Uint8Array): Promise<boolean> {
  const request = parseCertificationRequest(der);
  return verifyCertificationRequest(request, signatureCheck(request));
}

describe('certification request reader', () => {
  const keyTypes: Record<string, string[]> = {
    'ECDSA P-256 / SHA-256': EC_P256,
    'ECDSA P-384 / SHA-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384'],
    'ECDSA P-521 / SHA-512': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521', '-sha512'],
    'RSA PKCS#1 / SHA-256': ['-newkey', 'rsa:2048'],
    'RSA-PSS signature with an RSA key': ['-newkey', 'rsa:2048', '-sigopt', 'rsa_padding_mode:pss'],
    'RSA-PSS key, SHA-384, salt 20': [
      '-newkey',
      'rsa-pss',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-sha384',
      '-sigopt',
      'rsa_pss_saltlen:20',
    ],
    Ed25519: ['-newkey', 'ed25519'],
  };
  for (const [name, args] of Object.entries(keyTypes)) {
    it(`accepts a self-signed ${name} request`, async () => {
      assert.equal(await accepted(opensslCsr(args)), true);
    });
  }

  it('refuses curves and algorithms the CA never accepted', () => {
    for (const args of [
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
      ['-newkey', 'ed448'],
    ]) {
      const request = parseCertificationRequest(opensslCsr(args));
      assert.throws(() => signatureCheck(request), DerError, args.join(' '));
    }
  });

  it('refuses a key that does not fit the signature algorithm', () => {
    const ec = parseCertificationRequest(opensslCsr(EC_P256));
    const ed = parseCertificationRequest(opensslCsr(['-newkey', 'ed25519']));
    const mixed: CertificationRequest = { ...ec, signatureAlgorithm: ed.signatureAlgorithm };
    assert.throws(() => signatureCheck(mixed), /Ed25519 signature needs an Ed25519 key/);
    const mixed2: CertificationRequest = { ...ed, signatureAlgorithm: ec.signatureAlgorithm };
    assert.throws(() => signatureCheck(mixed2), /ECDSA signature needs/);
  });

  it('reads every subjectAltName entry', () => {
    const der = opensslCsr(
      EC_P256,
      'URI:spiffe://cluster.local/ns/a/sa/b,DNS:b.a,email:b@a.example,IP:10.1.2.3,IP:::1,RID:1.2.3.4',
    );
    assert.deepEqual(parseCertificationRequest(der).requestedNames, [
      { type: 'url', value: 'spiffe://cluster.local/ns/a/sa/b' },
      { type: 'dns', value: 'b.a' },
      { type: 'email', value: 'b@a.example' },
      { type: 'ip', value: '10.1.2.3' },
      { type: 'ip', value: '0000:0000:0000:0000:0000:0000:0000:0001' },
      { type: 'id', value: '1.2.3.4' },
    ]);
    assert.deepEqual(parseCertificationRequest(opensslCsr(EC_P256)).requestedNames, []);
  });

  it('keeps the public key and the signed bytes as sent', () => {
    const der = opensslCsr(EC_P256);
    const request = parseCertificationRequest(der);
    const header = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7f);
    assert.deepEqual(Buffer.from(request.info), der.subarray(header, header + request.info.length));
    const key = createPublicKey(fs.readFileSync(path.join(work, 'key.pem')));
    assert.deepEqual(Buffer.from(request.subjectPublicKeyInfo), key.export({ type: 'spki', format: 'der' }));
    assert.equal(request.signatureAlgorithm.oid, '1.2.840.10045.4.3.2');
  });

  it('refuses garbage with DerError, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        assert.throws(() => parseCertificationRequest(bytes), DerError);
      }),
    );
    assert.throws(() => csrPemToDer('not a csr'), DerError);
    assert.throws(
      () => csrPemToDer('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
      DerError,
    );
    assert.throws(
      () => csrPemToDer('-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----'),
      DerError,
    );
  });

  it('refuses every truncation of a valid request', () => {
    const der = opensslCsr(EC_P256, 'URI:spiffe://cluster.local/ns/a/sa/b');
    for (let n = 0; n < der.length; n++)
      assert.throws(
        () => parseCertificationRequest(der.subarray(0, n)),
        DerError,
        `${n} of ${der.length} bytes`,
      );
  });

  it('accepts no request with any single byte changed', async () => {
    const der = opensslCsr(EC_P256, 'URI:spiffe://cluster.local/ns/a/sa/b');
    assert.equal(await accepted(der), true);
    for (let i = 0; i < der.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const changed = Buffer.from(der);
        changed[i] ^= flip;
        let ok: boolean;
        try {
          ok = await accepted(changed);
        } catch (err) {
          assert.ok(err instanceof DerError, `byte ${i} ^ ${flip}: ${String(err)}`);
          ok = false;
        }
        assert.equal(ok, false, `byte ${i} ^ ${flip} accepted`);
      }
    }
  });
});
