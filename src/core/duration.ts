import { ConfigError } from './errors.ts';

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/** Parses a protobuf JSON Duration ("1.5s", "0.250s") into milliseconds (fractional allowed). */
export function parseDurationMs(value: unknown, path: string): number {
  if (typeof value !== 'string')
    throw new ConfigError(path, `expected a duration string like "1.5s", got ${JSON.stringify(value)}`);
  const m = DURATION.exec(value);
  if (!m) throw new ConfigError(path, `invalid duration ${JSON.stringify(value)} (expected e.g. "1.5s")`);
  const seconds = Number(m[2]) + (m[3] ? Number(`0.${m[3]}`) : 0);
  if (m[1]) throw new ConfigError(path, `duration must not be negative, got ${JSON.stringify(value)}`);
  return seconds * 1000;
}

/** Formats milliseconds as a protobuf JSON Duration. */
export function formatDuration(ms: number): string {
  return `${Number((ms / 1000).toFixed(9))}s`;
}
