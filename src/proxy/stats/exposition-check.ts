/**
 * A strict checker for the Prometheus text exposition format 0.0.4, written from the format's
 * specification (prometheus.io, "Exposition formats"). Tests run every /stats/prometheus output
 * through it; it is stricter than Prometheus's own parser (single spaces, no blank lines) so that
 * anything it accepts is accepted by any scraper.
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;
const TIMESTAMP = /^-?\d+$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

interface Sample {
  readonly line: number;
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

/** Returns the problems found, each prefixed with its 1-based line number; empty when valid. */
export function checkExposition(text: string): string[] {
  const errors: string[] = [];
  if (text.length > 0 && !text.endsWith('\n')) errors.push('last line does not end with a newline');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();

  const types = new Map<string, string>();
  const helps = new Set<string>();
  const finished = new Set<string>();
  const seriesSeen = new Set<string>();
  const samples: Sample[] = [];
  let current: string | undefined;

  const enterFamily = (family: string, lineNo: number): void => {
    if (family === current) return;
    if (finished.has(family)) errors.push(`${lineNo}: lines of family ${family} are not contiguous`);
    if (current !== undefined) finished.add(current);
    current = family;
  };

  lines.forEach((line, i) => {
    const lineNo = i + 1;
    if (line === '') {
      errors.push(`${lineNo}: empty line`);
      return;
    }
    if (line.startsWith('#')) {
      const m = /^# (TYPE|HELP) (\S+)(?: (.*))?$/.exec(line);
      if (m === null) return; // a plain comment
      const [, keyword, name, rest] = m;
      if (!METRIC_NAME.test(name)) errors.push(`${lineNo}: invalid metric name ${JSON.stringify(name)}`);
      if (keyword === 'TYPE') {
        if (rest === undefined || !TYPES.has(rest))
          errors.push(`${lineNo}: invalid type ${JSON.stringify(rest)}`);
        if (types.has(name)) errors.push(`${lineNo}: second TYPE line for ${name}`);
        if (samples.some((s) => familyOf(s.name, types) === name || s.name === name)) {
          errors.push(`${lineNo}: TYPE for ${name} after its samples`);
        }
        types.set(name, rest ?? '');
      } else {
        if (helps.has(name)) errors.push(`${lineNo}: second HELP line for ${name}`);
        helps.add(name);
        if (rest !== undefined && /\\(?![\\n])/.test(rest)) errors.push(`${lineNo}: invalid escape in HELP`);
      }
      enterFamily(name, lineNo);
      return;
    }
    const sample = parseSample(line, lineNo, errors);
    if (sample === undefined) return;
    samples.push(sample);
    enterFamily(familyOf(sample.name, types), lineNo);
    const key = sample.name + seriesKey(sample.labels);
    if (seriesSeen.has(key)) errors.push(`${lineNo}: duplicate series ${key}`);
    seriesSeen.add(key);
  });

  for (const s of samples) {
    const family = familyOf(s.name, types);
    const type = types.get(family);
    if (type === 'counter' && !(s.value >= 0)) errors.push(`${s.line}: counter ${s.name} is negative or NaN`);
    if (type !== 'histogram' && s.labels.has('le') && type !== undefined && type !== 'untyped') {
      errors.push(`${s.line}: label le on a ${type}`);
    }
    if (type === 'histogram' && s.name !== family + '_bucket' && s.labels.has('le')) {
      errors.push(`${s.line}: le label outside _bucket`);
    }
    if (type === 'histogram' && s.name === family)
      errors.push(`${s.line}: bare sample in histogram ${family}`);
  }
  checkHistograms(samples, types, errors);
  return errors;
}

