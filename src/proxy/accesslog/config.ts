/**
 * Envoy's `access_log` (config.accesslog.v3.AccessLog), on an HTTP connection manager or a tcp_proxy:
 * checked and compiled once into a destination, a formatter and an optional filter. Loggers Weft supports:
 * FileAccessLog (including its deprecated `format` / `json_format`), StdoutAccessLog and StderrAccessLog.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import {
  asObject,
  onlyFields,
  optBool,
  optObject,
  optString,
  requiredString,
} from '../config-proto/fields.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { compileAccessLogFilter } from './filters.ts';
import type { AccessLogFilter } from './filters.ts';
import { DEFAULT_FORMAT, jsonFormatter, textFormatter } from './formatter.ts';
import type { Formatter } from './formatter.ts';

export interface AccessLogConfig {
  readonly name: string;
  /** A file path, or /dev/stdout and /dev/stderr for the stream loggers. */
  readonly path: string;
  readonly formatter: Formatter;
  /** null = log every exchange. */
  readonly filter: AccessLogFilter | null;
}

const FILE = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT = 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR = 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

function typeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** config.core.v3.DataSource, inline only. */
function inlineSource(json: Json | undefined, path: string): string {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['inline_string', 'inline_bytes']);
  const s = optString(obj, 'inline_string', path);
  if (s !== undefined) return s;
  const b = optString(obj, 'inline_bytes', path);
  if (b !== undefined) return Buffer.from(b, 'base64').toString('utf8');
  throw new ConfigError(
    path,
    'inline_string is required (filename and environment_variable are not supported by Weft)',
  );
}

/** config.core.v3.SubstitutionFormatString. */
function compileLogFormat(json: Json | undefined, path: string): Formatter {
  const obj = asObject(json, path);
  onlyFields(
    obj,
    path,
    ['text_format', 'json_format', 'text_format_source', 'omit_empty_values', 'json_format_options'],
    {
      formatters: 'formatter extensions are not supported by Weft',
      content_type: 'not supported by Weft (it applies to local reply bodies, not access logs)',
    },
  );
  const set = ['text_format', 'json_format', 'text_format_source'].filter(
    (k) => obj[k] !== undefined && obj[k] !== null,
  );
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one format may be set`);
  if (set.length === 0)
    throw new ConfigError(path, 'one of text_format_source, json_format or text_format is required');
  const omitEmpty = optBool(obj, 'omit_empty_values', path) ?? false;
  const key = set[0];
  const p = fieldPath(path, key);
  if (key === 'json_format') {
    const opts = optObject(obj, 'json_format_options', path);
    let sortKeys = false;
    if (opts !== undefined) {
      const op = fieldPath(path, 'json_format_options');
      onlyFields(opts, op, ['sort_properties']);
      sortKeys = optBool(opts, 'sort_properties', op) ?? false;
    }
    return jsonFormatter(asObject(obj.json_format, p), p, { omitEmpty, sortKeys });
  }
  if (obj.json_format_options !== undefined && obj.json_format_options !== null)
    throw new ConfigError(fieldPath(path, 'json_format_options'), 'only applies to json_format');
  const text = key === 'text_format' ? (optString(obj, key, path) ?? '') : inlineSource(obj[key], p);
  return textFormatter(text, p, omitEmpty);
}

function compileFileLogger(cfg: JsonObject, path: string): { path: string; formatter: Formatter } {
  onlyFields(cfg, path, ['@type', 'path', 'format', 'json_format', 'log_format'], {
    typed_json_format: 'not supported by Weft (use log_format.json_format)',
  });
  const file = requiredString(cfg, 'path', path);
  const set = ['format', 'json_format', 'log_format'].filter((k) => cfg[k] !== undefined && cfg[k] !== null);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one format may be set`);
  let formatter: Formatter;
  switch (set[0]) {
    case 'format':
      formatter = textFormatter(optString(cfg, 'format', path) || DEFAULT_FORMAT, fieldPath(path, 'format'));
      break;
    case 'json_format': {
      const p = fieldPath(path, 'json_format');
      formatter = jsonFormatter(asObject(cfg.json_format, p), p);
      break;
    }
    case 'log_format':
      formatter = compileLogFormat(cfg.log_format, fieldPath(path, 'log_format'));
      break;
    default:
      formatter = textFormatter(DEFAULT_FORMAT, path);
  }
  return { path: file, formatter };
}

function compileStreamLogger(
  cfg: JsonObject,
  path: string,
  dest: string,
): { path: string; formatter: Formatter } {
  onlyFields(cfg, path, ['@type', 'log_format']);
  const formatter =
    cfg.log_format === undefined || cfg.log_format === null
      ? textFormatter(DEFAULT_FORMAT, path)
      : compileLogFormat(cfg.log_format, fieldPath(path, 'log_format'));
  return { path: dest, formatter };
}

function compileAccessLog(json: Json, path: string): AccessLogConfig {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['name', 'filter', 'typed_config']);
  const name = optString(obj, 'name', path) ?? '';
  const tcPath = fieldPath(path, 'typed_config');
  const cfg = asObject(obj.typed_config, tcPath);
  const type = typeName(requiredString(cfg, '@type', tcPath));
  // A TypedStruct names the logger it configures in type_url.
  const named =
    (type === 'xds.type.v3.TypedStruct' || type === 'udpa.type.v1.TypedStruct') &&
    typeof cfg.type_url === 'string'
      ? typeName(cfg.type_url)
      : type;
  let sink: { path: string; formatter: Formatter };
  if (type === FILE) sink = compileFileLogger(cfg, tcPath);
  else if (type === STDOUT) sink = compileStreamLogger(cfg, tcPath, '/dev/stdout');
  else if (type === STDERR) sink = compileStreamLogger(cfg, tcPath, '/dev/stderr');
  else
    throw new ConfigError(
      fieldPath(tcPath, '@type'),
      `access logger ${named} is not supported by Weft (FileAccessLog, StdoutAccessLog or StderrAccessLog)`,
    );
  const filter =
    obj.filter === undefined || obj.filter === null
      ? null
      : compileAccessLogFilter(obj.filter, fieldPath(path, 'filter'));
  return { name, path: sink.path, formatter: sink.formatter, filter };
}

/** Compiles an `access_log` list; `path` names the field, e.g. `...typed_config.access_log`. */
export function compileAccessLogs(json: unknown, path: string): readonly AccessLogConfig[] {
  if (json === undefined || json === null) return [];
  if (!Array.isArray(json)) throw new ConfigError(path, `expected a list, got ${JSON.stringify(json)}`);
  return (json as Json[]).map((item, i) => compileAccessLog(item, indexPath(path, i)));
}
