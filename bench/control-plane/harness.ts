// Runs one control-plane benchmark: writes the mesh's configuration, starts `weft control-plane` as its own
// process, connects the simulated proxies from load processes, and measures the initial push, endpoint
// changes one at a time, and a steady stream of endpoint changes (starvation). Returns the results; run.ts
// writes them.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineInfo } from '../machine.ts';
import { CpuMeter, RssSampler, readMemory } from '../procstat.ts';
import { ProcessGroup, freePort, httpRequest, waitUntil } from '../processes.ts';
import type { ManagedProcess } from '../processes.ts';
import { parseCpuProfile, topSelfTime } from '../profile.ts';
import { changeAddress, generateMesh, rewriteWorkload } from './mesh-config.ts';
import type { GeneratedMesh, ServiceSpec, WorkloadSpec } from './mesh-config.ts';
import type { LoadCommand, LoadReply, LoadStatus, SyncTime, WatchedChange } from './protocol.ts';
import type { CpBenchOptions, CpBenchResults } from './report.ts';
import { checkGoals } from './report.ts';
import { nowMs } from './sim-proxy.ts';
import type { SimProxyIdentity } from './sim-proxy.ts';
import { changeLatency, distribution, starvation } from './stats.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

/** CPU seconds and peak RSS of the control plane over one phase. */
function phase(pid: number): { stop(): { cpuSeconds: number; peakRssMb: number } } {
  const cpu = new CpuMeter([pid]);
  const rss = new RssSampler([pid], 200);
  cpu.start();
  rss.start();
  return {
    stop: () => ({ cpuSeconds: cpu.stop(), peakRssMb: rss.stop().peakTotalKb / 1024 }),
  };
}

export interface HarnessOptions extends CpBenchOptions {
  /** Extra Node flags for the control plane. */
  readonly cpNodeArgs?: readonly string[];
  /** Longest wait for the initial push. */
  readonly syncTimeoutMs?: number;
  /** Longest wait for one change to reach every proxy. */
  readonly changeTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

type ReplyOf<T extends LoadReply['type']> = Extract<LoadReply, { type: T }>;

/** One load process and a FIFO of waiters per reply type. */
class LoadProcess {
  readonly child: ChildProcess;
  /** Global indices of the proxies it runs, in its own order. */
  readonly proxyIndices: number[] = [];
  readonly #waiters = new Map<string, ((reply: LoadReply) => void)[]>();
  exited = false;

  constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (reply: LoadReply) => {
      const queue = this.#waiters.get(reply.type);
      const next = queue?.shift();
      if (next) next(reply);
    });
    child.on('exit', () => {
      this.exited = true;
    });
  }

  wait<T extends LoadReply['type']>(type: T, timeoutMs: number): Promise<ReplyOf<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const queue = this.#waiters.get(type) ?? [];
        const i = queue.indexOf(done);
        if (i >= 0) queue.splice(i, 1);
        reject(new Error(`load process ${this.child.pid}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (reply: LoadReply): void => {
        clearTimeout(timer);
        resolve(reply as ReplyOf<T>);
      };
      const queue = this.#waiters.get(type) ?? [];
      queue.push(done);
      this.#waiters.set(type, queue);
    });
  }

  send(cmd: LoadCommand): void {
    this.child.send(cmd);
  }

  ask<T extends LoadReply['type']>(cmd: LoadCommand, type: T, timeoutMs = 30_000): Promise<ReplyOf<T>> {
    const reply = this.wait(type, timeoutMs);
    this.send(cmd);
    return reply;
  }
}

function changedClusters(service: ServiceSpec, w: WorkloadSpec): string[] {
  const ports = service.grpcPort ? [8080, 9090] : [8080];
  const out: string[] = [];
  for (const p of ports) {
    out.push(`outbound|${p}||${service.host}`);
    if (service.destinationRule) out.push(`outbound|${p}|${w.version}|${service.host}`);
  }
  return out;
}

function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('weft_xds_') || line.includes('_bucket')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (Number.isFinite(value)) out[line.slice(0, space)] = value;
  }
  return out;
}

export async function runHarness(o: HarnessOptions): Promise<CpBenchResults> {
  const log = o.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warnings: string[] = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'weft-cp-bench-'));
  const group = new ProcessGroup();
  const loads: LoadProcess[] = [];
  const onExit = (): void => {
    group.killAllNow();
    for (const l of loads) if (!l.exited) l.child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (): void => process.exit(130);
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const configDir = path.join(work, 'config');
    const mesh: GeneratedMesh = generateMesh(configDir, {
      services: o.services,
      endpoints: o.endpoints,
      namespaces: o.namespaces,
      proxies: o.proxies,
      deltaShare: o.deltaShare,
    });
    log(
      `mesh: ${mesh.services.length} services, ${mesh.workloads.length} endpoints, ${mesh.files} files, ` +
        `${mesh.clustersPerProxy} clusters per proxy, ${mesh.proxies.length} proxies`,
    );
    const serviceByName = new Map(mesh.services.map((s) => [s.name, s]));
    const workloads = [...mesh.workloads];

    // ---- the control plane ----
    const xdsPort = await freePort();
    const debugPort = await freePort();
    const profileDir = path.join(work, 'profile');
    const nodeArgs = [
      ...(o.cpNodeArgs ?? []),
      ...(o.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ];
    const spawnedAt = nowMs();
    const cp: ManagedProcess = group.spawn(
      'control-plane',
      process.execPath,
      [
        ...nodeArgs,
        o.cli,
        'control-plane',
        '--config',
        configDir,
        '--xds-port',
        String(xdsPort),
        '--debug-port',
        String(debugPort),
        // The CA runs, as by default (so the clusters carry mTLS), with its state in the scratch folder.
        '--state-dir',
        path.join(work, 'state'),
        '--log-level',
        'warn',
      ],
      { logFile: path.join(work, 'control-plane.log'), cwd: repoRoot },
    );
    const rss = new RssSampler([cp.pid], 200);
    rss.start();
    const cpTotal = new CpuMeter([cp.pid]);
    cpTotal.start();
    const readyUrl = `http://127.0.0.1:${debugPort}/ready`;
    await waitUntil(
      'the control plane to serve',
      async () => (await httpRequest(readyUrl, 2000)).status === 200,
      600_000,
      [cp],
    );
    const startupMs = nowMs() - spawnedAt;
    const readyRssMb = (readMemory(cp.pid)?.rssKb ?? 0) / 1024;
    log(
      `control plane ready in ${startupMs.toFixed(0)} ms (pid ${cp.pid}, xDS :${xdsPort}, debug :${debugPort})`,
    );

    // The slowest /ready answer shows how long the control plane's event loop was held.
    let slowestReadyMs = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t = nowMs();
        try {
          await httpRequest(readyUrl, 60_000);
        } catch {
          // counted as slow below
        }
        slowestReadyMs = Math.max(slowestReadyMs, nowMs() - t);
        await sleep(100);
      }
    })();

    // ---- load processes ----
    const procCount = Math.max(1, Math.min(o.loadProcs, o.proxies));
    for (let i = 0; i < procCount; i++) {
      const child = fork(path.join(import.meta.dirname, 'load.ts'), [], {
        serialization: 'advanced',
        execArgv: o.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, 'load')}`] : [],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const lp = new LoadProcess(child);
      loads.push(lp);
      await lp.wait('ready', 30_000);
    }
    const identities: SimProxyIdentity[][] = loads.map(() => []);
    mesh.proxies.forEach((p, i) => {
      const k = i % loads.length;
      loads[k].proxyIndices.push(i);
      identities[k].push({
        id: p.id,
        name: p.name,
        namespace: p.namespace,
        ip: p.ip,
        labels: p.labels,
        delta: p.delta,
      });
    });
    const loadPids = loads.map((l) => l.child.pid!).filter((pid) => pid !== undefined);
    const loadCpu = new CpuMeter(loadPids);
    loadCpu.start();

    const status = async (): Promise<LoadStatus[]> =>
      Promise.all(loads.map((l) => l.ask({ type: 'status' }, 'status')));

    // ---- initial push ----
    const pushPhase = phase(cp.pid);
    const target = `http://127.0.0.1:${xdsPort}`;
    const connectAt = nowMs();
    const allSynced = loads.map((l) => l.wait('all-synced', o.syncTimeoutMs ?? 900_000));
    loads.forEach((l, k) => l.send({ type: 'connect', target, proxies: identities[k], perTick: 20 }));
    const progress = setInterval(() => {
      void status()
        .then((st) => {
          const synced = st.reduce((a, s) => a + s.synced, 0);
          const mb = st.reduce((a, s) => a + s.bytes, 0) / 2 ** 20;
          log(`  initial push: ${synced}/${o.proxies} synced, ${mb.toFixed(0)} MB received`);
        })
        .catch(() => undefined);
    }, 10_000);
    let syncError: string | null = null;
    try {
      await Promise.all(allSynced);
    } catch (err) {
      syncError = (err as Error).message;
      warnings.push(`initial push incomplete: ${syncError}`);
    } finally {
      clearInterval(progress);
    }
    const pushMeasure = pushPhase.stop();
    const pushCpuSeconds = pushMeasure.cpuSeconds;
    const syncTimes: SyncTime[] = (
      await Promise.all(loads.map((l) => l.ask({ type: 'sync-times' }, 'sync-times')))
    ).flatMap((r) => r.times);
    const synced = syncTimes.filter((t) => t.syncedAt > 0);
    const fullPushMs =
      synced.length === syncTimes.length ? Math.max(...synced.map((t) => t.syncedAt)) - connectAt : null;
    const afterSync = await status();
    log(
      `initial push: ${synced.length}/${syncTimes.length} synced in ${fullPushMs === null ? '–' : fullPushMs.toFixed(0)} ms, ` +
        `${pushCpuSeconds.toFixed(1)} CPU s`,
    );
    if (synced.length === 0)
      throw new Error(`no proxy synced${syncError ? `: ${syncError}` : ''}\n${cp.outputTail()}`);

    // Let the registrations of the proxies (each is a workload) settle, and streams that were reset during the
    // push resync, before measuring changes: a change must start from proxies that have their config.
    await sleep(2000);
    for (const until = nowMs() + 120_000; nowMs() < until; await sleep(1000)) {
      const outOfSync = (await status()).reduce((a, s) => a + s.outOfSync, 0);
      if (outOfSync === 0) break;
      log(`  waiting for ${outOfSync} reconnected proxies to resync`);
    }

    let changeCounter = 0;
    const proxyCount = mesh.proxies.length;
    const mergeArrivals = (replies: ReplyOf<'arrivals'>[], id: number): number[] => {
      const merged = new Array<number>(proxyCount).fill(0);
      replies.forEach((r, k) => {
        const list = r.arrivals[id] ?? [];
        loads[k].proxyIndices.forEach((g, local) => (merged[g] = list[local] ?? 0));
      });
      return merged;
    };
    const prepareChange = async (): Promise<{ change: WatchedChange; index: number }> => {
      const id = changeCounter++;
      // A prime stride walks through the workloads so consecutive changes touch different services.
      const index = (id * 7919 + 11) % workloads.length;
      const w = workloads[index];
      const change: WatchedChange = {
        id,
        address: changeAddress(id),
        clusters: changedClusters(serviceByName.get(w.service)!, w),
      };
      await Promise.all(loads.map((l) => l.ask({ type: 'watch', change }, 'watching')));
      return { change, index };
    };
    const write = (index: number, address: string): number => {
      const at = nowMs();
      workloads[index] = rewriteWorkload(workloads[index], address);
      return at;
    };

    // ---- endpoint changes, one at a time ----
    const changePhase = phase(cp.pid);
    const latencies = [];
    const breakdown: { configMs: number; debounceMs: number; roundMs: number; deliveryMs: number }[] = [];
    const pushStatusUrl = `http://127.0.0.1:${debugPort}/debug/push_status`;
    for (let k = 0; k < o.changes; k++) {
      const { change, index } = await prepareChange();
      const writtenAt = write(index, change.address);
      const deadline = writtenAt + (o.changeTimeoutMs ?? 30_000);
      for (;;) {
        const p = await Promise.all(loads.map((l) => l.ask({ type: 'progress', id: change.id }, 'progress')));
        if (p.every((x) => x.arrived === x.of) || nowMs() > deadline) break;
        await sleep(20);
      }
      const replies = await Promise.all(
        loads.map((l) => l.ask({ type: 'collect', ids: [change.id] }, 'arrivals')),
      );
      const lat = changeLatency(change.id, writtenAt, mergeArrivals(replies, change.id));
      latencies.push(lat);
      // Where the time went, from the control plane's record of its last push round.
      try {
        const round = (
          JSON.parse((await httpRequest(pushStatusUrl, 10_000)).body.toString()) as {
            lastRound: { at: string; queuedMs: number; durationMs: number } | null;
          }
        ).lastRound;
        // (A control plane that does not report the round's timing gives no breakdown.)
        if (
          round &&
          lat.toAllMs !== null &&
          typeof round.durationMs === 'number' &&
          typeof round.queuedMs === 'number'
        ) {
          const roundEnd = Date.parse(round.at);
          const roundStart = roundEnd - round.durationMs;
          breakdown.push({
            configMs: roundStart - round.queuedMs - writtenAt,
            debounceMs: round.queuedMs,
            roundMs: round.durationMs,
            deliveryMs: writtenAt + lat.toAllMs - roundEnd,
          });
        }
      } catch {
        // no breakdown for this change
      }
      log(
        `  change ${k + 1}/${o.changes}: to all proxies ${lat.toAllMs === null ? `– (${lat.missing} missing)` : `${lat.toAllMs.toFixed(0)} ms`}`,
      );
      await sleep(300);
    }
    const changeMeasure = changePhase.stop();

    // ---- starvation: a change every interval for a while ----
    const starvePhase = phase(cp.pid);
    await Promise.all(loads.map((l) => l.ask({ type: 'record', on: true }, 'recording')));
    const starveChanges: { id: number; writtenAt: number }[] = [];
    const count = Math.floor((o.starvationS * 1000) / o.starvationIntervalMs);
    const starveStart = nowMs();
    for (let j = 0; j < count; j++) {
      const due = starveStart + j * o.starvationIntervalMs;
      const wait = due - nowMs();
      if (wait > 0) await sleep(wait);
      const { change, index } = await prepareChange();
      starveChanges.push({ id: change.id, writtenAt: write(index, change.address) });
      if ((j + 1) % 100 === 0) log(`  starvation: ${j + 1}/${count} changes written`);
    }
    const lastId = starveChanges.at(-1)?.id;
    if (lastId !== undefined) {
      const deadline = nowMs() + (o.changeTimeoutMs ?? 30_000);
      for (;;) {
        const p = await Promise.all(loads.map((l) => l.ask({ type: 'progress', id: lastId }, 'progress')));
        if (p.every((x) => x.arrived === x.of) || nowMs() > deadline) break;
        await sleep(50);
      }
    }
    await sleep(500);
    const updatesReplies = await Promise.all(
      loads.map((l) => l.ask({ type: 'record', on: false }, 'updates')),
    );
    const starveMeasure = starvePhase.stop();
    const ids = starveChanges.map((c) => c.id);
    const arrivalReplies = await Promise.all(
      loads.map((l) => l.ask({ type: 'collect', ids }, 'arrivals', 120_000)),
    );
    const updates: number[][] = new Array<number[]>(proxyCount).fill([]);
    updatesReplies.forEach((r, k) =>
      loads[k].proxyIndices.forEach((g, local) => (updates[g] = r.updates[local] ?? [])),
    );
    const starve = starvation(
      mesh.proxies.map((p) => p.id),
      updates,
      starveChanges.map((c) => ({ writtenAt: c.writtenAt, arrivals: mergeArrivals(arrivalReplies, c.id) })),
      o.gapLimitMs,
    );
    log(`starvation: ${starve.summary.starved} starved of ${proxyCount}`);

    // ---- wrap up ----
    const finalStatus = await status();
    const metrics = parseMetrics(
      (await httpRequest(`http://127.0.0.1:${debugPort}/metrics`, 30_000)).body.toString(),
    );
    probing = false;
    await probe;
    const loadCpuSeconds = loadCpu.stop();
    const cpuSeconds = cpTotal.stop();
    const memory = rss.stop();
    for (const l of loads) await l.ask({ type: 'close' }, 'closed').catch(() => undefined);
    await group.stop(cp);
    try {
      cpSync(path.join(work, 'control-plane.log'), path.join(os.tmpdir(), 'weft-cp-bench-control-plane.log'));
    } catch {
      // no log
    }

    let profile = null;
    if (o.profile) {
      await sleep(1000); // the load processes write their profiles as they exit
      const kept = path.join(os.tmpdir(), 'weft-cp-bench-profiles');
      rmSync(kept, { recursive: true, force: true });
      cpSync(profileDir, kept, { recursive: true });
      log(`CPU profiles (open in Chrome DevTools): ${kept}`);
      try {
        for (const file of readdirSync(path.join(profileDir, 'load')).filter((f) =>
          f.endsWith('.cpuprofile'),
        )) {
          const top = topSelfTime(
            parseCpuProfile(readFileSync(path.join(profileDir, 'load', file), 'utf8')),
            12,
            `file://${repoRoot}/`,
          );
          log(
            `load process profile (self time):\n${top.map((t) => `  ${t.selfMs.toFixed(0).padStart(7)} ms ${t.functionName} ${t.location}`).join('\n')}`,
          );
        }
      } catch (err) {
        warnings.push(`no load-process profile: ${(err as Error).message}`);
      }
      try {
        const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
        if (file)
          profile = topSelfTime(
            parseCpuProfile(readFileSync(path.join(profileDir, file), 'utf8')),
            25,
            `file://${repoRoot}/`,
          );
      } catch (err) {
        warnings.push(`no CPU profile: ${(err as Error).message}`);
      }
    }

    const loadErrors = finalStatus.flatMap((s) => s.errors);
    const reconnects = finalStatus.reduce((a, s) => a + s.reconnects, 0);
    const loopDelayMaxMs = Math.max(...finalStatus.map((s) => s.loopDelayMaxMs));
    if (os.availableParallelism() < 4)
      warnings.push(
        `${os.availableParallelism()} vCPU: the control plane and the load processes share them, so the load's own work is in the control plane's latencies`,
      );
    if (loopDelayMaxMs > 200)
      warnings.push(
        `a load process held its event loop for ${loopDelayMaxMs.toFixed(0)} ms at worst (during the initial push, parsing responses); receive times include that queueing`,
      );
    if (loadErrors.length > 0)
      warnings.push(
        `${reconnects} stream(s) failed and reconnected; first errors: ${loadErrors.slice(0, 3).join('; ')}`,
      );

    const perProxyChange = latencies.flatMap((l) => l.perProxyMs);
    const partial: Omit<CpBenchResults, 'goals'> = {
      schema: 1,
      machine: machineInfo(repoRoot),
      options: {
        services: o.services,
        endpoints: o.endpoints,
        namespaces: o.namespaces,
        proxies: o.proxies,
        deltaShare: o.deltaShare,
        loadProcs: procCount,
        changes: o.changes,
        starvationS: o.starvationS,
        starvationIntervalMs: o.starvationIntervalMs,
        gapLimitMs: o.gapLimitMs,
        quick: o.quick,
        profile: o.profile,
        cli: path.relative(repoRoot, o.cli) || o.cli,
      },
      mesh: {
        services: mesh.services.length,
        endpoints: mesh.workloads.length,
        namespaces: o.namespaces,
        proxies: proxyCount,
        deltaProxies: mesh.proxies.filter((p) => p.delta).length,
        files: mesh.files,
        clustersPerProxy: mesh.clustersPerProxy,
      },
      startupMs,
      readyRssMb,
      initialPush: {
        fullPushMs,
        perProxyMs: distribution(synced.map((t) => t.syncedAt - t.connectStartedAt)),
        synced: synced.length,
        megabytesReceived: afterSync.reduce((a, s) => a + s.bytes, 0) / 2 ** 20,
        cpuSeconds: pushCpuSeconds,
        peakRssMb: pushMeasure.peakRssMb,
      },
      endpointChange: {
        toAllMs: distribution(latencies.map((l) => l.toAllMs ?? Infinity)),
        perProxyMs: distribution(perProxyChange),
        missing: latencies.reduce((a, l) => a + l.missing, 0),
        breakdownMs: {
          configToPush: distribution(breakdown.map((b) => b.configMs)),
          debounce: distribution(breakdown.map((b) => b.debounceMs)),
          round: distribution(breakdown.map((b) => b.roundMs)),
          roundEndToLastProxy: distribution(breakdown.map((b) => b.deliveryMs)),
        },
        cpuSeconds: changeMeasure.cpuSeconds,
        peakRssMb: changeMeasure.peakRssMb,
      },
      starvation: {
        ...starve.summary,
        cpuSeconds: starveMeasure.cpuSeconds,
        peakRssMb: starveMeasure.peakRssMb,
        intervalMs: o.starvationIntervalMs,
      },
      controlPlane: {
        peakRssMb: memory.peakTotalKb / 1024,
        hwmRssMb: memory.hwmTotalKb / 1024,
        cpuSeconds,
        slowestReadyMs,
        metrics,
      },
      load: {
        processes: procCount,
        cpuSeconds: loadCpuSeconds,
        loopDelayMaxMs,
        reconnects,
        errors: loadErrors,
      },
      profile,
      warnings,
    };
    // A change that never reached every proxy counts as infinitely slow in the distribution (max = Infinity).
    return { ...partial, goals: checkGoals(partial) };
  } finally {
    process.removeListener('exit', onExit);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    for (const l of loads) if (!l.exited) l.child.kill('SIGKILL');
    await group.stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}
