// The mesh certificates the mTLS targets run with, made with the openssl command line: a root, and a
// server and a client certificate with SPIFFE URI SANs, as the mesh's CA issues them (P-256 ECDSA keys).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const BENCH_SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';
export const BENCH_CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
/**
 * nginx verifies a peer by DNS name or IP, not by URI SAN, so the server certificate also carries this
 * name: the nginx chain checks it where the Weft chain checks BENCH_SERVER_ID.
 */
export const BENCH_SERVER_DNS = 'server.bench.svc.cluster.local';

export interface BenchCert {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface BenchPki {
  readonly dir: string;
  /** The root certificate: the trust bundle of both sides. */
  readonly caFile: string;
  readonly server: BenchCert;
  readonly client: BenchCert;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

function ecKey(file: string, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], cwd);
}

function leaf(dir: string, name: string, sans: string): BenchCert {
  ecKey(`${name}.key`, dir);
  openssl(
    ['req', '-new', '-key', `${name}.key`, '-subj', `/O=cluster.local/CN=${name}`, '-out', `${name}.csr`],
    dir,
  );
  writeFileSync(
    path.join(dir, `${name}.ext`),
    `subjectAltName=${sans}\nbasicConstraints=critical,CA:FALSE\n` +
      'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  );
  return { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}.key`) };
}

/** Makes the root and both leaves in `dir` (created if missing). */
export function makeBenchPki(dir: string): BenchPki {
  mkdirSync(dir, { recursive: true });
  ecKey('root.key', dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'root.key',
      '-subj',
      '/O=cluster.local/CN=bench root',
      '-days',
      '2',
      '-sha256',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'root.pem',
    ],
    dir,
  );
  return {
    dir,
    caFile: path.join(dir, 'root.pem'),
    server: leaf(dir, 'server', `URI:${BENCH_SERVER_ID},DNS:${BENCH_SERVER_DNS}`),
    client: leaf(dir, 'client', `URI:${BENCH_CLIENT_ID}`),
  };
}
