import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  createNetworks,
  destroyNetworks,
  freeSubnetIndex,
  hostsFile,
  netnsExec,
  newRunId,
  planNetworks,
  transparentProblem,
} from './netns.ts';
import type { RunNetworks } from './netns.ts';
import { freePorts } from './ports.ts';

const execFileP = promisify(execFile);

async function out(file: string, args: readonly string[]): Promise<string> {
  return (await execFileP(file, args, { encoding: 'utf8' })).stdout;
}

describe('planNetworks', () => {
  it('gives each instance a /30 of the chosen /24 and short interface names', () => {
    const run = planNetworks('a1b2c3', 37, [15001, 15002, 15003]);
    assert.equal(run.runId, 'a1b2c3');
    assert.equal(run.subnet, '198.18.37.0/24');
    assert.equal(run.chain, 'WEFT-a1b2c3');
    assert.deepEqual(run.instances[0], {
      index: 0,
      netns: 'weft-a1b2c3-0',
      hostIf: 'wfa1b2c3h0',
      nsIf: 'eth0',
      hostIp: '198.18.37.1',
      appIp: '198.18.37.2',
      outboundPort: 15001,
    });
    assert.equal(run.instances[2].hostIp, '198.18.37.9');
    assert.equal(run.instances[2].appIp, '198.18.37.10');
    assert.equal(run.instances[2].outboundPort, 15003);
  });

  it('reaches into 198.19.0.0/16 for indexes 256..511 and keeps names within 15 characters at 64 instances', () => {
    const ports = Array.from({ length: 64 }, (_, i) => 20_000 + i);
    const run = planNetworks('ffffff', 511, ports);
    assert.equal(run.subnet, '198.19.255.0/24');
    const last = run.instances[63];
    assert.equal(last.hostIp, '198.19.255.253');
    assert.equal(last.appIp, '198.19.255.254');
    for (const n of run.instances)
      assert.ok(n.hostIf.length <= 15 && `wfffffffn${n.index}`.length <= 15, n.hostIf);
    assert.equal(new Set(run.instances.map((n) => n.hostIp)).size, 64);
    assert.equal(planNetworks('000000', 256, []).subnet, '198.19.0.0/24');
  });

  it('refuses more than 64 instances, bad subnet indexes and bad run ids', () => {
    const ports = Array.from({ length: 65 }, (_, i) => 20_000 + i);
    assert.throws(() => planNetworks('a1b2c3', 0, ports), /at most 64 app instances.*has 65/);
    assert.throws(() => planNetworks('a1b2c3', 512, [1]), /subnet index/);
    assert.throws(() => planNetworks('a1b2c3', -1, [1]), /subnet index/);
    assert.throws(() => planNetworks('A1B2C3', 0, [1]), /run id/);
    assert.throws(() => planNetworks('a1b2c3x', 0, [1]), /run id/);
    assert.throws(() => planNetworks('a1b2c3', 0, [0]), /outbound port/);
  });

  it('makes distinct 6-hex-char run ids', () => {
    const ids = Array.from({ length: 20 }, () => newRunId());
    for (const id of ids) assert.match(id, /^[0-9a-f]{6}$/);
    assert.ok(new Set(ids).size > 1);
  });
});

describe('hostsFile', () => {
  it('has the localhost lines, then one line per entry', () => {
    const text = hostsFile([
      { ip: '240.240.0.9', names: ['catalog', 'catalog.shop.svc.cluster.local'] },
      { ip: '240.240.0.10', names: ['reviews'] },
    ]);
    assert.equal(
      text,
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' +
        '240.240.0.9\tcatalog catalog.shop.svc.cluster.local\n240.240.0.10\treviews\n',
    );
  });

  it('rejects what would corrupt the file', () => {
    assert.throws(() => hostsFile([{ ip: 'nope', names: ['a'] }]), /invalid IP/);
    assert.throws(() => hostsFile([{ ip: '1.2.3.4', names: ['a b'] }]), /invalid name/);
    assert.throws(() => hostsFile([{ ip: '1.2.3.4', names: ['a#b'] }]), /invalid name/);
    assert.throws(() => hostsFile([{ ip: '1.2.3.4', names: [] }]), /no names/);
  });
});

/** What the host shows of a run: must be empty after destroyNetworks. */
async function traces(runId: string): Promise<string[]> {
  const found: string[] = [];
  for (const line of (await out('ip', ['netns', 'list'])).split('\n')) {
    if (line.includes(runId)) found.push(`netns: ${line}`);
  }
  for (const line of (await out('iptables', ['-w', '-t', 'nat', '-S'])).split('\n')) {
    if (line.includes(runId)) found.push(`iptables: ${line}`);
  }
  for (const line of (await out('ip', ['-o', 'link'])).split('\n')) {
    if (line.includes(runId)) found.push(`link: ${line}`);
  }
  const etc = fs.existsSync('/etc/netns') ? fs.readdirSync('/etc/netns') : [];
  for (const name of etc) if (name.includes(runId)) found.push(`/etc/netns/${name}`);
  return found;
}