function parseSample(line: string, lineNo: number, errors: string[]): Sample | undefined {
  const nameMatch = /^[^{ ]+/.exec(line);
  if (nameMatch === null) {
    errors.push(`${lineNo}: no metric name`);
    return undefined;
  }
  const name = nameMatch[0];
  if (!METRIC_NAME.test(name)) errors.push(`${lineNo}: invalid metric name ${JSON.stringify(name)}`);
  let pos = name.length;
  const labels = new Map<string, string>();
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const ln = /^[^=]*/.exec(line.slice(pos))![0];
      if (!LABEL_NAME.test(ln) || ln.startsWith('__'))
        errors.push(`${lineNo}: invalid label name ${JSON.stringify(ln)}`);
      pos += ln.length;
      if (line.slice(pos, pos + 2) !== '="') {
        errors.push(`${lineNo}: expected =" after label ${ln}`);
        return undefined;
      }
      pos += 2;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) {
          errors.push(`${lineNo}: unterminated label value`);
          return undefined;
        }
        pos++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos++];
          if (e === '\\' || e === '"') value += e;
          else if (e === 'n') value += '\n';
          else errors.push(`${lineNo}: invalid escape \\${e ?? ''} in label value`);
        } else value += c;
      }
      if (labels.has(ln)) errors.push(`${lineNo}: duplicate label ${ln}`);
      labels.set(ln, value);
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') {
        errors.push(`${lineNo}: expected , or } after label value`);
        return undefined;
      }
    }
    pos++;
  }
  const rest = line.slice(pos);
  const parts = rest.split(' ');
  if (parts[0] !== '' || parts.length < 2 || parts.length > 3 || parts.slice(1).includes('')) {
    errors.push(`${lineNo}: expected one space, a value and an optional timestamp`);
    return undefined;
  }
  const valueText = parts[1];
  if (!FLOAT.test(valueText)) errors.push(`${lineNo}: invalid value ${JSON.stringify(valueText)}`);
  if (parts.length === 3 && !TIMESTAMP.test(parts[2])) errors.push(`${lineNo}: invalid timestamp`);
  return { line: lineNo, name, labels, value: parseFloatValue(valueText) };
}

function parseFloatValue(t: string): number {
  if (t === '+Inf') return Infinity;
  if (t === '-Inf') return -Infinity;
  return Number(t);
}

/** The family a sample belongs to: histograms and summaries own their suffixed series. */
function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = types.get(base);
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return name;
}

function seriesKey(labels: ReadonlyMap<string, string>, omit?: string): string {
  return JSON.stringify([...labels].filter(([k]) => k !== omit).sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

function checkHistograms(
  samples: readonly Sample[],
  types: ReadonlyMap<string, string>,
  errors: string[],
): void {
  interface Series {
    buckets: { le: number; count: number; line: number }[];
    count?: number;
    sum?: number;
    line: number;
  }
  const series = new Map<string, Series>();
  for (const s of samples) {
    const family = familyOf(s.name, types);
    if (types.get(family) !== 'histogram') continue;
    const key = family + seriesKey(s.labels, 'le');
    let entry = series.get(key);
    if (entry === undefined) series.set(key, (entry = { buckets: [], line: s.line }));
    if (s.name === family + '_bucket') {
      const le = s.labels.get('le');
      if (le === undefined || !FLOAT.test(le)) {
        errors.push(`${s.line}: bucket without a valid le label`);
        continue;
      }
      entry.buckets.push({ le: parseFloatValue(le), count: s.value, line: s.line });
    } else if (s.name === family + '_count') entry.count = s.value;
    else if (s.name === family + '_sum') entry.sum = s.value;
  }
  for (const [key, e] of series) {
    for (let i = 1; i < e.buckets.length; i++) {
      const prev = e.buckets[i - 1];
      const b = e.buckets[i];
      if (!(b.le > prev.le)) errors.push(`${b.line}: bucket bounds not increasing in ${key}`);
      if (!(b.count >= prev.count)) errors.push(`${b.line}: bucket counts decreasing in ${key}`);
    }
    const inf = e.buckets.find((b) => b.le === Infinity);
    if (inf === undefined) errors.push(`${e.line}: histogram ${key} has no +Inf bucket`);
    if (e.count === undefined) errors.push(`${e.line}: histogram ${key} has no _count`);
    if (e.sum === undefined) errors.push(`${e.line}: histogram ${key} has no _sum`);
    if (inf !== undefined && e.count !== undefined && inf.count !== e.count) {
      errors.push(`${e.line}: histogram ${key}: +Inf bucket ${inf.count} differs from _count ${e.count}`);
    }
  }
}
