/**
 * %START_TIME(...)%: the strftime subset access logs use, always in UTC (as Envoy prints it), compiled once
 * into a list of pieces. Envoy's extensions are supported: `%f` / `%3f` / `%6f` / `%9f` (fractional
 * seconds with that many digits, 9 by default), `%E3S` (seconds with 3 fractional digits) and `%s` (epoch
 * seconds).
 */
import { ConfigError } from '../../core/errors.ts';

/** Formats a wall-clock time given in milliseconds since the epoch. */
export type TimeFormatter = (epochMs: number) => string;

type Piece = string | ((d: Date, epochMs: number) => string);

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Milliseconds as `digits` fractional digits (nanosecond places past milliseconds are zeros). */
function fraction(ms: number, digits: number): string {
  const s = String(ms).padStart(3, '0') + '000000';
  return s.slice(0, digits);
}

function dayOfYear(d: Date): number {
  return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

const SIMPLE: Readonly<Record<string, (d: Date, epochMs: number) => string>> = {
  Y: (d) => String(d.getUTCFullYear()),
  y: (d) => pad2(d.getUTCFullYear() % 100),
  m: (d) => pad2(d.getUTCMonth() + 1),
  d: (d) => pad2(d.getUTCDate()),
  e: (d) => String(d.getUTCDate()).padStart(2, ' '),
  H: (d) => pad2(d.getUTCHours()),
  M: (d) => pad2(d.getUTCMinutes()),
  S: (d) => pad2(d.getUTCSeconds()),
  j: (d) => String(dayOfYear(d)).padStart(3, '0'),
  b: (d) => MONTHS[d.getUTCMonth()],
  a: (d) => DAYS[d.getUTCDay()],
  z: () => '+0000',
  Z: () => 'UTC',
  s: (_d, ms) => String(Math.floor(ms / 1000)),
  F: (d) => `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`,
  T: (d) => `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`,
};

/** Compiles a strftime pattern; `path` names the config field for errors. */
export function compileTimeFormat(pattern: string, path: string): TimeFormatter {
  const pieces: Piece[] = [];
  let literal = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%') {
      literal += c;
      continue;
    }
    const rest = pattern.slice(i + 1);
    let piece: Piece | undefined;
    let used = 1;
    const frac = /^([1-9])?f/.exec(rest);
    const esec = /^E([1-9])S/.exec(rest);
    if (rest[0] === '%') piece = '%';
    else if (frac !== null) {
      const digits = frac[1] === undefined ? 9 : Number(frac[1]);
      piece = (d) => fraction(d.getUTCMilliseconds(), digits);
      used = frac[0].length;
    } else if (esec !== null) {
      const digits = Number(esec[1]);
      piece = (d) => `${pad2(d.getUTCSeconds())}.${fraction(d.getUTCMilliseconds(), digits)}`;
      used = esec[0].length;
    } else if (rest.length > 0 && Object.hasOwn(SIMPLE, rest[0])) piece = SIMPLE[rest[0]];
    if (piece === undefined)
      throw new ConfigError(
        path,
        `time format specifier "%${rest.slice(0, 1)}" in ${JSON.stringify(pattern)} is not supported by Weft`,
      );
    if (typeof piece === 'string') literal += piece;
    else {
      if (literal !== '') pieces.push(literal);
      literal = '';
      pieces.push(piece);
    }
    i += used;
  }
  if (literal !== '') pieces.push(literal);
  return (epochMs) => {
    const d = new Date(epochMs);
    let out = '';
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      out += typeof p === 'string' ? p : p(d, epochMs);
    }
    return out;
  };
}

let lastSecond = NaN;
/** `2024-05-01T12:00:00.` of the last second formatted. */
let secondPrefix = '';
const MILLIS: readonly string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/**
 * Envoy's default %START_TIME%: `2024-05-01T12:00:00.123Z`. Only the first request of each second builds a
 * Date; the others add their milliseconds to the cached prefix.
 */
export const isoTime: TimeFormatter = (epochMs) => {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    const iso = new Date(second * 1000).toISOString();
    secondPrefix = iso.slice(0, iso.length - 4);
    lastSecond = second;
  }
  return secondPrefix + MILLIS[ms - second * 1000];
};
