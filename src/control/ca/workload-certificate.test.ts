/**
 * The template's certificates against the ones @peculiar/x509 made before it (the same TBSCertificate,
 * byte for byte, for the same inputs), against node:crypto's X509Certificate, and against `openssl verify`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  KeyObject,
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  webcrypto,
} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TAG, childrenOf, elementBytes, readTopElement } from './der.ts';
import {
  WorkloadCertificateTemplate,
  certificateDer,
  certificatePem,
  subjectNameOf,
} from './workload-certificate.ts';
import type { WorkloadCertificateFields } from './workload-certificate.ts';

x509.cryptoProvider.set(webcrypto as never);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-leaf-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const URI = 'spiffe://cluster.local/ns/shop/sa/web';

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** A certificate the way CertificateAuthority made them with @peculiar/x509 alone. */
async function reference(
  signer: x509.X509Certificate,
  signerKey: webcrypto.CryptoKey,
  trustDomain: string,
  f: WorkloadCertificateFields,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(f.serial).toString('hex'),
    subject: new x509.Name(`O=${trustDomain}`),
    issuer: signer.subjectName,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    signingAlgorithm: SIGNING,
    publicKey: f.subjectPublicKeyInfo,
    signingKey: signerKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: f.uri }], true),
      await x509.AuthorityKeyIdentifierExtension.create(signer),
    ],
  });
}

function tbsOf(certificate: Uint8Array): Buffer {
  const [tbs] = childrenOf(certificate, readTopElement(certificate, TAG.SEQUENCE, 'Certificate'));
  return Buffer.from(elementBytes(certificate, tbs));
}

describe('workload certificate template', () => {
  let root: x509.X509Certificate;
  let rootKeys: webcrypto.CryptoKeyPair;
  let rootPrivate: KeyObject;
  const workloadKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const fields: WorkloadCertificateFields = {
    serial: Buffer.from('3a0102030405060708090a0b0c0d0e0f', 'hex'),
    notBefore: new Date('2026-05-01T10:00:00.123Z'),
    notAfter: new Date('2026-05-02T10:01:00.456Z'),
    subjectPublicKeyInfo: spkiOf(workloadKey),
    uri: URI,
  };

  before(async () => {
    rootKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'O=cluster.local, CN=Weft root CA',
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2036-01-01T00:00:00Z'),
      signingAlgorithm: SIGNING,
      keys: rootKeys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
      ],
    });
    rootPrivate = KeyObject.from(rootKeys.privateKey);
  });

  const variants: Record<string, Partial<WorkloadCertificateFields>> = {
    'an EC P-256 key': {},
    'a serial with leading zero bytes': { serial: Buffer.from('00007f0102030405060708090a0b0c0d', 'hex') },
    'a serial whose top bit is set': { serial: Buffer.from('ff0102030405060708090a0b0c0d0e0f', 'hex') },
    'a lifetime past 2049 (GeneralizedTime)': { notAfter: new Date('2051-02-03T04:05:06Z') },
    'an RSA key': {
      subjectPublicKeyInfo: spkiOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
    },
    'another trust domain': { uri: 'spiffe://example.org/ns/a/sa/b' },
  };
  for (const [name, change] of Object.entries(variants)) {
    it(`encodes the same TBSCertificate as @peculiar/x509 did, for ${name}`, async () => {
      const f = { ...fields, ...change };
      const trustDomain = new URL(f.uri).host;
      const template = await WorkloadCertificateTemplate.create(root, trustDomain);
      const expected = await reference(root, rootKeys.privateKey, trustDomain, f);
      assert.equal(
        template.tbsCertificate(f).toString('hex'),
        tbsOf(new Uint8Array(expected.rawData)).toString('hex'),
      );
    });
  }

  it('signs certificates node:crypto and openssl accept, with exactly the workload names and usages', async () => {
    const template = await WorkloadCertificateTemplate.create(root, 'cluster.local');
    const now = Date.now();
    const tbs = template.tbsCertificate({
      ...fields,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
    });
    const pem = certificatePem(
      certificateDer(tbs, sign('sha256', tbs, { key: rootPrivate, dsaEncoding: 'der' })),
    );
    const cert = new X509Certificate(pem);
    const rootCert = new X509Certificate(root.toString('pem'));
    assert.ok(cert.checkIssued(rootCert));
    assert.ok(cert.verify(rootCert.publicKey));
    assert.equal(cert.subjectAltName, `URI:${URI}`);
    assert.equal(cert.subject, 'O=cluster.local');
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.serialNumber, '3A0102030405060708090A0B0C0D0E0F');

    const rootFile = path.join(work, 'root.pem');
    fs.writeFileSync(rootFile, root.toString('pem'));
    const leafFile = path.join(work, 'leaf.pem');
    fs.writeFileSync(leafFile, pem);
    assert.match(openssl(['verify', '-CAfile', rootFile, leafFile]), /: OK/);
    const text = openssl(['x509', '-noout', '-text', '-in', leafFile]);
    const extensions = [...text.matchAll(/^ {12}(X509v3 [^:]+):( critical)? ?$/gm)].map(
      (m) => `${m[1]}${m[2] ?? ''}`,
    );
    assert.deepEqual(extensions, [
      'X509v3 Basic Constraints critical',
      'X509v3 Key Usage critical',
      'X509v3 Extended Key Usage',
      'X509v3 Subject Alternative Name critical',
      'X509v3 Authority Key Identifier',
    ]);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature, Key Encipherment\n/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication\n/);
    assert.match(
      text,
      new RegExp(`Subject Alternative Name: critical\\n\\s+URI:${URI.replace(/\//g, '\\/')}\\n`),
    );
    // Written as @peculiar/x509 writes PEM, so chains look as they did.
    assert.equal(pem, new x509.X509Certificate(pem).toString('pem'));
  });

  it("takes the issuer from an operator's intermediate byte for byte", async () => {
    const key = path.join(work, 'ca-key.pem');
    const cert = path.join(work, 'ca-cert.pem');
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
      ].concat(['-out', cert, '-days', '3', '-subj', '/C=DE/O=operator/OU=mesh/CN=intermediate', '-utf8']),
    );
    const signer = new x509.X509Certificate(fs.readFileSync(cert, 'utf8'));
    const issuer = Buffer.from(subjectNameOf(new Uint8Array(signer.rawData)));
    assert.deepEqual(issuer, Buffer.from(signer.subjectName.toArrayBuffer()));
    const signerKey = await webcrypto.subtle.importKey(
      'pkcs8',
      createPrivateKey(fs.readFileSync(key)).export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    const template = await WorkloadCertificateTemplate.create(signer, 'cluster.local');
    const expected = await reference(signer, signerKey, 'cluster.local', fields);
    assert.equal(
      template.tbsCertificate(fields).toString('hex'),
      tbsOf(new Uint8Array(expected.rawData)).toString('hex'),
    );
  });

  it('refuses a URI that an IA5String cannot carry', async () => {
    const template = await WorkloadCertificateTemplate.create(root, 'cluster.local');
    assert.throws(
      () => template.tbsCertificate({ ...fields, uri: 'spiffe://clüster/ns/a/sa/b' }),
      RangeError,
    );
  });
});
