// CA issuance rate: CSRs made beforehand (keys are the workloads' work), then signed one after another.
// Usage: node bench/ca/issuance.ts [N] [IN_FLIGHT]
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import * as x509 from '@peculiar/x509';
import { CertificateAuthority } from '../../src/control/ca/authority.ts';
const ca = await CertificateAuthority.open({ stateDir: fs.mkdtempSync(path.join(os.tmpdir(), 'rate-')) });
const csrs: string[] = [];
const count = Number(process.argv[2] ?? 400);
for (let i = 0; i < count; i++) {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=x',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  csrs.push(csr.toString('pem'));
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
// As a CA service signs: several requests in flight (WebCrypto runs them on libuv's thread pool).
const inFlight = Number(process.argv[3] ?? 8);
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < csrs.length) await ca.sign(csrs[next++], { namespace: 'a', serviceAccount: 'b' });
  }),
);
const s = (performance.now() - t0) / 1000;
// CPU of the whole process, thread pool included: what a certificate costs the control plane's host.
const cpu = process.cpuUsage(cpu0);
const cpuUsPerCert = (cpu.user + cpu.system) / csrs.length;
console.log(
  `${csrs.length} certificates in ${s.toFixed(2)} s: ${(csrs.length / s).toFixed(0)}/s (${inFlight} in flight), ` +
    `${cpuUsPerCert.toFixed(0)} µs CPU each`,
);
