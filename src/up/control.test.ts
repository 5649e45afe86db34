import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ControlServer, controlSocketPath, sendControl } from './control.ts';

describe('the supervisor control socket', { timeout: 10_000 }, () => {
  it('streams progress lines, then success or the reason for failure', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-control-'));
    const server = await ControlServer.listen(controlSocketPath(dir), (req, progress) => {
      progress(`restarting ${req.workload}`);
      progress('done');
      return Promise.resolve(req.workload === 'bad' ? 'bad-0: app exited with code 1' : undefined);
    });
    try {
      assert.equal(fs.statSync(server.path).mode & 0o777, 0o600);
      const lines: string[] = [];
      assert.equal(
        await sendControl(server.path, { op: 'restart', workload: 'back' }, (l) => lines.push(l)),
        undefined,
      );
      assert.deepEqual(lines, ['restarting back', 'done']);
      assert.equal(
        await sendControl(server.path, { op: 'restart', workload: 'bad' }, () => undefined),
        'bad-0: app exited with code 1',
      );
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(fs.existsSync(server.path), false);
  });

  it('reports a handler that throws, and a supervisor that is not there', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-control-'));
    const server = await ControlServer.listen(controlSocketPath(dir), () =>
      Promise.reject(new Error('boom')),
    );
    try {
      assert.equal(await sendControl(server.path, { op: 'restart', workload: 'x' }, () => undefined), 'boom');
    } finally {
      await server.close();
    }
    const gone = await sendControl(server.path, { op: 'restart', workload: 'x' }, () => undefined);
    assert.match(gone ?? '', /cannot reach weft up's control socket .*control\.sock: ENOENT/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a request still running when it closes: the supervisor is stopping', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-control-'));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const server = await ControlServer.listen(controlSocketPath(dir), (_req, progress) => {
      progress('stopping back-0');
      started();
      return new Promise(() => undefined); // never finishes by itself
    });
    const lines: string[] = [];
    const result = sendControl(server.path, { op: 'restart', workload: 'back' }, (l) => lines.push(l));
    await running;
    await server.close();
    assert.equal(await result, 'weft up is stopping');
    assert.deepEqual(lines, ['stopping back-0']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts the socket of a deep directory in the temp dir (Unix socket paths are short)', () => {
    assert.equal(controlSocketPath('/m/.weft'), '/m/.weft/control.sock');
    const deep = `/${'d'.repeat(120)}/.weft`;
    const p = controlSocketPath(deep);
    assert.equal(path.dirname(p), os.tmpdir());
    assert.match(path.basename(p), /^weft-[0-9a-f]{16}\.sock$/);
    assert.equal(controlSocketPath(deep), p);
    assert.notEqual(controlSocketPath(`/${'e'.repeat(120)}/.weft`), p);
  });
});
