/**
 * `weft up`, `weft status`, `weft logs`, `weft restart`, `weft down`: the single-machine mesh and the commands
 * around it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { Option } from 'commander';
import { sendControl } from './control.ts';
import { isAlive, readRunState } from './run-state.ts';
import type { RunInstance, RunState } from './run-state.ts';

export function addUpCommands(program: Command): void {
  program
    .command('up')
    .description(
      'run a whole mesh on this machine from DIR/weft.yaml (plus the Istio resources in DIR): control plane, ' +
        'sidecars, apps and gateway, until Ctrl-C or weft down',
    )
    .argument('[dir]', 'the mesh directory', '.')
    .option(
      '--first-ip <ipv4>',
      "the first instance's loopback IP; the others count up from it (another mesh on this machine " +
        'can then keep its own service ports)',
      '127.0.0.10',
    )
    .addOption(
      new Option(
        '--mode <mode>',
        "how apps' outbound traffic reaches their sidecars (default: weft.yaml's mesh.mode, else explicit): " +
          'explicit (HTTP_PROXY / grpc_proxy) or transparent (a network namespace per app and iptables ' +
          'capture; Linux, root)',
      ).choices(['explicit', 'transparent']),
    )
    .action(async (dir: string, opts: { firstIp: string; mode?: 'explicit' | 'transparent' }) => {
      const { runUp } = await import('./supervisor.ts');
      // Exit explicitly: the code is known, and nothing else must keep the supervisor alive.
      process.exit(await runUp({ dir, firstIp: opts.firstIp, ...(opts.mode ? { mode: opts.mode } : {}) }));
    });

  program
    .command('status')
    .description("the mesh weft up runs in DIR: each instance's addresses, state and restarts")
    .argument('[dir]', 'the mesh directory', '.')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action((dir: string, opts: { output: 'table' | 'json' }) => {
      process.exitCode = runStatus(dir, opts.output);
    });

  program
    .command('logs')
    .description("an app's output (all its instances), or control-plane / gateway")
    .argument('<workload>', 'a workload or instance name, control-plane, or gateway')
    .argument('[dir]', 'the mesh directory', '.')
    .option('-f, --follow', 'keep printing what is written')
    .option('--sidecar', "the sidecar's log instead of the app's")
    .action(async (workload: string, dir: string, opts: { follow?: boolean; sidecar?: boolean }) => {
      process.exitCode = await runLogs(workload, dir, opts);
    });

  program
    .command('restart')
    .description(
      "restart a workload's apps one instance at a time without a gap: a new app on new ports beside the " +
        'old one, its sidecar switched to it once ready, then the old one drains and stops',
    )
    .argument('<workload>', 'a workload name (or NAME.NAMESPACE)')
    .argument('[dir]', 'the mesh directory', '.')
    .action(async (workload: string, dir: string) => {
      process.exitCode = await runRestart(workload, dir);
    });

  program
    .command('down')
    .description('stop the mesh weft up runs in DIR (apps first, then sidecars drain) and wait until it has')
    .argument('[dir]', 'the mesh directory', '.')
    .addOption(new Option('--timeout <seconds>', 'give up waiting after').default(60).argParser(Number))
    .action(async (dir: string, opts: { timeout: number }) => {
      process.exitCode = await runDown(dir, opts.timeout * 1000);
    });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, c) => cell.padEnd(widths[c]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function instanceState(st: RunState, i: RunInstance, running: boolean): string {
  if (!running) return 'stopped';
  if (i.state === 'ready' && !isAlive(i.appPid)) return 'app-dead';
  if (i.state === 'ready' && !isAlive(i.sidecarPid)) return 'sidecar-dead';
  return i.state;
}

const pidCell = (pid: number | undefined, running: boolean): string =>
  pid === undefined ? '-' : running && !isAlive(pid) ? `${pid}(dead)` : String(pid);

export function runStatus(dir: string, output: 'table' | 'json'): number {
  const st = readRunState(dir);
  if (!st) {
    process.stderr.write(
      `weft: no mesh has run in ${dir} (no .weft/run.json); start one with weft up ${dir}\n`,
    );
    return 1;
  }
  const running = st.stoppedAt === undefined && isAlive(st.pid);
  if (output === 'json') {
    process.stdout.write(JSON.stringify({ ...st, running }, null, 2) + '\n');
    return 0;
  }
  const head = running
    ? `mesh ${st.mesh}: running (weft up pid ${st.pid}, since ${st.startedAt})`
    : `mesh ${st.mesh}: not running (${st.stoppedAt ? `stopped at ${st.stoppedAt}` : `weft up pid ${st.pid} is gone`})`;
  const cp = st.controlPlane;
  const rows: string[][] = [['COMPONENT', 'NAMESPACE', 'ADDRESS', 'PORTS', 'STATE', 'RESTARTS', 'PIDS']];
  const procState = (pid: number | undefined): string =>
    !running ? 'stopped' : isAlive(pid) ? 'running' : 'dead';
  rows.push([
    'control-plane',
    '-',
    '127.0.0.1',
    `xds ${cp.xdsPort}, debug ${cp.debugPort}${cp.dashboardPort ? `, dashboard ${cp.dashboardPort}` : ''}`,
    procState(cp.pid),
    '-',
    pidCell(cp.pid, running),
  ]);
  if (st.gateway)
    rows.push([
      'gateway',
      '-',
      '127.0.0.1',
      `${st.gateway.ports.join(', ') || '-'} (admin ${st.gateway.admin})`,
      procState(st.gateway.pid),
      '-',
      pidCell(st.gateway.pid, running),
    ]);
  for (const i of st.instances)
    rows.push([
      i.instance,
      i.namespace,
      i.ip,
      [
        // Transparent mode: the app listens in its namespace, on its address there.
        ...i.ports.map((p) => `${p.service}→${i.appIp !== undefined ? `${i.appIp}:` : ''}${p.private}`),
        `out ${i.outbound}`,
        `admin ${i.admin}`,
        ...(i.netns !== undefined ? [`netns ${i.netns}`] : []),
      ].join(', '),
      instanceState(st, i, running),
      String(i.restarts),
      `app ${pidCell(i.appPid, running)}, sidecar ${pidCell(i.sidecarPid, running)}`,
    ]);
  process.stdout.write(`${head}\n${table(rows)}`);
  return 0;
}

/** The log files a name means: control-plane, gateway, an instance, or every instance of a workload. */
function logFiles(st: RunState, name: string, sidecar: boolean): { label: string; file: string }[] | string {
  if (name === 'control-plane') return [{ label: name, file: st.controlPlane.log }];
  if (name === 'gateway' && st.gateway) return [{ label: name, file: st.gateway.log }];
  const pick = (i: RunInstance): { label: string; file: string } => ({
    label: i.instance,
    file: sidecar ? i.sidecarLog : i.appLog,
  });
  const exact = st.instances.filter((i) => i.instance === name || `${i.instance}.${i.namespace}` === name);
  if (exact.length > 0) return exact.map(pick);
  const byWorkload = st.instances.filter(
    (i) => i.workload === name || `${i.workload}.${i.namespace}` === name,
  );
  if (byWorkload.length > 0) return byWorkload.map(pick);
  const known = [...new Set(st.instances.map((i) => i.workload))];
  return `no workload ${JSON.stringify(name)} in mesh ${st.mesh} (workloads: ${known.join(', ')}; also control-plane${st.gateway ? ', gateway' : ''})`;
}

