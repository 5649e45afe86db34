import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { CertificateAuthority } from '../../control/ca/authority.ts';
import {
  certificateServiceDefinition,
  certificateServiceHandlers,
} from '../../control/ca/certificate-service.ts';
import { WorkloadTokens } from '../../control/ca/workload-tokens.ts';
import { createLogger } from '../../core/logger.ts';
import { StatsStore } from '../stats/store.ts';
import { SecretManager } from '../tls/secrets.ts';
import type { TlsCertificateSecret } from '../tls/secrets.ts';
import { CertificateAgent } from './certificate-agent.ts';
import { WORKLOAD_SECRET } from '../../api/istio/mesh-names.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-agent-'));
const TTL_MS = 6000;

async function waitFor<T>(probe: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the certificate agent against the control plane CA', { timeout: 60_000 }, () => {
  let server: Server;
  let address: string;
  let ca: CertificateAuthority;
  const tokens = WorkloadTokens.open(work);
  const tokenFile = path.join(work, 'web.token');
  const agents: CertificateAgent[] = [];

  before(async () => {
    ca = await CertificateAuthority.open({ stateDir: work, workloadTtlMs: TTL_MS });
    server = new Server();
    server.addService(
      certificateServiceDefinition,
      certificateServiceHandlers({ authority: ca, tokens, logger: createLogger('ca-test') }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
    fs.writeFileSync(tokenFile, tokens.issue({ namespace: 'shop', serviceAccount: 'web' }) + '\n');
  });

  after(() => {
    for (const a of agents) a.stop();
    server.forceShutdown();
  });

  function agent(file: string, secrets: SecretManager, stats: StatsStore): CertificateAgent {
    const a = new CertificateAgent({
      caAddress: address,
      tokenFile: file,
      secrets,
      stats,
      backoff: undefined,
      logger: createLogger('agent-test'),
    });
    agents.push(a);
    return a;
  }

  it('gets a certificate for its key with exactly the identity its token grants, which openssl verifies', async () => {
    const secrets = new SecretManager();
    const a = agent(tokenFile, secrets, new StatsStore());
    await a.start();
    const secret = secrets.get(WORKLOAD_SECRET)?.value as TlsCertificateSecret;
    assert.equal(secret.kind, 'tls_certificate');
    const leaf = new X509Certificate(secret.certificateChain);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(secret.privateKey)));
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');
    assert.equal(a.current?.identity, 'spiffe://cluster.local/ns/shop/sa/web');
    // The chain the proxy presents stops below the root; the root is what peers trust.
    assert.equal(secret.certificateChain.match(/BEGIN CERTIFICATE/g)?.length, 1);
    const leafFile = path.join(work, 'leaf.pem');
    const rootFile = path.join(work, 'root.pem');
    fs.writeFileSync(leafFile, secret.certificateChain);
    fs.writeFileSync(rootFile, ca.rootPem);
    const out = execFileSync('openssl', ['verify', '-CAfile', rootFile, leafFile], { encoding: 'utf8' });
    assert.match(out, /: OK/);
  });

  it('renews at about half the lifetime, swapping the secret, before the old one expires', async () => {
    const secrets = new SecretManager();
    const stats = new StatsStore();
    const a = agent(tokenFile, secrets, stats);
    await a.start();
    const first = a.current!;
    const firstVersion = secrets.get(WORKLOAD_SECRET)!.version;
    await waitFor(() => a.current !== first, TTL_MS, 'a renewal');
    assert.notEqual(a.current!.serialNumber, first.serialNumber);
    assert.ok(secrets.get(WORKLOAD_SECRET)!.version > firstVersion);
    // Renewed while the first was still valid.
    assert.ok(stats.counter('agent.certificate.issued').value >= 2);
    assert.ok(a.current!.notAfter > first.notAfter);
    assert.ok(Date.now() < first.notAfter.getTime());
  });

  it('refused credentials leave no secret and count failures; it keeps trying', async () => {
    const secrets = new SecretManager();
    const stats = new StatsStore();
    const forged = path.join(work, 'forged.token');
    fs.writeFileSync(forged, new WorkloadTokens().issue({ namespace: 'shop', serviceAccount: 'web' }));
    const a = agent(forged, secrets, stats);
    void a.start();
    await waitFor(() => stats.counter('agent.certificate.failed').value >= 1, 10_000, 'a failure');
    assert.equal(secrets.get(WORKLOAD_SECRET), undefined);
    // The operator fixes the token file: the next attempt succeeds.
    fs.copyFileSync(tokenFile, forged);
    await waitFor(() => secrets.get(WORKLOAD_SECRET), 10_000, 'the certificate after the fix');
  });
});
