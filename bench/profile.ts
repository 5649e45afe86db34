// Reads a V8 .cpuprofile (what node --cpu-prof writes) and ranks functions by self time.

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly functionName: string;
  /** url:line (1-based), or empty for V8's pseudo-frames such as (garbage collector). */
  readonly location: string;
  readonly selfMs: number;
  /** Share of all sampled time, idle excluded. */
  readonly share: number;
}

export function parseCpuProfile(text: string): CpuProfile {
  const raw: unknown = JSON.parse(text);
  if (typeof raw !== 'object' || raw === null) throw new Error('cpuprofile: not an object');
  const obj = raw as Record<string, unknown>;
  if (!Array.isArray(obj.nodes) || !Array.isArray(obj.samples) || !Array.isArray(obj.timeDeltas)) {
    throw new Error('cpuprofile: nodes, samples or timeDeltas missing');
  }
  return obj as unknown as CpuProfile;
}

/**
 * Self time per function (all its nodes in the call tree together). Sample i lasts until sample i+1,
 * so it is charged timeDeltas[i+1]; the last sample has no successor and is charged nothing.
 */
export function topSelfTime(profile: CpuProfile, count: number, stripPrefix = ''): SelfTime[] {
  const keyOfNode = new Map<number, string>();
  const frames = new Map<string, { name: string; location: string; us: number }>();
  for (const node of profile.nodes) {
    const f = node.callFrame;
    let url = f.url;
    if (stripPrefix !== '' && url.startsWith(stripPrefix)) url = url.slice(stripPrefix.length);
    const location = url === '' ? '' : `${url}:${f.lineNumber + 1}`;
    const name = f.functionName === '' ? '(anonymous)' : f.functionName;
    const key = `${name}\u0000${location}`;
    keyOfNode.set(node.id, key);
    if (!frames.has(key)) frames.set(key, { name, location, us: 0 });
  }
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const key = keyOfNode.get(profile.samples[i]);
    const frame = key === undefined ? undefined : frames.get(key);
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!frame || us <= 0) continue;
    frame.us += us;
    if (frame.name !== '(idle)') totalUs += us;
  }
  return [...frames.values()]
    .filter((f) => f.us > 0 && f.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((f) => ({
      functionName: f.name,
      location: f.location,
      selfMs: f.us / 1000,
      share: totalUs > 0 ? f.us / totalUs : 0,
    }));
}

export function formatSelfTimes(rows: readonly SelfTime[]): string {
  const lines = ['  self ms    share  function  (location)'];
  for (const r of rows) {
    const loc = r.location === '' ? '' : `  (${r.location})`;
    lines.push(
      `${r.selfMs.toFixed(1).padStart(9)}  ${(r.share * 100).toFixed(1).padStart(6)}%  ${r.functionName}${loc}`,
    );
  }
  return lines.join('\n');
}
