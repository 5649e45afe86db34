/**
 * A small strict reader for the sample lines of the Prometheus text exposition format 0.0.4 (prometheus.io,
 * "Exposition formats"), for the few families the dashboard aggregates. Written here rather than taken from
 * npm: prom-client only writes the format, and the parsers published there are unmaintained; the subset
 * needed (a name, optional labels with three escapes, a float, an optional timestamp) is small enough to get
 * exactly right and test. Lines of families nobody asked for are skipped unread.
 */

export class ExpositionError extends Error {}

const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Inf)$/;
const TIMESTAMP = /^-?\d+$/;

/**
 * Calls `onSample` for each sample whose metric name `wanted` accepts, with the label text exactly as
 * written between the braces ('' without labels), which the caller may use as the series' key and parse
 * with parseLabels only when it needs the values. Throws ExpositionError naming the line on a malformed
 * sample line of a wanted family.
 */
export function readSamples(
  text: string,
  wanted: (name: string) => boolean,
  onSample: (name: string, labelText: string, value: number) => void,
): void {
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line === '' || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && NAME_CHAR.test(line[i])) i++;
    const name = line.slice(0, i);
    if (!wanted(name)) continue;
    if (name === '' || /^\d/.test(name)) throw new ExpositionError(`line ${lineNo}: no metric name`);
    let labelText = '';
    if (line[i] === '{') {
      const close = labelsEnd(line, i + 1);
      if (close < 0) throw new ExpositionError(`line ${lineNo}: unterminated labels`);
      labelText = line.slice(i + 1, close);
      i = close + 1;
    }
    const rest = line
      .slice(i)
      .trim()
      .split(/[ \t]+/);
    if (rest.length < 1 || rest.length > 2 || !FLOAT.test(rest[0]))
      throw new ExpositionError(`line ${lineNo}: expected a value after ${name}`);
    if (rest.length === 2 && !TIMESTAMP.test(rest[1]))
      throw new ExpositionError(`line ${lineNo}: invalid timestamp ${JSON.stringify(rest[1])}`);
    onSample(name, labelText, parseFloatValue(rest[0]));
  }
}

function parseFloatValue(s: string): number {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/** The index of the `}` closing labels opened before `from`, skipping quoted values; -1 if none. */
function labelsEnd(line: string, from: number): number {
  let quoted = false;
  for (let i = from; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '}') return i;
  }
  return -1;
}

/** `a="x",b="y\"z"` → {a: 'x', b: 'y"z'}; a trailing comma is allowed, as the format allows it. */
export function parseLabels(labelText: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = labelText.length;
  while (i < n) {
    const eq = labelText.indexOf('=', i);
    if (eq < 0) throw new ExpositionError(`labels {${labelText}}: expected name="value"`);
    const name = labelText.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new ExpositionError(`labels {${labelText}}: invalid label name`);
    if (labelText[eq + 1] !== '"') throw new ExpositionError(`labels {${labelText}}: ${name}: expected "`);
    let value = '';
    let j = eq + 2;
    for (; j < n; j++) {
      const c = labelText[j];
      if (c === '"') break;
      if (c === '\\') {
        const e = labelText[++j];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else throw new ExpositionError(`labels {${labelText}}: ${name}: invalid escape`);
      } else value += c;
    }
    if (j >= n) throw new ExpositionError(`labels {${labelText}}: ${name}: unterminated value`);
    if (out.has(name)) throw new ExpositionError(`labels {${labelText}}: ${name} repeated`);
    out.set(name, value);
    i = j + 1;
    if (i < n) {
      if (labelText[i] !== ',') throw new ExpositionError(`labels {${labelText}}: expected , after ${name}`);
      i++;
    }
  }
  return out;
}
