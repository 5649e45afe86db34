import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TOKEN_KEY_FILE, WorkloadTokens } from './workload-tokens.ts';

const web = { namespace: 'shop', serviceAccount: 'web' };

describe('workload tokens', () => {
  it('grant the identity they were issued for', () => {
    const tokens = new WorkloadTokens();
    assert.deepEqual(tokens.identityOf(tokens.issue(web)), web);
  });

  it('refuse a token whose payload was changed, or made under another key', () => {
    const tokens = new WorkloadTokens();
    const [prefix, payload, mac] = tokens.issue(web).split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, sa: 'admin' })).toString('base64url');
    assert.equal(tokens.identityOf(`${prefix}.${forged}.${mac}`), undefined);
    assert.equal(tokens.identityOf(new WorkloadTokens().issue(web)), undefined);
    for (const junk of ['', 'weft1', 'weft1..', 'weft1.e30.', 'Bearer x', 'weft1.!!!.???'])
      assert.equal(tokens.identityOf(junk), undefined, junk);
  });

  it('expire, and can be revoked', () => {
    let now = 1_000_000;
    const tokens = new WorkloadTokens(Buffer.alloc(32, 7), () => now);
    const short = tokens.issue(web, 60_000);
    assert.deepEqual(tokens.identityOf(short), web);
    now += 60_000;
    assert.equal(tokens.identityOf(short), undefined);
    const other = tokens.issue(web);
    tokens.revoke(other);
    assert.equal(tokens.identityOf(other), undefined);
  });

  it('keep their key 0600 in the state dir, so tokens outlive a restart', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tokens-'));
    const token = WorkloadTokens.open(dir).issue(web);
    assert.equal(fs.statSync(path.join(dir, TOKEN_KEY_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(WorkloadTokens.open(dir).identityOf(token), web);
    fs.writeFileSync(path.join(dir, TOKEN_KEY_FILE), 'c2hvcnQ=\n');
    assert.throws(() => WorkloadTokens.open(dir), /not a token key/);
  });
});
