import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { applyXfcc, setPeerCertificateDetails } from './xfcc.ts';
import type { XfccConfig } from './xfcc.ts';
import { parseSubjectAltName } from './san.ts';
import { CLIENT_ID, makeTestPki, SERVER_ID } from './testing.ts';
import type { Socket } from 'node:net';

describe('x-forwarded-client-cert', () => {
  let socket: object;
  let hash: string;
  before(async () => {
    const pki = await makeTestPki();
    const cert = new X509Certificate(pki.client.certPem);
    hash = createHash('sha256').update(cert.raw).digest('hex');
    socket = {};
    setPeerCertificateDetails(socket as Socket, cert, [SERVER_ID]);
  });

  const cfg = (forward: XfccConfig['forward'], set: Partial<XfccConfig['set']> = {}): XfccConfig => ({
    forward,
    set: { subject: false, cert: false, uri: false, dns: false, ...set },
  });
  const run = (
    c: XfccConfig,
    incoming: string | undefined,
    s: object | undefined = socket,
  ): string | undefined => {
    const headers: Record<string, string | undefined> =
      incoming === undefined ? {} : { 'x-forwarded-client-cert': incoming };
    applyXfcc(headers, c, s);
    return headers['x-forwarded-client-cert'];
  };

  it('applies each forward mode as Envoy does', () => {
    const prior = 'By=spiffe://a;Hash=00;URI=spiffe://b';
    const mine = `By=${SERVER_ID};Hash=${hash};URI=${CLIENT_ID}`;
    assert.equal(run(cfg('SANITIZE'), prior), undefined);
    assert.equal(run(cfg('FORWARD_ONLY'), prior), prior);
    assert.equal(run(cfg('APPEND_FORWARD', { uri: true }), prior), `${prior},${mine}`);
    assert.equal(run(cfg('APPEND_FORWARD', { uri: true }), undefined), mine);
    assert.equal(run(cfg('SANITIZE_SET', { uri: true }), prior), mine);
    assert.equal(run(cfg('ALWAYS_FORWARD_ONLY'), prior, undefined), prior);
    // Without a client certificate every mode but ALWAYS_FORWARD_ONLY sanitizes.
    for (const mode of ['FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET'] as const)
      assert.equal(run(cfg(mode), prior, {}), undefined, mode);
  });

  it('adds Subject and DNS when asked', () => {
    assert.equal(
      run(cfg('SANITIZE_SET', { subject: true, uri: true, dns: true }), undefined),
      `By=${SERVER_ID};Hash=${hash};Subject="CN=client,O=weft";URI=${CLIENT_ID}`,
    );
  });

  it('parses Node subjectAltName text, quoted values included', () => {
    assert.deepEqual(
      parseSubjectAltName('DNS:a.example, URI:spiffe://td/ns/x/sa/y, IP Address:127.0.0.1, DNS:"b,c"'),
      {
        uri: ['spiffe://td/ns/x/sa/y'],
        dns: ['a.example', 'b,c'],
        email: [],
        ip: ['127.0.0.1'],
      },
    );
  });
});
