/**
 * `weft up [DIR]`: checks the mesh file, then starts the control plane, each instance's sidecar and (once the
 * sidecar has its configuration and is ready) its app, and the ingress gateway; restarts what crashes, with
 * backoff; `weft restart` (through the control socket) restarts a workload's apps one instance at a time; on
 * SIGINT/SIGTERM the gateway stops taking requests and drains first, then the apps stop, then the sidecars drain,
 * then the control plane stops.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkloadTokens } from '../control/ca/workload-tokens.ts';
import { ControlServer, controlSocketPath } from './control.ts';
import type { ControlRequest } from './control.ts';
import { loadMeshFile, MESH_FILE_NAME, MeshFileError } from './mesh-file.ts';
import type { MeshFile, MeshMode } from './mesh-file.ts';
import {
  createNetworks,
  destroyNetworks,
  freeSubnetIndex,
  netnsExec,
  newRunId,
  transparentProblem,
} from './netns.ts';
import { originalDstSupport } from '../proxy/network/original-dst.ts';
import {
  buildPlan,
  DEFAULT_FIRST_IP,
  firstIpProblem,
  generatedYaml,
  instanceIp,
  serviceHost,
  serviceVips,
  withPrivatePorts,
} from './plan.ts';
import type { InstancePlan, Readiness, RunPlan } from './plan.ts';
import { canBind, freePorts } from './ports.ts';
import {
  describeExit,
  adminText,
  httpReady,
  logTail,
  ManagedProcess,
  RUN_MARK,
  spawnWeft,
  tcpReady,
} from './process.ts';
import type { Exit } from './process.ts';
import { isAlive, readRunState, writeRunState } from './run-state.ts';
import type { RunInstance, RunState } from './run-state.ts';

/** Restart delay after the n-th consecutive crash (1-based): 1 s doubling, at most 30 s. */
export function backoffMs(n: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, n - 1));
}

/** A process that ran this long before crashing starts its backoff over. */
const STABLE_MS = 60_000;
const CONTROL_PLANE_READY_MS = 30_000;
const SIDECAR_READY_MS = 30_000;
const APP_READY_REPORT_MS = 60_000;
const APP_STOP_GRACE_MS = 5_000;
/** How long `weft restart` waits for a restarted app to be ready before it gives up on the rest. */
const RESTART_READY_MS = 60_000;
/** How long a restart waits for the sidecar to route to the new app (file watch, push, apply: well under 1 s). */
const SWITCH_MS = 30_000;
/** The sidecars' drain (5 s by default) plus margin. */
const PROXY_STOP_GRACE_MS = 15_000;
const POLL_MS = 100;

export interface UpOptions {
  /** The mesh directory. */
  readonly dir: string;
  /** How messages name it (as typed). */
  readonly shownDir?: string;
  /** The first instance's loopback IP (default 127.0.0.10); the others count up from it. */
  readonly firstIp?: string;
  /** Overrides weft.yaml's mesh.mode. */
  readonly mode?: MeshMode;
  readonly out?: (line: string) => void;
}

/** Why transparent mode cannot run here (not root, no iptables, the SO_ORIGINAL_DST addon not built), or undefined. */
function transparentUnavailable(): string | undefined {
  const problem = transparentProblem();
  if (problem !== undefined) return problem;
  const addon = originalDstSupport();
  return addon.available ? undefined : addon.reason;
}

type Outcome = { ok: true } | { ok: false; why: string };

/** Does this build's `weft control-plane` take --dashboard-port (the dashboard is built alongside)? */
function controlPlaneHasDashboard(): boolean {
  const ext = path.extname(fileURLToPath(import.meta.url));
  for (const f of ['main', 'control-plane-command']) {
    try {
      if (fs.readFileSync(new URL(`../cli/${f}${ext}`, import.meta.url), 'utf8').includes('dashboard-port'))
        return true;
    } catch {
      // not there
    }
  }
  return false;
}

