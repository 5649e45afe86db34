/**
 * Istio's CreateCertificate over a real gRPC socket: a grpc-js client sends openssl-made CSRs with bearer
 * tokens; issued chains are checked with `openssl verify` and `openssl x509`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { createLogger } from '../../core/logger.ts';
import { CertificateAuthority } from './authority.ts';
import { certificateServiceDefinition, certificateServiceHandlers } from './certificate-service.ts';
import {
  CREATE_CERTIFICATE_PATH,
  decodeCertificateResponse,
  encodeCertificateRequest,
} from '../../api/istio/ca-messages.ts';
import { WorkloadTokens } from './workload-tokens.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-ca-svc-'));

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

let n = 0;
function csr(san?: string): string {
  const args = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  args.push('-keyout', path.join(work, `key-${n++}.pem`), '-subj', '/O=workload');
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`);
  return openssl(args);
}

describe('IstioCertificateService/CreateCertificate', { timeout: 30_000 }, () => {
  let server: Server;
  let client: Client;
  let ca: CertificateAuthority;
  const tokens = new WorkloadTokens();
  const webToken = tokens.issue({ namespace: 'shop', serviceAccount: 'web' });

  before(async () => {
    ca = await CertificateAuthority.open({ stateDir: path.join(work, 'state') });
    server = new Server();
    server.addService(
      certificateServiceDefinition,
      certificateServiceHandlers({
        authority: ca,
        tokens,
        maxTtlMs: 3_600_000,
        logger: createLogger('ca-test'),
      }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  after(() => {
    client?.close();
    server?.forceShutdown();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const call = (
    body: Uint8Array,
    token?: string,
  ): Promise<{ err: ServiceError | null; chain?: string[] }> => {
    const md = new Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve) =>
      client.makeUnaryRequest(
        CREATE_CERTIFICATE_PATH,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => decodeCertificateResponse(b),
        body,
        md,
        (err, chain) => resolve({ err, chain }),
      ),
    );
  };
  const create = (csrPem: string, token?: string, validitySeconds = 0) =>
    call(encodeCertificateRequest({ csr: csrPem, validitySeconds }), token);

  it("signs the caller's CSR for the identity its token grants; the chain verifies with openssl", async () => {
    const { err, chain } = await create(csr('URI:spiffe://cluster.local/ns/shop/sa/web'), webToken, 600);
    assert.equal(err, null);
    assert.equal(chain?.length, 2);
    const root = path.join(work, 'root.pem');
    const leaf = path.join(work, 'leaf.pem');
    fs.writeFileSync(root, chain[1]);
    fs.writeFileSync(leaf, chain[0]);
    assert.match(openssl(['verify', '-CAfile', root, leaf]), /OK/);
    assert.equal(chain[1], ca.rootPem);
    assert.match(
      openssl(['x509', '-noout', '-ext', 'subjectAltName'], chain[0]),
      /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/,
    );
    // validity_duration is honoured (600 s), and capped by the service's maximum (1 h).
    const end = (pem: string): number =>
      new Date(openssl(['x509', '-noout', '-enddate'], pem).trim().split('=')[1]).getTime();
    const lifetime = end(chain[0]) - Date.now();
    assert.ok(lifetime > 590_000 && lifetime <= 600_000, `lifetime ${lifetime}`);
    const long = await create(csr(), webToken, 86_400 * 30);
    const capped = end(long.chain![0]) - Date.now();
    assert.ok(capped > 3_590_000 && capped <= 3_600_000, `capped lifetime ${capped}`);
  });

  it('refuses a CSR asking for an identity the token does not grant: PERMISSION_DENIED', async () => {
    const { err } = await create(csr('URI:spiffe://cluster.local/ns/shop/sa/admin'), webToken);
    assert.equal(err?.code, status.PERMISSION_DENIED);
    assert.match(err.details, /grants only spiffe:\/\/cluster.local\/ns\/shop\/sa\/web/);
  });

  it('refuses callers without a valid credential: UNAUTHENTICATED', async () => {
    assert.equal((await create(csr(), undefined)).err?.code, status.UNAUTHENTICATED);
    assert.equal((await create(csr(), 'forged-token')).err?.code, status.UNAUTHENTICATED);
    const temporary = tokens.issue({ namespace: 'shop', serviceAccount: 'batch' });
    assert.equal((await create(csr(), temporary)).err, null);
    tokens.revoke(temporary);
    assert.equal((await create(csr(), temporary)).err?.code, status.UNAUTHENTICATED);
  });

  it('answers garbage with INVALID_ARGUMENT and keeps serving', async () => {
    assert.equal((await create('not a csr', webToken)).err?.code, status.INVALID_ARGUMENT);
    assert.equal((await call(Buffer.from([0x0a, 0xff, 0xff]), webToken)).err?.code, status.INVALID_ARGUMENT);
    assert.equal((await create(csr(), webToken)).err, null);
  });

  it('counts every request by its outcome, and the issued certificates still valid', () => {
    const stats = ca.issuance;
    // The tests above, in order: 2 issued; 1 forbidden; 3 unauthenticated and 1 issued; 2 invalid and 1 issued.
    assert.equal(stats.csrReceived, 10);
    assert.equal(stats.issued, 4);
    assert.deepEqual(stats.refused, { unauthenticated: 3, invalid: 2, forbidden: 1, error: 0 });
    const valid = stats.validCertificates();
    assert.equal(valid.count, 4);
    // The earliest is the first one, issued for 600 s.
    const left = valid.earliestExpiryMs! - Date.now();
    assert.ok(left > 500_000 && left <= 600_000, `earliest expiry in ${left} ms`);
  });
});
