import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkloadTokens } from '../control/ca/workload-tokens.ts';
import { runCaToken } from './ca-token-command.ts';

describe('weft ca-token', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-ca-token-'));

  it('writes a 0600 token that the control plane (same state dir) reads as that identity', () => {
    const output = path.join(stateDir, 'web.token');
    const code = runCaToken({ serviceAccount: 'web', namespace: 'shop', stateDir, ttl: '1h', output });
    assert.equal(code, 0);
    assert.equal(fs.statSync(output).mode & 0o777, 0o600);
    const token = fs.readFileSync(output, 'utf8').trim();
    assert.deepEqual(WorkloadTokens.open(stateDir).identityOf(token), {
      namespace: 'shop',
      serviceAccount: 'web',
    });
  });

  it('refuses a lifetime that is not a Go duration', () => {
    const output = path.join(stateDir, 'bad.token');
    assert.equal(runCaToken({ serviceAccount: 'web', namespace: 'shop', stateDir, ttl: 'soon', output }), 1);
    assert.equal(fs.existsSync(output), false);
  });
});
