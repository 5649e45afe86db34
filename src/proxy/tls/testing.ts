/**
 * Test certificates made with the openssl command line: a root CA, SPIFFE server and client certificates,
 * a client certificate from another CA and an expired one (signed with @peculiar/x509, since OpenSSL 3.0's
 * command line cannot back-date a certificate). For tests only.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
export const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
export const OTHER_ID = 'spiffe://cluster.local/ns/default/sa/other';

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly otherCaFile: string;
  /** URI SAN SERVER_ID, DNS localhost, IP 127.0.0.1. */
  readonly server: TestCert;
  /** Another server certificate with the same identity (a rotation). */
  readonly serverRotated: TestCert;
  /** A server certificate with URI SAN OTHER_ID. */
  readonly wrongSan: TestCert;
  /** URI SAN CLIENT_ID. */
  readonly client: TestCert;
  /** CLIENT_ID, signed by another CA. */
  readonly otherCaClient: TestCert;
  /** CLIENT_ID, expired yesterday. */
  readonly expiredClient: TestCert;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const key = `${name}.key`;
  const cert = `${name}.pem`;
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      `/O=weft/CN=${name}`,
      '-days',
      '30',
      '-out',
      cert,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, sans: string): TestCert {
  const key = `${name}.key`;
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
  openssl(['req', '-new', '-key', key, '-subj', `/O=weft/CN=${name}`, '-out', `${name}.csr`], dir);
  writeFileSync(
    path.join(dir, `${name}.ext`),
    `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '10',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  );
  return certFiles(dir, name);
}

function certFiles(dir: string, name: string): TestCert {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  return {
    certFile,
    keyFile,
    certPem: readFileSync(certFile, 'utf8'),
    keyPem: readFileSync(keyFile, 'utf8'),
  };
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A client certificate (CLIENT_ID) whose validity ended yesterday, signed by the CA in `dir`. */
async function makeExpired(dir: string, ca: { cert: string; key: string }): Promise<TestCert> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    pemBody(readFileSync(path.join(dir, ca.key), 'utf8')),
    alg,
    false,
    ['sign'],
  );
  const caCert = new x509.X509Certificate(readFileSync(path.join(dir, ca.cert), 'utf8'));
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const day = 86_400_000;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: 'O=weft, CN=expired',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 10 * day),
    notAfter: new Date(Date.now() - day),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: CLIENT_ID }]),
      new x509.BasicConstraintsExtension(false),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  writeFileSync(path.join(dir, 'expired.pem'), cert.toString('pem') + '\n');
  writeFileSync(path.join(dir, 'expired.key'), keyPem);
  return certFiles(dir, 'expired');
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-pki-'));
  const ca = makeCa(dir, 'root-ca');
  const other = makeCa(dir, 'other-ca');
  return {
    dir,
    caFile: path.join(dir, ca.cert),
    caPem: readFileSync(path.join(dir, ca.cert), 'utf8'),
    otherCaFile: path.join(dir, other.cert),
    server: makeLeaf(dir, 'server', ca, `URI:${SERVER_ID},DNS:localhost,IP:127.0.0.1`),
    serverRotated: makeLeaf(dir, 'server-rotated', ca, `URI:${SERVER_ID},DNS:localhost,IP:127.0.0.1`),
    wrongSan: makeLeaf(dir, 'wrong-san', ca, `URI:${OTHER_ID},DNS:localhost`),
    client: makeLeaf(dir, 'client', ca, `URI:${CLIENT_ID}`),
    otherCaClient: makeLeaf(dir, 'other-client', other, `URI:${CLIENT_ID}`),
    expiredClient: await makeExpired(dir, ca),
  };
}

/** A DownstreamTlsContext / UpstreamTlsContext `tls_certificates` entry for files. */
export function certificateFiles(c: TestCert): {
  certificate_chain: { filename: string };
  private_key: { filename: string };
} {
  return { certificate_chain: { filename: c.certFile }, private_key: { filename: c.keyFile } };
}

export const DOWNSTREAM_TLS_TYPE =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** A transport_socket with a DownstreamTlsContext. */
export function downstreamTransportSocket(context: Record<string, unknown>): Record<string, unknown> {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM_TLS_TYPE, ...context } };
}

/** A transport_socket with an UpstreamTlsContext. */
export function upstreamTransportSocket(context: Record<string, unknown>): Record<string, unknown> {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS_TYPE, ...context } };
}
