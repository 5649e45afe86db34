/**
 * envoy.config.core.v3.DataSource for TLS material: a file read when the configuration is compiled, or
 * inline text or bytes. Reading at compile time means a missing file is a configuration error with its
 * field path, and that a changed file content makes a changed configuration (a new filter chain).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, onlyFields, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';

export interface LoadedData {
  readonly text: string;
  /** The file it came from, or "<inline>" (as /certs reports it). */
  readonly origin: string;
}

export const INLINE_ORIGIN = '<inline>';

export function compileDataSource(json: Json | undefined, path: string): LoadedData {
  if (json === undefined || json === null) throw new ConfigError(path, 'required');
  const obj = asObject(json, path);
  onlyFields(obj, path, ['filename', 'inline_string', 'inline_bytes'], {
    environment_variable: 'not supported by Weft (use filename or inline_string)',
    watched_directory: 'not supported by Weft',
  });
  const set = ['filename', 'inline_string', 'inline_bytes'].filter(
    (k) => obj[k] !== undefined && obj[k] !== null,
  );
  if (set.length === 0)
    throw new ConfigError(path, 'one of filename, inline_string or inline_bytes is required');
  if (set.length > 1) throw new ConfigError(path, `set only one of ${set.join(', ')}`);
  const filename = optString(obj, 'filename', path);
  if (filename !== undefined) {
    try {
      return { text: readFileSync(filename, 'utf8'), origin: filename };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError(fieldPath(path, 'filename'), `cannot read ${JSON.stringify(filename)} (${code})`);
    }
  }
  const inline = optString(obj, 'inline_string', path);
  if (inline !== undefined) return { text: inline, origin: INLINE_ORIGIN };
  // proto3 JSON carries bytes as base64.
  const bytes = optString(obj, 'inline_bytes', path) ?? '';
  return { text: Buffer.from(bytes, 'base64').toString('utf8'), origin: INLINE_ORIGIN };
}
