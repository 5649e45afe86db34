/**
 * The certificate authority against real openssl: CSRs made by openssl, issued chains checked with
 * `openssl verify`, names and key usages read back with `openssl x509`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CertificateAuthority, CertificateRequestError, ROOT_CERT_FILE, ROOT_KEY_FILE } from './authority.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-ca-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
function file(name: string, text?: string): string {
  const p = path.join(work, `${n++}-${name}`);
  if (text !== undefined) fs.writeFileSync(p, text);
  return p;
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A P-256 key and a CSR for `san` (none when undefined), made by openssl. */
function csr(san: string | undefined): string {
  const key = file('key.pem');
  const args = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  args.push('-keyout', key, '-subj', '/O=test');
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`);
  return openssl(args);
}

function verify(root: string, chain: readonly string[]): string {
  const rootFile = file('root.pem', root);
  const leaf = file('leaf.pem', chain[0]);
  const between = chain.slice(1, -1);
  const args = ['verify', '-CAfile', rootFile];
  if (between.length > 0) args.push('-untrusted', file('untrusted.pem', between.join('\n')));
  return openssl([...args, leaf]);
}

const WEB = { namespace: 'shop', serviceAccount: 'web' };

describe('certificate authority', () => {
  it('creates its root once (key 0600) and loads the same root on the next start', async () => {
    const dir = path.join(work, 'state');
    const first = await CertificateAuthority.open({ stateDir: dir });
    assert.equal(fs.statSync(path.join(dir, ROOT_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, ROOT_CERT_FILE)).mode & 0o777, 0o600);
    const second = await CertificateAuthority.open({ stateDir: dir });
    assert.equal(second.rootPem, first.rootPem);
    const text = openssl(['x509', '-noout', '-text'], first.rootPem);
    assert.match(text, /Public-Key: \(256 bit\)/);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign/);
  });

  it('issues a certificate that openssl verifies, with exactly the SPIFFE ID and workload key usages', async () => {
    const ca = await CertificateAuthority.open({
      stateDir: path.join(work, 'issue'),
      workloadTtlMs: 120_000,
    });
    const issued = await ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/web'), WEB);
    assert.match(verify(ca.rootPem, issued.certChain), /OK/);
    assert.equal(issued.certChain.at(-1), ca.rootPem);
    const ext = openssl(
      ['x509', '-noout', '-ext', 'subjectAltName,keyUsage,extendedKeyUsage,basicConstraints'],
      issued.certChain[0],
    );
    assert.match(
      ext,
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\s/,
    );
    assert.doesNotMatch(ext, /DNS:|IP Address:|email:/);
    assert.match(ext, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(ext, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(ext, /CA:FALSE/);
    const lifetime = issued.notAfter.getTime() - Date.now();
    assert.ok(lifetime > 100_000 && lifetime <= 120_000, `lifetime ${lifetime} ms`);
  });

  it('gives a CSR without names the identity its credential proves', async () => {
    const ca = await CertificateAuthority.open({
      stateDir: path.join(work, 'noname'),
      trustDomain: 'example.org',
    });
    const issued = await ca.sign(csr(undefined), WEB);
    assert.match(verify(ca.rootPem, issued.certChain), /OK/);
    assert.match(
      openssl(['x509', '-noout', '-ext', 'subjectAltName'], issued.certChain[0]),
      /URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/web/,
    );
  });

  it('refuses a CSR asking for an identity the credential does not grant, or for extra names', async () => {
    const ca = await CertificateAuthority.open({ stateDir: path.join(work, 'refuse') });
    await assert.rejects(
      ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/admin'), WEB),
      (err: unknown) =>
        err instanceof CertificateRequestError &&
        /grants only spiffe:\/\/cluster.local\/ns\/shop\/sa\/web/.test(err.message),
    );
    await assert.rejects(
      ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/web,DNS:web.shop'), WEB),
      CertificateRequestError,
    );
    await assert.rejects(ca.sign('not a csr', WEB), CertificateRequestError);
  });

  it('refuses a CSR whose signature does not match its content', async () => {
    const ca = await CertificateAuthority.open({ stateDir: path.join(work, 'tamper') });
    const good = csr('URI:spiffe://cluster.local/ns/shop/sa/web');
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
    // Flip a bit of the signature, the last bytes of the request.
    der[der.length - 3] ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(ca.sign(tampered, WEB), /signature does not verify|not a PEM/);
  });

  it('refuses hostile CSRs with the error kind callers map to a status', async () => {
    const ca = await CertificateAuthority.open({ stateDir: path.join(work, 'hostile') });
    const kind = (expected: 'invalid' | 'forbidden', message?: RegExp) => (err: unknown) =>
      err instanceof CertificateRequestError &&
      err.kind === expected &&
      (message === undefined || message.test(err.message));
    const pem = (der: Uint8Array): string =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const good = csr('URI:spiffe://cluster.local/ns/shop/sa/web');
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s+/g, ''), 'base64');

    await assert.rejects(ca.sign('not a csr', WEB), kind('invalid', /not a PEM/));
    await assert.rejects(
      ca.sign(pem(Buffer.from('garbage bytes, not DER')), WEB),
      kind('invalid', /not a PEM/),
    );
    await assert.rejects(ca.sign(pem(der.subarray(0, der.length >> 1)), WEB), kind('invalid', /not a PEM/));
    const tampered = Buffer.from(der);
    tampered[tampered.length - 3] ^= 0x01;
    await assert.rejects(ca.sign(pem(tampered), WEB), kind('invalid', /signature does not verify/));
    const k1 = openssl(
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-nodes'].concat([
        '-keyout',
        file('k1.pem'),
        '-subj',
        '/O=test',
      ]),
    );
    await assert.rejects(ca.sign(k1, WEB), kind('invalid', /not usable/));
    await assert.rejects(
      ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/admin'), WEB),
      kind(
        'forbidden',
        /asks for url:spiffe:\/\/cluster.local\/ns\/shop\/sa\/admin; the credential grants only/,
      ),
    );
    await assert.rejects(
      ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/web,DNS:web.shop'), WEB),
      kind('forbidden'),
    );
    await assert.rejects(ca.sign(csr('DNS:web.shop'), WEB), kind('forbidden'));
    const many = Array.from({ length: 50 }, (_, i) => `DNS:n${i}.example`).join(',');
    await assert.rejects(ca.sign(csr(many), WEB), kind('forbidden', /n7\.example, and 42 more;/));
    await assert.rejects(ca.sign(good, WEB, 0), kind('invalid', /lifetime/));
  });

  it('issues for RSA, RSA-PSS and Ed25519 workload keys too', async () => {
    const ca = await CertificateAuthority.open({ stateDir: path.join(work, 'keytypes') });
    for (const keyArgs of [['rsa:2048'], ['rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], ['ed25519']]) {
      const request = openssl([
        'req',
        '-new',
        '-newkey',
        ...keyArgs,
        '-nodes',
        '-keyout',
        file('key.pem'),
        '-subj',
        '/O=test',
      ]);
      const issued = await ca.sign(request, WEB);
      assert.match(verify(ca.rootPem, issued.certChain), /OK/, keyArgs[0]);
    }
  });

  it("signs with an operator's plug-in intermediate; the chain verifies to the operator's root", async () => {
    const dir = path.join(work, 'plugin');
    fs.mkdirSync(dir);
    const rootKey = path.join(dir, 'root-key.pem');
    const rootCert = path.join(dir, 'root-cert.pem');
    openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', rootKey]
        .concat([
          '-out',
          rootCert,
          '-days',
          '30',
          '-subj',
          '/O=operator/CN=root',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
        ])
        .concat(['-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
    );
    const caKey = path.join(dir, 'ca-key.pem');
    const caCsr = path.join(dir, 'ca.csr');
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        caKey,
      ].concat(['-out', caCsr, '-subj', '/O=operator/CN=intermediate']),
    );
    const ext = file('ext.cnf', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    const caCert = path.join(dir, 'ca-cert.pem');
    openssl(
      [
        'x509',
        '-req',
        '-in',
        caCsr,
        '-CA',
        rootCert,
        '-CAkey',
        rootKey,
        '-CAcreateserial',
        '-days',
        '20',
      ].concat(['-extfile', ext, '-out', caCert]),
    );
    fs.writeFileSync(
      path.join(dir, 'cert-chain.pem'),
      fs.readFileSync(caCert, 'utf8') + fs.readFileSync(rootCert, 'utf8'),
    );

    const ca = await CertificateAuthority.open({ stateDir: path.join(work, 'unused'), pluginDir: dir });
    assert.equal(ca.rootPem.trim(), fs.readFileSync(rootCert, 'utf8').trim());
    const issued = await ca.sign(csr('URI:spiffe://cluster.local/ns/shop/sa/web'), WEB, 365 * 86_400_000);
    assert.equal(issued.certChain.length, 3, 'leaf, intermediate, root');
    assert.match(verify(ca.rootPem, issued.certChain), /OK/);
    // Never beyond the signer's own expiry.
    const signerEnd = new Date(
      openssl(['x509', '-noout', '-enddate', '-in', caCert]).split('=')[1],
    ).getTime();
    assert.ok(issued.notAfter.getTime() <= signerEnd);
    // The expiries the metrics report: the operator's root (30 days) and the intermediate (20 days).
    const rootEnd = new Date(openssl(['x509', '-noout', '-enddate', '-in', rootCert]).split('=')[1]);
    assert.equal(ca.rootNotAfter.getTime(), rootEnd.getTime());
    assert.equal(ca.signerNotAfter.getTime(), signerEnd);
    assert.ok(ca.signerNotAfter < ca.rootNotAfter);
    // A workload certificate from another CA does not verify against this root.
    const other = await CertificateAuthority.open({ stateDir: path.join(work, 'other') });
    const foreign = await other.sign(csr(undefined), WEB);
    assert.throws(() => verify(ca.rootPem, foreign.certChain));
  });

  it("keeps counting into its predecessor's issuance stats when reloaded", async () => {
    const dir = path.join(work, 'reload');
    const first = await CertificateAuthority.open({ stateDir: dir });
    // A self-made root signs workload certificates itself.
    assert.equal(first.signerNotAfter.getTime(), first.rootNotAfter.getTime());
    first.issuance.recordIssued('01', new Date(Date.now() + 60_000));
    const reloaded = await CertificateAuthority.open({ stateDir: dir, issuance: first.issuance });
    assert.equal(reloaded.issuance, first.issuance);
    assert.equal(reloaded.issuance.validCertificates().count, 1);
    const fresh = await CertificateAuthority.open({ stateDir: dir });
    assert.equal(fresh.issuance.issued, 0);
  });

  it('names a key file that is not a PKCS#8 P-256 key (leaves are signed ECDSA P-256 only)', async () => {
    const dir = path.join(work, 'badkey');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, ROOT_CERT_FILE),
      (await CertificateAuthority.open({ stateDir: path.join(work, 'src') })).rootPem,
    );
    fs.writeFileSync(path.join(dir, ROOT_KEY_FILE), 'garbage');
    await assert.rejects(
      CertificateAuthority.open({ stateDir: dir }),
      new RegExp(`${ROOT_KEY_FILE}: expected a PKCS#8`),
    );
    fs.writeFileSync(
      path.join(dir, ROOT_KEY_FILE),
      openssl(['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']),
    );
    await assert.rejects(
      CertificateAuthority.open({ stateDir: dir }),
      new RegExp(`${ROOT_KEY_FILE}: not an ECDSA P-256 private key`),
    );
  });

  it("refuses plug-in files whose key is not the CA certificate's (a rotation caught half-way)", async () => {
    const dir = path.join(work, 'plugin-mismatch');
    fs.mkdirSync(dir);
    const make = (name: string): { key: string; cert: string } => {
      const key = path.join(dir, `${name}-key.pem`);
      const cert = path.join(dir, `${name}-cert.pem`);
      openssl(
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key]
          .concat(['-out', cert, '-days', '2', '-subj', `/O=${name}`])
          .concat(['-addext', 'basicConstraints=critical,CA:TRUE']),
      );
      return { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') };
    };
    const a = make('a');
    const b = make('b');
    fs.writeFileSync(path.join(dir, 'ca-cert.pem'), b.cert);
    fs.writeFileSync(path.join(dir, 'root-cert.pem'), b.cert);
    fs.writeFileSync(path.join(dir, 'ca-key.pem'), a.key);
    await assert.rejects(
      CertificateAuthority.open({ stateDir: path.join(work, 'unused2'), pluginDir: dir }),
      /ca-key\.pem: not the key of .*ca-cert\.pem/,
    );
    fs.writeFileSync(path.join(dir, 'ca-key.pem'), b.key);
    await CertificateAuthority.open({ stateDir: path.join(work, 'unused2'), pluginDir: dir });
  });
});
