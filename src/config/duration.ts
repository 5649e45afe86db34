/**
 * Istio durations. Istio's YAML takes Go duration strings ("1.5s", "100ms", "1m30s", "3m"), and its CRDs
 * check them with CEL's duration(), which parses the same syntax; xDS wants protobuf JSON ("1.5s").
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds of a Go duration string, or undefined when it is not one. Negative durations are rejected. */
export function parseIstioDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  let s = text;
  if (s.startsWith('+')) s = s.slice(1);
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const start = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== start) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  return Number.isFinite(total) ? total : undefined;
}

/** The protobuf JSON form ("90s", "0.250s") of an Istio duration, or undefined when it is not one. */
export function istioDurationToProto(text: string): string | undefined {
  const ms = parseIstioDurationMs(text);
  if (ms === undefined) return undefined;
  return `${Number((ms / 1000).toFixed(9))}s`;
}
