// What the numbers were measured on, recorded next to them.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  readonly date: string;
  readonly node: string;
  readonly nginx: string | null;
  readonly wrk: string | null;
  readonly cpuModel: string | null;
  readonly cpus: number;
  readonly memTotalMb: number;
  readonly kernel: string;
  readonly gitCommit: string | null;
  readonly gitDirty: boolean | null;
}

function firstMatch(command: string, args: readonly string[], pattern: RegExp): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  const match = pattern.exec(`${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  return match ? match[1] : null;
}

function git(repoRoot: string, args: readonly string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null; // not a git checkout, or no commit yet
  }
}

export function machineInfo(repoRoot: string): MachineInfo {
  let cpuModel: string | null;
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? null;
  } catch {
    cpuModel = os.cpus()[0]?.model ?? null;
  }
  const status = git(repoRoot, ['status', '--porcelain']);
  return {
    date: new Date().toISOString(),
    node: process.version,
    nginx: firstMatch('nginx', ['-v'], /nginx version: nginx\/(\S+)/),
    wrk: firstMatch('wrk', ['-v'], /^wrk (\S+)/m),
    cpuModel,
    cpus: os.availableParallelism(),
    memTotalMb: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    gitCommit: git(repoRoot, ['rev-parse', 'HEAD']),
    gitDirty: status === null ? null : status.length > 0,
  };
}