/** Problems only the machine can show (directories, ports, a mesh already running), before anything starts. */
async function preflight(
  mesh: MeshFile,
  shown: string,
  dashboard: boolean,
  firstIp: string,
): Promise<string[]> {
  const problems: string[] = [];
  const file = path.join(shown, MESH_FILE_NAME);
  mesh.workloads.forEach((w, i) => {
    let ok: boolean;
    try {
      ok = fs.statSync(w.cwd).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`${file}: workloads[${i}].cwd: ${w.cwd} is not a directory`);
  });
  const running = readRunState(mesh.dir);
  if (running && running.stoppedAt === undefined && running.pid !== process.pid && isAlive(running.pid))
    problems.push(
      `${shown}: a mesh is already running here (weft up pid ${running.pid}); stop it with weft down ${shown}`,
    );
  const fixed: [string, number][] = [
    ['mesh.controlPlane.xdsPort', mesh.controlPlane.xdsPort],
    ['mesh.controlPlane.debugPort', mesh.controlPlane.debugPort],
    ...(dashboard
      ? [['mesh.controlPlane.dashboardPort', mesh.controlPlane.dashboardPort] as [string, number]]
      : []),
    ...(mesh.gateway?.ports ?? []).map((p, i) => [`gateway.ports[${i}]`, p] as [string, number]),
  ];
  for (const [field, port] of fixed)
    if (port !== 0 && !(await canBind(port)))
      problems.push(`${file}: ${field}: port ${port} is in use on 127.0.0.1`);
  // Each instance's sidecar takes the service ports on the instance's own IP: another mesh may hold them.
  let n = 0;
  for (const [i, w] of mesh.workloads.entries())
    for (let r = 0; r < w.replicas; r++) {
      const ip = instanceIp(n++, firstIp);
      for (const [j, p] of w.ports.entries())
        if (!(await canBind(p.port, ip)))
          problems.push(
            `${file}: workloads[${i}].ports[${j}].port: ${p.port} is in use on ${ip} (instance ${w.name}-${r}; another weft up?)`,
          );
    }
  return problems;
}

class Reporter {
  readonly #out: (line: string) => void;
  readonly #width: number;
  readonly #taps = new Set<(line: string) => void>();

  constructor(out: (line: string) => void, labels: readonly string[]) {
    this.#out = out;
    this.#width = Math.max(14, ...labels.map((l) => l.length));
  }

  line(component: string, message: string, tail: readonly string[] = []): void {
    this.raw(`  ${component.padEnd(this.#width)}  ${message}`);
    for (const t of tail) this.raw(`  ${' '.repeat(this.#width)}  | ${t}`);
  }

  raw(line: string): void {
    this.#out(line);
    for (const tap of this.#taps) tap(line);
  }

  /** Also sends every line to `fn` (a `weft restart` client) until the returned function is called. */
  tap(fn: (line: string) => void): () => void {
    this.#taps.add(fn);
    return () => this.#taps.delete(fn);
  }
}

/** Polls `check` until it passes, the process exits, `stopping()` or `timeoutMs` (if given) passes. */
async function waitReady(
  check: () => Promise<boolean>,
  proc: ManagedProcess,
  stopping: () => boolean,
  timeoutMs?: number,
): Promise<Outcome> {
  const start = Date.now();
  for (;;) {
    if (proc.exit) return { ok: false, why: describeExit(proc.exit) };
    if (stopping()) return { ok: false, why: 'stopping' };
    if (await check()) return { ok: true };
    if (timeoutMs !== undefined && Date.now() - start > timeoutMs)
      return { ok: false, why: `not ready after ${Math.round(timeoutMs / 1000)} s` };
    await sleep(POLL_MS);
  }
}

function probe(r: Readiness): () => Promise<boolean> {
  switch (r.kind) {
    case 'http':
      return () => httpReady(r.port, r.path, r.host);
    case 'tcp':
      return () => tcpReady(r.port, r.host);
    case 'none':
      return () => Promise.resolve(true);
  }
}

class Mesh {
  readonly plan: RunPlan;
  readonly report: Reporter;
  readonly state: RunState;
  stopping = false;
  /** Start-up is over (a restart before then would race with it). */
  up = false;
  control?: ControlServer;
  readonly #timers = new Set<NodeJS.Timeout>();
  controlPlane?: ManagedProcess;
  gateway?: ManagedProcess;
  readonly instances: InstanceRunner[];

  constructor(plan: RunPlan, report: Reporter) {
    this.plan = plan;
    this.report = report;
    this.state = {
      pid: process.pid,
      mesh: plan.mesh.name,
      dir: plan.mesh.dir,
      startedAt: new Date().toISOString(),
      controlPlane: {
        xdsPort: plan.controlPlane.xdsPort,
        debugPort: plan.controlPlane.debugPort,
        dashboardPort: plan.controlPlane.dashboardPort,
        log: plan.controlPlane.log,
      },
      ...(plan.gateway
        ? {
            gateway: {
              ports: [...plan.gateway.ports],
              admin: plan.gateway.admin,
              log: plan.gateway.log,
            },
          }
        : {}),
      instances: [],
    };
    this.instances = plan.instances.map((p) => new InstanceRunner(this, p));
    this.save();
  }

