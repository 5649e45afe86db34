// Real kernel: network namespaces, veth pairs and iptables/ip6tables REDIRECT, as `weft up`'s
// transparent mode sets them up. Needs Linux and root (CI runs as root).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { originalDestination, originalDstSupport, type OriginalDestination } from './original-dst.ts';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const skip =
  process.platform !== 'linux'
    ? 'needs Linux'
    : process.getuid?.() !== 0
      ? 'needs root (network namespaces, iptables)'
      : false;

/** Connects from inside `netns` and waits for the server to close; the server reads the destination first. */
const clientScript = `
const net = require('node:net');
const [host, port] = process.argv.slice(-2);
const socket = net.connect({ host, port: Number(port) });
socket.resume();
socket.on('error', (error) => { console.error(error.message); process.exitCode = 1; });
`;

async function connectFrom(netns: string, host: string, port: number): Promise<void> {
  await run('ip', ['netns', 'exec', netns, process.execPath, '-e', clientScript, host, String(port)], {
    timeout: 15_000,
  });
}

async function connectDirect(host: string, port: number): Promise<void> {
  const socket = net.connect({ host, port });
  socket.resume();
  await once(socket, 'close');
}

/** A listener that records what originalDestination says about each accepted socket, in order. */
class CapturingServer {
  readonly server = net.createServer();
  readonly results = new EventEmitter();

  constructor() {
    this.server.on('connection', (socket) => {
      // Read while the socket is certainly open: the client may be gone by the time a test awaits.
      const destination = originalDestination(socket);
      socket.end();
      this.results.emit('result', destination);
    });
  }

