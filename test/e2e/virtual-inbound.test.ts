/**
 * Istio's inbound capture (`virtualInbound` on 15006) with a real kernel: a workload in its own network
 * namespace, its HTTP app, TCP echo app and Weft sidecar inside it, and iptables there redirecting every
 * connection to the apps' ports to the sidecar. No Sidecar resource: the control plane (on the host side of
 * the veth) generates the listener from the service that selects the workload, one chain per target port.
 * Called from the host namespace at the workload's address, the apps answer through the sidecar (they see
 * their callers on loopback, the sidecar reports the calls as destination); a redirected port no service
 * sends to is closed. Linux and root (CI is both); spawns dist/: `npm run build` first.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkloadTokens } from '../../src/control/ca/workload-tokens.ts';
import { request } from '../support/http.ts';
import type { Reply } from '../support/http.ts';
import { launcherNodeFlags, REPO, tracked, waitFor } from '../support/proxy.ts';
import type { ProxyProcess } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';

const run = promisify(execFile);
const skip =
  process.platform !== 'linux'
    ? 'needs Linux'
    : process.getuid?.() !== 0
      ? 'needs root (network namespaces, iptables)'
      : false;

const HOST_IP = '198.19.251.1';
const WORKLOAD_IP = '198.19.251.2';
// Inside the namespace nothing else listens: fixed ports are free there.
const HTTP_APP = 18080;
const TCP_APP = 13306;
const UNSERVED_APP = 17777;
const ADMIN = 15000;

/**
 * The workload's apps: HTTP answering with what it saw of the request (its peer included), and two TCP
 * servers that answer `<peer>|<bytes>` to whatever they receive.
 */
const appsScript = `
const http = require('node:http');
const net = require('node:net');
const [httpPort, ...tcpPorts] = process.argv.slice(-3).map(Number);
let pending = 3;
const up = () => { if (--pending === 0) console.log('ready'); };
http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ app: 'vin-http', peer: req.socket.remoteAddress, headers: req.headers }));
}).listen(httpPort, '0.0.0.0', up);
for (const port of tcpPorts) {
  net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => s.end(s.remoteAddress + '|' + d));
  }).listen(port, '0.0.0.0', up);
}
`;

const config = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vin}
spec:
  hosts: [vin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9080, name: http, protocol: HTTP, targetPort: ${HTTP_APP}}
  - {number: 3306, name: tcp-db, protocol: TCP, targetPort: ${TCP_APP}}
  workloadSelector: {labels: {app: vin}}