  save(): void {
    writeRunState(this.plan.paths.runFile, this.state);
  }

  /**
   * Writes the generated Istio resources again from the instances' current plans (an app moved to new
   * ports), whole and renamed into place: the control plane's watcher never reads half a file.
   */
  writeGenerated(): void {
    const instances = this.instances.map((i) => i.plan);
    const vips = this.plan.transparent ? serviceVips(instances) : undefined;
    const file = path.join(this.plan.paths.generatedDir, this.plan.generated[0].file);
    const tmp = path.join(this.plan.paths.weftDir, `generated.${process.pid}.tmp`);
    fs.writeFileSync(tmp, generatedYaml(this.plan.mesh, instances, vips));
    fs.renameSync(tmp, file);
  }

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async startControlPlane(): Promise<Outcome> {
    const started = Date.now();
    this.report.line('control-plane', 'starting');
    const cp = spawnWeft(this.plan.controlPlane.args, this.plan.controlPlane.log);
    this.controlPlane = cp;
    this.state.controlPlane.pid = cp.pid;
    this.save();
    const r = await waitReady(
      () => httpReady(this.plan.controlPlane.debugPort, '/ready'),
      cp,
      () => this.stopping,
      CONTROL_PLANE_READY_MS,
    );
    if (r.ok) {
      this.report.line('control-plane', `ready in ${Date.now() - started} ms`);
      void cp.exited.then((e) => {
        if (!this.stopping)
          this.report.line(
            'control-plane',
            `${describeExit(e)}; proxies keep their last configuration`,
            logTail(this.plan.controlPlane.log),
          );
      });
    } else if (!this.stopping)
      this.report.line('control-plane', `failed: ${r.why}`, logTail(this.plan.controlPlane.log));
    return r;
  }

  async startGateway(): Promise<Outcome> {
    const g = this.plan.gateway;
    if (!g) return { ok: true };
    const label = 'gateway';
    const started = Date.now();
    this.report.line(label, 'starting');
    const gw = spawnWeft(g.args, g.log);
    this.gateway = gw;
    this.state.gateway!.pid = gw.pid;
    this.save();
    const r = await waitReady(
      () => httpReady(g.admin, '/ready'),
      gw,
      () => this.stopping,
      SIDECAR_READY_MS,
    );
    if (r.ok) this.report.line(label, `ready in ${Date.now() - started} ms`);
    else if (!this.stopping) this.report.line(label, `failed: ${r.why}`, logTail(g.log));
    return r;
  }