  async listen(host: string): Promise<number> {
    this.server.listen(0, host);
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The destination seen for the next connection, which `connect` makes. */
  async next(connect: () => Promise<void>): Promise<OriginalDestination | undefined> {
    const [[destination]] = await Promise.all([
      once(this.results, 'result') as Promise<[OriginalDestination | undefined]>,
      connect(),
    ]);
    return destination;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Undo steps, run newest first, each allowed to fail (a step may never have happened). */
class Cleanup {
  private readonly steps: string[][] = [];
  add(...argv: string[]): void {
    this.steps.push(argv);
  }
  async run(): Promise<void> {
    for (const [command, ...args] of this.steps.reverse()) {
      await run(command, args).catch(() => undefined);
    }
    this.steps.length = 0;
  }
}

interface Namespace {
  readonly netns: string;
  readonly hostIf: string;
}

/** A netns whose default route leads to `hostIp` on the host side of a veth pair, like one `weft up` app. */
async function createNamespace(
  cleanup: Cleanup,
  v4: { hostIp: string; nsIp: string },
  v6?: { hostIp: string; nsIp: string },
): Promise<Namespace> {
  const hex = randomBytes(3).toString('hex');
  const netns = `wodt-${hex}`;
  const hostIf = `wodt${hex}h`; // 11 chars, within IFNAMSIZ
  const nsIf = `wodt${hex}n`;
  cleanup.add('ip', 'link', 'del', hostIf);
  cleanup.add('ip', 'netns', 'del', netns);
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
  await run('ip', ['link', 'set', nsIf, 'netns', netns]);
  await run('ip', ['addr', 'add', `${v4.hostIp}/30`, 'dev', hostIf]);
  await run('ip', ['link', 'set', hostIf, 'up']);
  const inNs = (...args: string[]) => run('ip', ['-n', netns, ...args]);
  await inNs('addr', 'add', `${v4.nsIp}/30`, 'dev', nsIf);
  await inNs('link', 'set', 'lo', 'up');
  await inNs('link', 'set', nsIf, 'up');
  await inNs('route', 'add', 'default', 'via', v4.hostIp);
  if (v6 !== undefined) {
    // nodad: duplicate address detection would leave the addresses unusable for a second or two.
    await run('ip', ['-6', 'addr', 'add', `${v6.hostIp}/64`, 'dev', hostIf, 'nodad']);
    await inNs('-6', 'addr', 'add', `${v6.nsIp}/64`, 'dev', nsIf, 'nodad');
    await inNs('-6', 'route', 'add', 'default', 'via', v6.hostIp);
  }
  return { netns, hostIf };
}

async function redirect(cleanup: Cleanup, iptables: string, hostIf: string, port: number): Promise<void> {
  const rule = ['PREROUTING', '-i', hostIf, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(port)];
  cleanup.add(iptables, '-t', 'nat', '-D', ...rule);
  await run(iptables, ['-t', 'nat', '-A', ...rule]);
}

describe('originalDestination (iptables REDIRECT, real kernel)', { skip }, () => {
  before(async () => {
    // Self-sufficient when run alone; a no-op when `npm run build` already compiled the addon.
    await run(process.execPath, [path.join(repo, 'scripts/build-native.ts')]);
  });

  it('loads the addon', () => {
    assert.deepEqual(originalDstSupport(), { available: true });
  });

  describe('IPv4 listener on the host side of the veth', () => {
    const cleanup = new Cleanup();
    const proxy = new CapturingServer();
    const loopback = new CapturingServer();
    let ns: Namespace;
    let proxyPort: number;
    after(async () => {
      await cleanup.run();
      await proxy.close();
      await loopback.close();
    });

    before(async () => {
      ns = await createNamespace(cleanup, { hostIp: '198.18.255.1', nsIp: '198.18.255.2' });
      proxyPort = await proxy.listen('198.18.255.1');
      await redirect(cleanup, 'iptables', ns.hostIf, proxyPort);
    });

    it('gives the service VIP and port the app connected to', async () => {
      const destination = await proxy.next(() => connectFrom(ns.netns, '240.240.0.7', 9080));
      assert.deepEqual(destination, { address: '240.240.0.7', port: 9080, family: 4 });
    });

    it('gives the original port when only the port was rewritten', async () => {
      const otherPort = proxyPort === 9081 ? 9082 : 9081;
      const destination = await proxy.next(() => connectFrom(ns.netns, '198.18.255.1', otherPort));
      assert.deepEqual(destination, { address: '198.18.255.1', port: otherPort, family: 4 });
    });

    // While the nat rule exists conntrack follows these too, and the kernel answers with the
    // socket's own address instead of "no entry": both must still read as "not redirected".
    it('gives undefined for a connection made straight to the listener', async () => {
      assert.equal(await proxy.next(() => connectDirect('198.18.255.1', proxyPort)), undefined);
    });

    it('gives undefined for a direct loopback connection', async () => {
      const port = await loopback.listen('127.0.0.1');
      assert.equal(await loopback.next(() => connectDirect('127.0.0.1', port)), undefined);
    });

    it('gives undefined for a socket without a file descriptor', () => {
      assert.equal(originalDestination(new net.Socket()), undefined);
    });
  });

  describe('dual-stack listener', () => {
    const cleanup = new Cleanup();
    const proxy = new CapturingServer();
    const v6Prefix = `fd57:ef7:${randomBytes(2).toString('hex')}:1`;
    let ns: Namespace;
    after(async () => {
      await cleanup.run();
      await proxy.close();
    });

    before(async () => {
      ns = await createNamespace(
        cleanup,
        { hostIp: '198.18.255.5', nsIp: '198.18.255.6' },
        { hostIp: `${v6Prefix}::1`, nsIp: `${v6Prefix}::2` },
      );
      const port = await proxy.listen('::');
      await redirect(cleanup, 'iptables', ns.hostIf, port);
      await redirect(cleanup, 'ip6tables', ns.hostIf, port);
    });

    it('reads an IPv4 destination from a v4-mapped socket', async () => {
      const destination = await proxy.next(() => connectFrom(ns.netns, '240.240.0.7', 9080));
      assert.deepEqual(destination, { address: '240.240.0.7', port: 9080, family: 4 });
    });

    it('reads an IPv6 destination', async () => {
      const destination = await proxy.next(() => connectFrom(ns.netns, 'fd57:ef7:ffff::7', 9443));
      assert.deepEqual(destination, { address: 'fd57:ef7:ffff::7', port: 9443, family: 6 });
    });
  });
});

describe(
  'original_dst addon argument checks',
  { skip: process.platform !== 'linux' && 'needs Linux' },
  () => {
    it('rejects anything but a non-negative integer fd with a TypeError', async () => {
      await run(process.execPath, [path.join(repo, 'scripts/build-native.ts')]);
      const addon = createRequire(import.meta.url)(path.join(repo, 'build/native/original_dst.node')) as {
        originalDestination(fd: unknown): unknown;
      };
      for (const bad of [1.5, -1, Number.NaN, Infinity, '3', undefined, null, 2 ** 40]) {
        assert.throws(() => addon.originalDestination(bad), TypeError, `fd ${String(bad)}`);
      }
      // A valid integer that is not a socket reaches getsockopt, whose errno comes back as the message.
      assert.throws(() => addon.originalDestination(2 ** 30), {
        name: 'Error',
        message: /Bad file descriptor/,
      });
    });
  },
);
