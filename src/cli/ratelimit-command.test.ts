import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { rlsServiceDefinition } from '../ratelimit/rls-definition.ts';
import type { WireObject } from '../ratelimit/rls-definition.ts';
import { TestRedis } from '../ratelimit/testing/redis-server.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

const policy = (name: string, perHour: number) => `
apiVersion: weft.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: ${name}}
spec:
  targetRef: {name: api}
  global: {service: ratelimit:8081, default: {requestsPerUnit: ${perHour}, unit: HOUR}}
`;

type RlsClient = Client & {
  ShouldRateLimit(
    request: object,
    options: { deadline: number },
    callback: (err: ServiceError | null, response?: WireObject) => void,
  ): void;
};
const RlsClientConstructor = makeGenericClientConstructor(rlsServiceDefinition, 'RateLimitService');

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('weft ratelimit', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rls-cli-'));
  let redis: TestRedis;
  let child: ReturnType<typeof spawn>;
  let output = '';
  let client: RlsClient;

  const ask = (policyName: string): Promise<WireObject> =>
    new Promise((resolve, reject) =>
      client.ShouldRateLimit(
        {
          domain: 'weft',
          descriptors: [{ entries: [{ key: 'weft.policy', value: `default/${policyName}` }] }],
        },
        { deadline: Date.now() + 3000 },
        (err, response) => (err || !response ? reject(err ?? new Error('no response')) : resolve(response)),
      ),
    );
  const limited = async (policyName: string): Promise<boolean> =>
    ((await ask(policyName)).statuses as WireObject[])[0].current_limit !== undefined;

  before(async () => {
    const msLeft = 3_600_000 - (Date.now() % 3_600_000);
    if (msLeft < 15_000) await sleep(msLeft + 100);
    redis = await TestRedis.start();
    fs.writeFileSync(path.join(dir, 'a.yaml'), policy('a', 1));
    child = spawn(
      process.execPath,
      [MAIN, 'ratelimit', '--config', dir, '--redis', redis.url, '--port', '0', '--address', '127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor('ratelimit ready', () => output.includes('ratelimit ready'));
    const ready = output.split('\n').find((l) => l.includes('ratelimit ready')) ?? '';
    const fields = JSON.parse(ready.slice(ready.indexOf('{'))) as { port: number; policies: number };
    assert.ok(fields.port > 0);
    assert.equal(fields.policies, 1);
    client = new RlsClientConstructor(
      `127.0.0.1:${fields.port}`,
      credentials.createInsecure(),
    ) as unknown as RlsClient;
  });

  after(async () => {
    client?.close();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await redis?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the configured limits on the port it printed', async () => {
    assert.equal((await ask('a')).overall_code, 'OK');
    assert.equal((await ask('a')).overall_code, 'OVER_LIMIT');
  });

  it('reloads changed files, and keeps the last good policy when a file turns invalid', async () => {
    assert.equal(await limited('b'), false);
    fs.writeFileSync(path.join(dir, 'b.yaml'), policy('b', 1000));
    await waitFor('policy b to be enforced', () => limited('b'));
    fs.writeFileSync(
      path.join(dir, 'b.yaml'),
      policy('b', 1000).replace('requestsPerUnit: 1000', 'requestsPerUnit: -1'),
    );
    await waitFor('a diagnostic about b.yaml', () => /error.*b\.yaml/.test(output));
    assert.equal(await limited('b'), true);
  });

  it('exits cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
