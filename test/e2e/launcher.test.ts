// bin/weft.js caps the heap for sidecars (from its shebang) but runs the control plane in an uncapped child:
// the child must get the arguments, the exit code and the signals, and must not outlive the launcher.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO } from '../support/proxy.ts';

const launcher = path.join(REPO, 'bin/weft.js');

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Waits until the child has printed `text` (stdout or stderr); fails after 30 s with what it printed. */
async function untilOutput(child: ChildProcess, text: string, what: string): Promise<void> {
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const deadline = Date.now() + 30_000;
  while (!output.includes(text)) {
    assert.ok(Date.now() < deadline, `${what} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bin/weft.js', { timeout: 60_000 }, () => {
  it('passes arguments and the exit code through to an uncapped child for weft analyze', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-launcher-'));
    try {
      writeFileSync(
        path.join(dir, 'bad.yaml'),
        'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: x\nspec:\n  hots: a\n',
      );
      const err = await promisify(execFile)(launcher, ['analyze', dir]).then(
        () => undefined,
        (e: unknown) => e as { code: number; stdout: string },
      );
      assert.ok(err, 'an invalid resource must fail weft analyze');
      assert.notEqual(err.code, 0);
      assert.match(err.stdout, /bad\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs a proxy in the launcher process itself, with the sidecar heap flags of its shebang', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-launcher-'));
    const bootstrap = path.join(dir, 'bootstrap.yaml');
    writeFileSync(
      bootstrap,
      'admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 0 }\n',
    );
    const proxy = spawn(launcher, ['proxy', '--bootstrap', bootstrap], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await untilOutput(proxy, 'proxy ready', 'the proxy');
      assert.deepEqual(childrenOf(proxy.pid ?? 0), [], 'a proxy needs no child process');
      const args = readFileSync(`/proc/${proxy.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of [
        '--max-semi-space-size=2',
        '--max-old-space-size=64',
        '--no-allocation-site-pretenuring',
      ]) {
        assert.ok(args.includes(flag), `${flag} missing from ${args.join(' ')}`);
      }
    } finally {
      proxy.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the control plane without the sidecar heap cap and stops it on SIGTERM', async () => {
    const cp = spawn(
      launcher,
      ['control-plane', '--config', path.join(REPO, 'examples/mesh'), '--xds-port', '0', '--debug-port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await untilOutput(cp, 'control plane ready', 'the control plane');
    const [child] = childrenOf(cp.pid ?? 0);
    assert.ok(child, 'the control plane runs in a child of the launcher');
    const args = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
    assert.ok(args.includes('control-plane'));
    assert.ok(!args.some((a) => a.startsWith('--max-old-space-size')), args.join(' '));
    const exited = new Promise<number | null>((resolve) => cp.on('exit', (code) => resolve(code)));
    cp.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(!alive(child), 'the control plane must stop with its launcher');
  });
});