  /** `weft restart NAME`: each instance of the workload in turn; resolves with the reason it failed, if it did. */
  async restartWorkload(req: ControlRequest, progress: (line: string) => void): Promise<string | undefined> {
    const name = req.workload;
    const targets = this.instances.filter(
      (i) => i.plan.workload === name || `${i.plan.workload}.${i.plan.namespace}` === name,
    );
    if (targets.length === 0) {
      const known = [...new Set(this.instances.map((i) => i.plan.workload))];
      return `no workload ${JSON.stringify(name)} in mesh ${this.plan.mesh.name} (workloads: ${known.join(', ')})`;
    }
    if (this.stopping) return `mesh ${this.plan.mesh.name} is stopping`;
    if (!this.up) return `mesh ${this.plan.mesh.name} is still starting; try again once it is up`;
    if (targets.some((t) => t.rolling)) return `${name} is already being restarted`;
    for (const t of targets) t.rolling = true;
    const untap = this.report.tap(progress);
    try {
      const started = Date.now();
      this.report.raw(
        `weft: restarting ${name}: ${targets.length} instance${targets.length > 1 ? 's' : ''}, one at a time`,
      );
      for (const t of targets) {
        const r = await t.restartApp();
        if (!r.ok) {
          const rest = targets.slice(targets.indexOf(t) + 1).map((x) => x.label);
          return `${t.label}: ${r.why}${rest.length > 0 ? `; not restarted: ${rest.join(', ')}` : ''}`;
        }
      }
      this.report.raw(`weft: restarted ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return undefined;
    } finally {
      untap();
      for (const t of targets) t.rolling = false;
    }
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    this.report.raw(
      `weft: stopping ${this.plan.mesh.name}: gateway (drain), then apps, then sidecars (drain), then control plane`,
    );
    await this.control?.close();
    // North-south traffic stops first: the gateway takes no new request and lets those in flight (and those
    // on connections it just accepted) finish while every app behind it still runs. Then each app stops
    // (draining its own requests) before its sidecar.
    if (this.gateway) await this.gateway.stop(PROXY_STOP_GRACE_MS);
    await Promise.all(this.instances.map((i) => i.stopApp()));
    await Promise.all(this.instances.map((i) => i.stopSidecar()));
    if (this.controlPlane) await this.controlPlane.stop(PROXY_STOP_GRACE_MS);
    if (this.plan.transparent) {
      try {
        await destroyNetworks(this.plan.transparent.networks.runId);
      } catch (e) {
        this.report.raw(`weft: could not remove every network namespace: ${(e as Error).message}`);
      }
    }
    this.state.stoppedAt = new Date().toISOString();
    for (const i of this.state.instances) i.state = 'stopped';
    this.save();
  }
}

class InstanceRunner {
  readonly mesh: Mesh;
  /** Replaced when `weft restart` moves the app to new private ports. */
  plan: InstancePlan;
  readonly state: RunInstance;
  app?: ManagedProcess;
  /** The app a restart replaced, while it finishes its requests. */
  #retiring?: ManagedProcess;
  /** A restart's new app is starting beside the old one: its failure is the restart's, not a crash. */
  #surging = false;
  sidecar?: ManagedProcess;
  #appCrashes = 0;
  #sidecarCrashes = 0;
  /** A requested restart is under way: the app's exit is not a crash. */
  rolling = false;
  #stoppingForRestart = false;

  constructor(mesh: Mesh, plan: InstancePlan) {
    this.mesh = mesh;
    this.plan = plan;
    this.state = {
      workload: plan.workload,
      instance: plan.instance,
      namespace: plan.namespace,
      ip: plan.ip,
      admin: plan.admin,
      outbound: plan.outbound,
      ports: plan.ports.map((p) => ({ service: p.service, private: p.private })),
      state: 'starting',
      restarts: 0,
      appLog: plan.appLog,
      sidecarLog: plan.sidecarLog,
      ...(plan.network ? { netns: plan.network.netns, appIp: plan.network.appIp } : {}),
    };
    mesh.state.instances.push(this.state);
  }

  get label(): string {
    return this.plan.namespace === 'default'
      ? this.plan.instance
      : `${this.plan.instance}.${this.plan.namespace}`;
  }

  #set(state: RunInstance['state']): void {
    this.state.state = state;
    this.mesh.save();
  }

  /** Sidecar, then app. Resolves when the app is ready, has failed, or is still not ready after a minute. */
  async start(): Promise<Outcome & { fatal?: boolean }> {
    const sidecar = await this.#startSidecar();
    if (!sidecar.ok) return { ...sidecar, fatal: true };
    const app = this.#startApp('start');
    const slow = sleep(APP_READY_REPORT_MS, 'slow' as const);
    const r = await Promise.race([app, slow]);
    if (r === 'slow') {
      this.mesh.report.line(
        `${this.label} app`,
        `not ready after ${APP_READY_REPORT_MS / 1000} s; still waiting`,
        logTail(this.plan.appLog),
      );
      return { ok: false, why: 'not ready' };
    }
    return r;
  }

  async #startSidecar(): Promise<Outcome> {
    const label = `${this.label} sidecar`;
    const started = Date.now();
    this.mesh.report.line(label, this.#sidecarCrashes > 0 ? 'restarting' : 'starting');
    const p = spawnWeft(this.plan.sidecarArgs, this.plan.sidecarLog);
    this.sidecar = p;
    this.state.sidecarPid = p.pid;
    this.mesh.save();
    void p.exited.then((e) => this.#onSidecarExit(p, e));
    const r = await waitReady(
      () => httpReady(this.plan.admin, '/ready'),
      p,
      () => this.mesh.stopping,
      SIDECAR_READY_MS,
    );
    if (r.ok) this.mesh.report.line(label, `ready in ${Date.now() - started} ms (config received)`);
    else if (!this.mesh.stopping) {
      this.mesh.report.line(label, `failed: ${r.why}`, logTail(this.plan.sidecarLog));
      if (!p.exit) await p.stop(PROXY_STOP_GRACE_MS);
    }
    return r;
  }

  /**
   * `weft restart`: stops the app (SIGTERM; it drains; SIGKILL after 5 s) while the sidecar keeps running (callers
   * get 503 from it, which their retry policy sends to another replica), starts it again and waits until it is
   * ready.
   */
  async restartApp(): Promise<Outcome> {
    const label = `${this.label} app`;
    const old = this.app;
    if (old && !old.exit && this.plan.ports.length > 0) return this.#surge(old);
    if (old && !old.exit) {
      const started = Date.now();
      this.mesh.report.line(label, 'stopping (restart requested)');
      this.#stoppingForRestart = true;
      this.#set('restarting');
      try {
        const e = await old.stop(APP_STOP_GRACE_MS);
        this.mesh.report.line(label, `stopped in ${Date.now() - started} ms (${describeExit(e)})`);
      } finally {
        this.#stoppingForRestart = false;
      }
    }
    if (this.mesh.stopping) return { ok: false, why: 'the mesh is stopping' };
    // A restart on request starts the crash backoff over; an exit of the new app is a crash as any other.
    this.#appCrashes = 0;
    const r = await Promise.race([
      this.#startApp('requested'),
      sleep(RESTART_READY_MS, 'slow' as const, { ref: false }),
    ]);
    if (r === 'slow') return { ok: false, why: `app not ready after ${RESTART_READY_MS / 1000} s` };
    return r.ok ? r : { ok: false, why: `app ${r.why}` };
  }

  /**
   * A restart without a gap, as a Kubernetes rolling update with surge: the new app starts on new private
   * ports beside the old one; once it is ready the sidecar's inbound is pointed at it (the generated
   * Sidecar's defaultEndpoint, pushed by the control plane), and only then is the old app stopped (SIGTERM:
   * it finishes what it serves). A new app that does not become ready (one that ignores $PORT fails to bind
   * beside the old one) leaves the old one serving.
   */
  async #surge(old: ManagedProcess): Promise<Outcome> {
    const label = `${this.label} app`;
    const previous = this.plan;
    let fresh: number[];
    try {
      fresh = await freePorts(previous.ports.length, new Set(previous.ports.map((p) => p.private)));
    } catch (e) {
      return { ok: false, why: (e as Error).message };
    }
    this.plan = withPrivatePorts(previous, fresh);
    this.#appCrashes = 0;
    this.#surging = true;
    let r: Outcome | 'slow';
    try {
      r = await Promise.race([
        this.#startApp('requested'),
        sleep(RESTART_READY_MS, 'slow' as const, { ref: false }),
      ]);
    } finally {
      this.#surging = false;
    }
    if (r !== 'slow' && r.ok) {
      this.state.ports = this.plan.ports.map((p) => ({ service: p.service, private: p.private }));
      this.mesh.save();
      this.mesh.writeGenerated();
      const switchStart = Date.now();
      if (await this.#inboundOn(this.plan, SWITCH_MS)) {
        this.mesh.report.line(
          label,
          `serving on port ${fresh.join(', ')} (sidecar switched in ${Date.now() - switchStart} ms); stopping the old app`,
        );
        this.#retiring = old;
        const stopStart = Date.now();
        const e = await old.stop(APP_STOP_GRACE_MS);
        this.#retiring = undefined;
        this.mesh.report.line(label, `old app stopped in ${Date.now() - stopStart} ms (${describeExit(e)})`);
        return { ok: true };
      }
      r = { ok: false, why: `the sidecar did not route to the new app within ${SWITCH_MS / 1000} s` };
    }
    // Back to the old app, which never stopped serving.
    const failed = this.app;
    this.plan = previous;
    this.app = old;
    if (old.pid !== 0) this.state.appPid = old.pid;
    this.state.ports = previous.ports.map((p) => ({ service: p.service, private: p.private }));
    this.mesh.writeGenerated();
    if (failed !== undefined && failed !== old && !failed.exit) await failed.stop(APP_STOP_GRACE_MS);
    this.#set(old.exit ? 'crashed' : 'ready');
    const why = r === 'slow' ? `not ready after ${RESTART_READY_MS / 1000} s` : r.why;
    return {
      ok: false,
      why: `the new app did not take over (${why}); the old one still serves`,
    };
  }

  /** Polls the sidecar's /clusters until every inbound cluster of `plan` has the app's current port, and only it. */
  async #inboundOn(plan: InstancePlan, timeoutMs: number): Promise<boolean> {
    const host = plan.network?.appIp ?? '127.0.0.1';
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.mesh.stopping) {
      const text = await adminText(plan.admin, '/clusters');
      const lines = text.split('\n');
      const routed = plan.ports.every((p) => {
        const hosts = lines
          .filter((l) => l.startsWith(`inbound|${p.service}||::`) && l.includes('::health_flags::'))
          .map((l) => l.split('::')[1]);
        return hosts.length === 1 && hosts[0] === `${host}:${p.private}`;
      });
      if (routed) return true;
      await sleep(POLL_MS);
    }
    return false;
  }

  /** Starts the app and waits (without a limit) until it is ready, exits or the mesh stops. */
  async #startApp(why: 'start' | 'crash' | 'requested'): Promise<Outcome> {
    const label = `${this.label} app`;
    const started = Date.now();
    this.mesh.report.line(
      label,
      why === 'start'
        ? 'starting'
        : why === 'crash'
          ? `restarting (restart ${this.state.restarts})`
          : 'starting (restart requested)',
    );
    const restart = why !== 'start';
    const { command, cwd, env } = this.plan.app;
    const argv = 'argv' in command ? [...command.argv] : ['/bin/sh', '-c', command.shell];
    // `ip netns exec` enters the namespace and execs the command: the pid (and process group) stay the app's.
    const [file, ...args] = this.plan.network ? [...netnsExec(this.plan.network), ...argv] : argv;
    fs.appendFileSync(
      this.plan.appLog,
      `${RUN_MARK}${restart ? 'restarting' : 'starting'} ${this.plan.instance} at ${new Date().toISOString()} ---\n`,
    );
    // The Node that runs weft comes first on the app's PATH: `node app.mjs` then gets Node 24 (which honours
    // NODE_USE_ENV_PROXY) even where the machine's own node is older.
    const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
    const p = new ManagedProcess(file, args, {
      cwd,
      env: { ...process.env, PATH, ...env },
      log: this.plan.appLog,
    });
    this.app = p;
    if (p.pid !== 0) this.state.appPid = p.pid;
    else delete this.state.appPid;
    this.#set(restart ? 'restarting' : 'starting');
    void p.exited.then((e) => this.#onAppExit(p, e));
    const r = await waitReady(probe(this.plan.readiness), p, () => this.mesh.stopping);
    if (r.ok) {
      this.mesh.report.line(label, `ready in ${Date.now() - started} ms`);
      this.#set('ready');
    }
    // A failure is reported by the exit handler, which also schedules the restart.
    return r;
  }

  #onAppExit(p: ManagedProcess, e: Exit): void {
    if (this.mesh.stopping || this.app !== p || this.#stoppingForRestart || this.#surging) return;
    if (Date.now() - p.startedAt > STABLE_MS) this.#appCrashes = 0;
    this.#appCrashes++;
    this.state.restarts++;
    const delay = backoffMs(this.#appCrashes);
    this.#set('crashed');
    this.mesh.report.line(
      `${this.label} app`,
      `failed: ${describeExit(e)}; restarting in ${delay / 1000} s`,
      logTail(this.plan.appLog),
    );
    // A `weft restart` meanwhile has started a new app already.
    this.mesh.later(delay, () => {
      if (this.app === p && !this.mesh.stopping) void this.#startApp('crash');
    });
  }

  #onSidecarExit(p: ManagedProcess, e: Exit): void {
    if (this.mesh.stopping || this.sidecar !== p) return;
    // A sidecar that never became ready is reported by its start; only a running one is restarted.
    if (this.state.state === 'starting' && !this.app) return;
    if (Date.now() - p.startedAt > STABLE_MS) this.#sidecarCrashes = 0;
    this.#sidecarCrashes++;
    const delay = backoffMs(this.#sidecarCrashes);
    this.#set('restarting');
    this.mesh.report.line(
      `${this.label} sidecar`,
      `failed: ${describeExit(e)}; restarting in ${delay / 1000} s`,
      logTail(this.plan.sidecarLog),
    );
    this.mesh.later(delay, () => {
      void this.#startSidecar().then((r) => {
        if (r.ok && this.app && !this.app.exit && this.state.state === 'restarting') this.#set('ready');
        else if (!r.ok && !this.mesh.stopping) this.#onSidecarExit(p, this.sidecar?.exit ?? e);
      });
    });
  }

  async stopApp(): Promise<void> {
    await Promise.all(
      [this.app, this.#retiring].map((p) => (p ? p.stop(APP_STOP_GRACE_MS) : Promise.resolve())),
    );
  }

  async stopSidecar(): Promise<void> {
    if (this.sidecar) await this.sidecar.stop(PROXY_STOP_GRACE_MS);
  }
}

function summary(mesh: Mesh, seconds: string, ready: number): string[] {
  const { plan } = mesh;
  const shown = plan.mesh.dir;
  const total = mesh.instances.length;
  const lines = [
    ready === total
      ? `weft: mesh ${JSON.stringify(plan.mesh.name)} is up: ${total} of ${total} instances ready in ${seconds} s`
      : `weft: mesh ${JSON.stringify(plan.mesh.name)} is up with problems: ${ready} of ${total} instances ready after ${seconds} s`,
  ];
  const g = plan.gateway;
  if (g) for (const p of g.ports) lines.push(`  gateway      http://127.0.0.1:${p}/`);
  if (plan.controlPlane.dashboardPort > 0)
    lines.push(`  dashboard    http://127.0.0.1:${plan.controlPlane.dashboardPort}/`);
  lines.push(
    `  control      xDS 127.0.0.1:${plan.controlPlane.xdsPort}, debug http://127.0.0.1:${plan.controlPlane.debugPort}/debug`,
  );
  const first = plan.instances.find((i) => i.ports.length > 0);
  if (g && g.ports.length > 0) lines.push(`  traffic      curl http://127.0.0.1:${g.ports[0]}/`);
  if (first && plan.transparent) {
    const caller = plan.instances.find((i) => i !== first) ?? first;
    lines.push(
      `  in the mesh  ip netns exec ${caller.network?.netns} curl http://${first.service}.${first.namespace}:${first.ports[0].service}/` +
        `   (from ${caller.instance}'s namespace, captured by its sidecar)`,
    );
  } else if (first) {
    const caller = plan.instances.find((i) => i !== first) ?? first;
    lines.push(
      `  in the mesh  curl -x http://127.0.0.1:${caller.outbound} http://${serviceHost(first.service, first.namespace)}:${first.ports[0].service}/` +
        `   (through ${caller.instance}'s sidecar)`,
    );
  }
  lines.push(
    `  status       weft status ${shown}   ·   logs: weft logs WORKLOAD ${shown} -f   ·   stop: weft down ${shown} or Ctrl-C`,
  );
  return lines;
}

/** Runs the mesh until SIGINT/SIGTERM/SIGHUP; resolves with the exit code. */
export async function runUp(o: UpOptions): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const err = (line: string): void => void process.stderr.write(line + '\n');
  const dir = path.resolve(o.dir);
  const shown = o.shownDir ?? o.dir;
  const dashboard = controlPlaneHasDashboard();
  let meshFile: MeshFile;
  try {
    meshFile = loadMeshFile(dir, shown);
  } catch (e) {
    if (!(e instanceof MeshFileError)) throw e;
    err(`weft: ${shown} is not a valid mesh; nothing started:`);
    for (const p of e.problems) err(`  ${p}`);
    return 1;
  }
  const firstIp = o.firstIp ?? DEFAULT_FIRST_IP;
  const ipProblem = firstIpProblem(
    firstIp,
    meshFile.workloads.reduce((n, w) => n + w.replicas, 0),
  );
  if (ipProblem !== undefined) {
    err(`weft: --first-ip: ${ipProblem}; nothing started`);
    return 1;
  }
  const problems = await preflight(meshFile, shown, dashboard, firstIp);
  if (problems.length > 0) {
    err('weft: cannot start; nothing started:');
    for (const p of problems) err(`  ${p}`);
    return 1;
  }
  const cp = meshFile.controlPlane;
  const needed =
    [cp.xdsPort, cp.debugPort, dashboard ? cp.dashboardPort : 1].filter((p) => p === 0).length +
    (meshFile.gateway ? 1 : 0) +
    meshFile.workloads.reduce((n, w) => n + w.replicas * (w.ports.length + 2), 0);
  const avoid = new Set([cp.xdsPort, cp.debugPort, cp.dashboardPort, ...(meshFile.gateway?.ports ?? [])]);
  const pool = await freePorts(needed, avoid);
  let mode = o.mode ?? meshFile.mode;
  if (mode === 'transparent') {
    const why = transparentUnavailable();
    if (why !== undefined) {
      err(`weft: transparent mode is unavailable here (${why}); running in explicit mode (HTTP_PROXY)`);
      mode = 'explicit';
    }
  }
  let transparent: { runId: string; subnetIndex: number } | undefined;
  if (mode === 'transparent') {
    const runId = newRunId();
    transparent = { runId, subnetIndex: await freeSubnetIndex(runId) };
  }
  const plan = buildPlan(meshFile, {
    allocatePort: () => pool.shift()!,
    dashboard,
    firstIp,
    ...(transparent ? { transparent } : {}),
  });

  const { paths } = plan;
  for (const d of [paths.weftDir, paths.logsDir, paths.tokensDir, paths.generatedDir])
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  for (const f of fs.readdirSync(paths.generatedDir))
    fs.rmSync(path.join(paths.generatedDir, f), { force: true });
  for (const g of plan.generated) fs.writeFileSync(path.join(paths.generatedDir, g.file), g.yaml);
  for (const f of fs.readdirSync(paths.logsDir)) fs.writeFileSync(path.join(paths.logsDir, f), '');
  const tokens = WorkloadTokens.open(paths.stateDir);
  for (const i of plan.instances)
    fs.writeFileSync(
      i.tokenFile,
      tokens.issue({ namespace: i.namespace, serviceAccount: i.serviceAccount }),
      {
        mode: 0o600,
      },
    );
  if (plan.gateway)
    fs.writeFileSync(
      plan.gateway.tokenFile,
      tokens.issue({ namespace: plan.gateway.namespace, serviceAccount: plan.gateway.serviceAccount }),
      { mode: 0o600 },
    );

  const report = new Reporter(out, [
    'control-plane',
    ...plan.instances.flatMap((i) => [`${i.instance} sidecar`, `${i.instance}.${i.namespace} sidecar`]),
  ]);
  const mesh = new Mesh(plan, report);
  try {
    mesh.control = await ControlServer.listen(controlSocketPath(paths.weftDir), (req, progress) =>
      mesh.restartWorkload(req, progress),
    );
    mesh.state.control = mesh.control.path;
    mesh.save();
  } catch (e) {
    // The mesh runs without it; only `weft restart` is unavailable.
    report.raw(`weft: no control socket (weft restart will not work): ${(e as Error).message}`);
  }
  let onStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (onStop = resolve));
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let signalled = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // A second Ctrl-C: no more waiting. Exiting SIGKILLs every process group still running.
      err(`weft: ${signal} again: killing everything now`);
      process.exit(130);
    }
    signalled = true;
    mesh.stopping = true;
    onStop();
  };
  for (const s of signals) process.on(s, handler);

