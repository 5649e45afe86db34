// A load process: many simulated proxies (SimProxy) in one Node process, driven by the benchmark over IPC
// (child_process.fork). It records when each proxy finished its initial sync, when each watched endpoint
// change reached each proxy, and when each proxy received endpoint updates.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoadCommand, LoadReply, WatchedChange } from './protocol.ts';
import { SimProxy, nowMs } from './sim-proxy.ts';
import type { SimProxyEvents, SimProxyIdentity } from './sim-proxy.ts';

interface Watch {
  readonly change: WatchedChange;
  /** SocketAddress.address (field 2) as it appears in the encoded ClusterLoadAssignment. */
  readonly needle: Buffer;
  readonly names: ReadonlySet<string>;
  /** Per proxy (index in this process): when the new address arrived, 0 = not yet. */
  readonly arrivals: Float64Array;
  arrived: number;
}

const proxies: SimProxy[] = [];
const indexOf = new Map<SimProxy, number>();
const watches = new Map<number, Watch>();
/** Watches by cluster name, to check only the ClusterLoadAssignments a change touches. */
const watchesByName = new Map<string, Watch[]>();
let syncedCount = 0;
const errors: string[] = [];
let recording: number[][] | null = null;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function send(reply: LoadReply): void {
  process.send?.(reply);
}

const events: SimProxyEvents = {
  onSynced() {
    syncedCount++;
    if (syncedCount === proxies.length) send({ type: 'all-synced', at: nowMs() });
  },
  onEndpoint(proxy, name, payload, at) {
    const list = watchesByName.get(name);
    if (!list) return;
    const i = indexOf.get(proxy)!;
    for (const w of list) {
      if (w.arrivals[i] !== 0 || payload.indexOf(w.needle) < 0) continue;
      w.arrivals[i] = at;
      w.arrived++;
    }
  },
  onEndpointResponse(proxy, at) {
    if (recording) recording[indexOf.get(proxy)!].push(at);
  },
  onError(proxy, message) {
    if (errors.length < 20) errors.push(`${proxy.identity.id}: ${message}`);
  },
};

function needleOf(address: string): Buffer {
  const text = Buffer.from(address, 'utf8');
  return Buffer.concat([Buffer.from([0x12, text.length]), text]);
}

async function connectAll(
  target: string,
  identities: readonly SimProxyIdentity[],
  perTick: number,
): Promise<void> {
  for (const identity of identities) {
    const p = new SimProxy(identity, events);
    indexOf.set(p, proxies.length);
    proxies.push(p);
  }
  // Connections open in small batches, one batch per turn of the event loop, like proxies that restart
  // together but not in the same microsecond; the control plane's accept queue is not the thing measured.
  for (let i = 0; i < proxies.length; i += perTick) {
    for (const p of proxies.slice(i, i + perTick)) p.connect(target);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function handle(cmd: LoadCommand): void {
  switch (cmd.type) {
    case 'connect':
      void connectAll(cmd.target, cmd.proxies, cmd.perTick).then(() =>
        send({ type: 'connected', at: nowMs() }),
      );
      return;
    case 'status': {
      let responses = 0;
      let bytes = 0;
      let reconnects = 0;
      let outOfSync = 0;
      for (const p of proxies) {
        if (!p.inSync) outOfSync++;
        responses += p.responses;
        bytes += p.bytesReceived;
        reconnects += p.reconnects;
      }
      send({
        type: 'status',
        synced: syncedCount,
        proxies: proxies.length,
        responses,
        bytes,
        reconnects,
        outOfSync,
        errors: [...errors],
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
      });
      return;
    }
    case 'sync-times':
      send({
        type: 'sync-times',
        times: proxies.map((p) => ({
          id: p.identity.id,
          delta: p.identity.delta,
          connectStartedAt: p.connectStartedAt,
          syncedAt: p.syncedAt,
        })),
      });
      return;
    case 'watch': {
      const w: Watch = {
        change: cmd.change,
        needle: needleOf(cmd.change.address),
        names: new Set(cmd.change.clusters),
        arrivals: new Float64Array(proxies.length),
        arrived: 0,
      };
      watches.set(cmd.change.id, w);
      for (const n of w.names) watchesByName.set(n, [...(watchesByName.get(n) ?? []), w]);
      send({ type: 'watching', id: cmd.change.id });
      return;
    }
    case 'progress': {
      const w = watches.get(cmd.id);
      send({ type: 'progress', id: cmd.id, arrived: w?.arrived ?? 0, of: proxies.length });
      return;
    }
    case 'collect': {
      const arrivals: Record<number, number[]> = {};
      for (const id of cmd.ids) {
        const w = watches.get(id);
        if (!w) continue;
        arrivals[id] = [...w.arrivals];
        for (const n of w.names) {
          const rest = (watchesByName.get(n) ?? []).filter((x) => x !== w);
          if (rest.length > 0) watchesByName.set(n, rest);
          else watchesByName.delete(n);
        }
        watches.delete(id);
      }
      send({ type: 'arrivals', arrivals });
      return;
    }
    case 'record':
      if (cmd.on) {
        recording = proxies.map(() => []);
        send({ type: 'recording' });
      } else {
        const updates = recording ?? [];
        recording = null;
        send({ type: 'updates', updates });
      }
      return;
    case 'close':
      for (const p of proxies) p.close();
      loopDelay.disable();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 200).unref();
      return;
  }
}

process.on('message', (cmd: LoadCommand) => handle(cmd));
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