`;

/** One Prometheus sample's value summed over the lines that contain every one of `labels`. */
function sampleSum(text: string, metric: string, labels: readonly string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !labels.every((l) => line.includes(l))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Writes `text` to host:port and collects what comes back until the server closes. */
function exchange(host: string, port: number, text: string): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    const socket = net.connect({ host, port }, () => socket.write(text));
    socket.setTimeout(10_000, () => socket.destroy(new Error('client timeout')));
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve({ data, error: e.code ?? e.message }));
    socket.on('close', () => resolve({ data }));
  });
}

describe('virtualInbound: a captured workload served through its sidecar', { skip, timeout: 120_000 }, () => {
  const hex = randomBytes(3).toString('hex');
  const netns = `weft-vin-${hex}`;
  const hostIf = `wvin${hex}h`; // 11 characters, within IFNAMSIZ
  const nsIf = `wvin${hex}n`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-vin-'));
  const children: ProxyProcess[] = [];
  let sidecar: ProxyProcess | undefined;
  let cpOutput = (): string => '';

  /** Runs `argv` inside the namespace. */
  const inNs = (argv: readonly string[]): Promise<{ stdout: string }> =>
    run('ip', ['netns', 'exec', netns, ...argv], { timeout: 15_000 });

  const start = (argv: readonly string[]): ProxyProcess => {
    const child: ChildProcessByStdio<null, Readable, Readable> = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = tracked(child);
    children.push(p);
    return p;
  };

  /** The sidecar's admin `path` (it listens on the namespace's loopback). */
  const sidecarAdmin = async (adminPath: string): Promise<string> =>
    (
      await inNs([
        process.execPath,
        '-e',
        `fetch('http://127.0.0.1:${ADMIN}${adminPath}').then((r) => r.text()).then((t) => process.stdout.write(t))`,
      ])
    ).stdout;
  const sidecarStats = (): Promise<string> => sidecarAdmin('/stats/prometheus');

  const logs = (): string =>
    `\n--- sidecar ---\n${sidecar?.output() ?? ''}\n--- control plane ---\n${cpOutput()}`;

  /** waitFor, whose failure carries the processes' output as it is then. */
  const waitLogged = async <T>(fn: () => T | Promise<T>, ms: number, what: string): Promise<T> => {
    try {
      return await waitFor(fn, ms, what);
    } catch (error) {
      throw new Error(`${(error as Error).message}${logs()}`, { cause: error });
    }
  };

  before(async () => {
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    await run('ip', ['link', 'set', nsIf, 'netns', netns]);
    await run('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', hostIf]);
    await run('ip', ['link', 'set', hostIf, 'up']);
    await run('ip', ['-n', netns, 'addr', 'add', `${WORKLOAD_IP}/30`, 'dev', nsIf]);
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', netns, 'link', 'set', nsIf, 'up']);
    await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', HOST_IP]);

    const apps = start([
      ...['ip', 'netns', 'exec', netns, process.execPath, '-e', appsScript, '--'],
      ...[HTTP_APP, TCP_APP, UNSERVED_APP].map(String),
    ]);
    await waitLogged(() => apps.output().includes('ready'), 10_000, 'the apps to listen');

    // The control plane listens on the host side of the veth, where the namespace's sidecar reaches it.
    const configDir = path.join(dir, 'config');
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), config);
    const xdsPort = await closedPort();
    const cp = start([
      process.execPath,
      ...launcherNodeFlags(),
      path.join(REPO, 'dist/cli/main.js'),
      'control-plane',
      ...['--config', configDir, '--state-dir', stateDir, '--host', HOST_IP],
      ...['--xds-port', String(xdsPort), '--debug-port', String(await closedPort())],
    ]);
    cpOutput = () => cp.output();
    await waitLogged(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: HOST_IP, port: xdsPort }, () => resolve(true));
          s.on('error', () => resolve(false));
          s.on('connect', () => s.destroy());
        }),
      20_000,
      'the control plane to listen',
    );

    const tokenFile = path.join(dir, 'vin.token');
    fs.writeFileSync(
      tokenFile,
      WorkloadTokens.open(stateDir).issue({ namespace: 'default', serviceAccount: 'vin' }),
    );
    sidecar = start([
      ...['ip', 'netns', 'exec', netns, process.execPath, ...launcherNodeFlags()],
      ...[path.join(REPO, 'dist/cli/main.js'), 'proxy'],
      ...['--xds-address', `${HOST_IP}:${xdsPort}`, '--ca-token-file', tokenFile],
      ...['--type', 'sidecar', '--name', 'vin-1', '--namespace', 'default', '--ip', WORKLOAD_IP],
      ...['--service-account', 'vin', '--labels', 'app=vin', '--interception-mode', 'REDIRECT'],
      ...['--admin-port', String(ADMIN), '--prometheus-port', '0', '--health-port', '0'],
    ]);

    // Only connections from outside (PREROUTING): the sidecar's own to 127.0.0.1 reach the apps as they are.
    await inNs([
      ...['iptables', '-w', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '-m', 'multiport'],
      ...['--dports', `${HTTP_APP},${TCP_APP},${UNSERVED_APP}`, '-j', 'REDIRECT', '--to-ports', '15006'],
    ]);
  });

  after(async () => {
    for (const c of children.reverse()) {
      if (c.child.exitCode === null && c.child.signalCode === null) c.kill('SIGKILL');
      await c.exited;
    }
    // Deleting the namespace takes its iptables rules and its end of the veth (and so the pair) with it.
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    await run('ip', ['link', 'del', hostIf]).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the HTTP port through the sidecar, which reports the request as destination', async () => {
    let reply: Reply | undefined;
    await waitLogged(
      async () => {
        reply = await request(HTTP_APP, { host: WORKLOAD_IP, path: '/hello' });
        return reply.status === 200;
      },
      30_000,
      `a 200 from the HTTP app at ${WORKLOAD_IP}:${HTTP_APP}`,
    );
    assert.ok(reply);
    const seen = JSON.parse(reply.body) as { app: string; peer: string; headers: Record<string, string> };
    assert.equal(seen.app, 'vin-http');
    // Redirected to the sidecar, which called the app on loopback; a direct call would come from the host.
    assert.equal(seen.peer, '127.0.0.1', reply.body);
    assert.match(seen.headers['x-request-id'] ?? '', /./, 'the inbound connection manager set x-request-id');
    const stats = await sidecarStats();
    const served = sampleSum(stats, 'istio_requests_total', [
      'reporter="destination"',
      'destination_service_name="vin"',
      'response_code="200"',
    ]);
    assert.ok(served >= 1, `istio_requests_total, reporter destination: ${served}\n${stats}`);
  });

  it('serves the TCP port through the sidecar, counting its bytes as destination', async () => {
    const reply = await exchange(WORKLOAD_IP, TCP_APP, 'ping-vin');
    assert.deepEqual(reply, { data: '127.0.0.1|ping-vin' }, logs());
    // The counters follow the connection's close, which the client may see first.
    let stats = '';
    const labels = ['reporter="destination"', 'destination_service_name="vin"'];
    await waitLogged(
      async () => {
        stats = await sidecarStats();
        return (
          sampleSum(stats, 'istio_tcp_connections_closed_total', labels) >= 1 &&
          sampleSum(stats, 'istio_tcp_received_bytes_total', labels) >= 'ping-vin'.length
        );
      },
      10_000,
      'the TCP connection in the destination counters',
    );
    assert.ok(sampleSum(stats, 'istio_tcp_connections_opened_total', labels) >= 1, stats);
  });

  it('closes a redirected connection to a port no service sends to', async () => {
    const unmatched = async (): Promise<number> => {
      const json = JSON.parse(await sidecarAdmin('/stats?format=json')) as {
        stats: { name: string; value?: number }[];
      };
      return json.stats.find((s) => s.name === 'listener.0.0.0.0_15006.no_filter_chain_match')?.value ?? 0;
    };
    const before = await unmatched();
    // The app listens there, but the sidecar has no chain for the port: nothing reaches it, nothing comes back.
    const reply = await exchange(WORKLOAD_IP, UNSERVED_APP, 'ping-unserved');
    assert.equal(reply.data, '', JSON.stringify(reply));
    // The sidecar took the connection (the redirect works for this port) and found no chain for it.
    await waitLogged(async () => (await unmatched()) > before, 10_000, 'no_filter_chain_match to count it');
  });
});