export async function runLogs(
  name: string,
  dir: string,
  opts: { follow?: boolean; sidecar?: boolean },
): Promise<number> {
  const st = readRunState(dir);
  if (!st) {
    process.stderr.write(`weft: no mesh has run in ${dir} (no .weft/run.json)\n`);
    return 1;
  }
  const files = logFiles(st, name, opts.sidecar === true);
  if (typeof files === 'string') {
    process.stderr.write(`weft: ${files}\n`);
    return 1;
  }
  const prefix = files.length > 1;
  const offsets = files.map(() => 0);
  const partial = files.map(() => '');
  const pump = (final: boolean): void => {
    files.forEach((f, n) => {
      let data: Buffer;
      try {
        const fd = fs.openSync(f.file, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          if (size < offsets[n]) offsets[n] = 0; // truncated by a new weft up
          data = Buffer.alloc(size - offsets[n]);
          fs.readSync(fd, data, 0, data.length, offsets[n]);
          offsets[n] = size;
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        return;
      }
      const text = partial[n] + data.toString('utf8');
      const lines = text.split('\n');
      partial[n] = lines.pop() ?? '';
      if (final && partial[n] !== '') {
        lines.push(partial[n]);
        partial[n] = '';
      }
      for (const l of lines) process.stdout.write(prefix ? `[${f.label}] ${l}\n` : `${l}\n`);
    });
  };
  pump(!opts.follow);
  if (!opts.follow) return 0;
  for (;;) {
    await sleep(250);
    pump(false);
  }
}

export async function runDown(dir: string, timeoutMs: number): Promise<number> {
  const st = readRunState(dir);
  if (!st) {
    process.stdout.write(`weft: no mesh has run in ${dir}; nothing to stop\n`);
    return 0;
  }
  const deadline = Date.now() + timeoutMs;
  const children = [
    ...st.instances.map((i) => i.appPid),
    ...st.instances.map((i) => i.sidecarPid),
    st.gateway?.pid,
    st.controlPlane.pid,
  ].filter((p): p is number => p !== undefined);
  const waitGone = async (pids: readonly number[]): Promise<boolean> => {
    while (pids.some(isAlive)) {
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
    return true;
  };
  if (isAlive(st.pid) && st.stoppedAt === undefined) {
    process.stdout.write(`weft: stopping mesh ${st.mesh} (weft up pid ${st.pid})\n`);
    process.kill(st.pid, 'SIGTERM');
    if (!(await waitGone([st.pid]))) {
      process.stderr.write(`weft: weft up (pid ${st.pid}) still runs after ${timeoutMs / 1000} s\n`);
      return 1;
    }
  } else if (children.some(isAlive)) {
    // The supervisor died without stopping its children: stop them in the same order it would.
    process.stdout.write(`weft: weft up (pid ${st.pid}) is gone; stopping what it left running\n`);
    const groups = [
      st.instances.map((i) => i.appPid),
      st.instances.map((i) => i.sidecarPid),
      [st.gateway?.pid],
      [st.controlPlane.pid],
    ];
    for (const group of groups) {
      const pids = group.filter((p): p is number => p !== undefined && isAlive(p));
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGTERM');
        } catch {
          process.kill(pid, 'SIGTERM');
        }
      }
      await waitGone(pids);
    }
  } else {
    // A supervisor killed outright leaves its namespaces and capture rules behind: sweep them.
    await sweepNetworks(st);
    process.stdout.write(`weft: mesh ${st.mesh} is not running\n`);
    return 0;
  }
  if (!(await waitGone(children))) {
    process.stderr.write(
      `weft: still running after ${timeoutMs / 1000} s: ${children.filter(isAlive).join(', ')}\n`,
    );
    return 1;
  }
  await sweepNetworks(st);
  process.stdout.write(`weft: mesh ${st.mesh} stopped (${path.resolve(dir)})\n`);
  return 0;
}

/** Removes what is left of a transparent run's namespaces and iptables rules (nothing when it cleaned up). */
async function sweepNetworks(st: RunState): Promise<void> {
  if (st.network === undefined) return;
  const { destroyNetworks } = await import('./netns.ts');
  const removed = await destroyNetworks(st.network.runId);
  if (removed.length > 0) process.stdout.write(`weft: removed ${removed.join(', ')}\n`);
}

export async function runRestart(workload: string, dir: string): Promise<number> {
  const st = readRunState(dir);
  if (!st || st.stoppedAt !== undefined || !isAlive(st.pid)) {
    process.stderr.write(`weft: no mesh is running in ${dir}; start one with weft up ${dir}\n`);
    return 1;
  }
  if (st.control === undefined) {
    process.stderr.write(`weft: the weft up running in ${dir} (pid ${st.pid}) has no control socket\n`);
    return 1;
  }
  const failed = await sendControl(st.control, { op: 'restart', workload }, (line) =>
    process.stdout.write(line + '\n'),
  );
  if (failed !== undefined) {
    process.stderr.write(`weft: restart ${workload} failed: ${failed}\n`);
    return 1;
  }
  return 0;
}