  const started = Date.now();
  out(
    `weft: starting mesh ${JSON.stringify(plan.mesh.name)} from ${path.join(shown, MESH_FILE_NAME)} (${plan.transparent ? 'transparent' : 'explicit'} mode)`,
  );
  if (plan.transparent) {
    const { networks, hosts } = plan.transparent;
    // Recorded first: weft down sweeps them even if this process dies half-way.
    mesh.state.network = { runId: networks.runId, subnet: networks.subnet };
    mesh.save();
    try {
      await createNetworks(networks, hosts);
      report.line(
        'network',
        `${networks.instances.length} namespaces on ${networks.subnet}, outbound TCP captured (iptables chain ${networks.chain})`,
      );
    } catch (e) {
      err(`weft: cannot create the network namespaces; nothing started: ${(e as Error).message}`);
      await destroyNetworks(networks.runId).catch(() => undefined);
      mesh.state.stoppedAt = new Date().toISOString();
      mesh.save();
      for (const sig of signals) process.off(sig, handler);
      await mesh.control?.close();
      return 1;
    }
  }
  let code = 0;
  const cpReady = await mesh.startControlPlane();
  if (!cpReady.ok) code = mesh.stopping ? 0 : 1;
  else {
    const [gateway, ...instances] = await Promise.all([
      mesh.startGateway(),
      ...mesh.instances.map((i) => i.start()),
    ]);
    // A proxy that does not start is Weft's problem (or a port's): stop. An app that does not is restarted.
    const fatal = !gateway.ok || instances.some((r) => !r.ok && r.fatal === true);
    if (mesh.stopping) code = 0;
    else if (fatal) {
      err('weft: the mesh could not start (see above); stopping what started');
      code = 1;
    } else {
      mesh.up = true;
      const ready = mesh.instances.filter((i) => i.state.state === 'ready').length;
      for (const line of summary(mesh, ((Date.now() - started) / 1000).toFixed(1), ready)) out(line);
      await stopRequested;
    }
  }
  await mesh.shutdown();
  for (const s of signals) process.off(s, handler);
  out(`weft: mesh ${JSON.stringify(plan.mesh.name)} stopped`);
  return code;
}