async function plannedRun(count: number): Promise<RunNetworks> {
  const runId = newRunId();
  return planNetworks(runId, await freeSubnetIndex(runId), await freePorts(count));
}

const problem = transparentProblem();

describe('network namespaces on the real kernel', { skip: problem }, () => {
  const runIds: string[] = [];
  after(async () => {
    for (const id of runIds) await destroyNetworks(id);
  });

  it('picks a subnet index whose /24 no interface uses', async () => {
    const runId = newRunId();
    const index = await freeSubnetIndex(runId);
    const subnet = planNetworks(runId, index, []).subnet.replace(/\.0\/24$/, '.');
    assert.ok(!(await out('ip', ['-4', '-o', 'addr'])).includes(` ${subnet}`));
  });

  it('connects two instances: hosts file, REDIRECT to the outbound port, host to app, then removes it all', async () => {
    const run = await plannedRun(2);
    runIds.push(run.runId);
    const [n0, n1] = run.instances;
    await createNetworks(run, hostsFile([{ ip: '240.240.0.9', names: ['catalog', 'catalog.shop.svc'] }]));

    // (a) the namespace's /etc/hosts is the run's
    const resolved = await out(netnsExec(n0)[0], [...netnsExec(n0).slice(1), 'getent', 'hosts', 'catalog']);
    assert.match(resolved, /^240\.240\.0\.9\s+catalog\b/);

    // (b) a connection from ns 0 to a service VIP lands on the sidecar's outbound listener on the host
    const outbound = net.createServer();
    outbound.listen(n0.outboundPort, n0.hostIp);
    await once(outbound, 'listening');
    try {
      const accepted = new Promise<{ from: string | undefined; data: string }>((resolve) => {
        outbound.once('connection', (s) => {
          let data = '';
          s.setEncoding('utf8');
          s.on('data', (d: string) => (data += d));
          s.on('end', () => {
            resolve({ from: s.remoteAddress, data });
            s.end();
          });
        });
      });
      const client =
        "const s = require('net').connect(9080, '240.240.0.9', () => s.end('hello'));" +
        's.on("error", (e) => { console.error(e.message); process.exit(1); });';
      const [ip, ...rest] = netnsExec(n0);
      await execFileP(ip, [...rest, process.execPath, '-e', client], { timeout: 10_000 });
      assert.deepEqual(await accepted, { from: n0.appIp, data: 'hello' });
    } finally {
      outbound.close();
    }

    // (c) the host reaches an app listening inside ns 1 on its appIp; the app kept the environment and is the
    // very process spawned (ip netns exec execs), so a supervisor's signals reach it
    const [ip, ...rest] = netnsExec(n1);
    const server =
      "require('net').createServer((s) => s.end(process.env.WEFT_PROBE)).listen(9999, '0.0.0.0', () => console.log('ready'));";
    const app = spawn(ip, [...rest, process.execPath, '-e', server], {
      env: { ...process.env, WEFT_PROBE: 'probe-7' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await once(app.stdout, 'data');
      assert.equal(fs.readlinkSync(`/proc/${app.pid}/exe`), fs.realpathSync(process.execPath));
      const socket = net.connect(9999, n1.appIp);
      socket.setEncoding('utf8');
      let reply = '';
      socket.on('data', (d: string) => (reply += d));
      await once(socket, 'end');
      assert.equal(reply, 'probe-7');
      const exited = once(app, 'exit');
      app.kill('SIGTERM');
      assert.deepEqual(await exited, [null, 'SIGTERM']);
    } finally {
      app.kill('SIGKILL');
    }

    // (d) nothing of the run is left, and a second destroy is a no-op
    const removed = await destroyNetworks(run.runId);
    assert.ok(removed.some((r) => r.includes(run.chain)));
    assert.deepEqual(await traces(run.runId), []);
    assert.deepEqual(await destroyNetworks(run.runId), []);
  });

  it('cleans up a run whose plan is lost, by run id alone', async () => {
    // Only the id leaves this scope, as only the id survives in the run state of a crashed `weft up`.
    const runId = await (async () => {
      const run = await plannedRun(2);
      runIds.push(run.runId);
      await createNetworks(run, hostsFile([]));
      return run.runId;
    })();
    assert.equal((await traces(runId)).length, 2 + 4 + 2 + 2, (await traces(runId)).join('\n'));
    const removed = await destroyNetworks(runId);
    assert.ok(removed.length >= 5, removed.join(', '));
    assert.deepEqual(await traces(runId), []);
  });

  it('undoes a half-done creation and names the failed command', async () => {
    const run = await plannedRun(2);
    runIds.push(run.runId);
    // Taken in advance, so instance 1's veth cannot be created after instance 0 is fully set up.
    await out('ip', [
      'link',
      'add',
      run.instances[1].hostIf,
      'type',
      'veth',
      'peer',
      'name',
      `wf${run.runId}x`,
    ]);
    await assert.rejects(
      createNetworks(run, hostsFile([])),
      (err: Error) =>
        err.message.includes(`ip link add ${run.instances[1].hostIf}`) && /exists/i.test(err.message),
    );
    assert.deepEqual(await traces(run.runId), []);
  });
});
