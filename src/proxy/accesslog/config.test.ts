import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.ts';
import { normalize } from '../config-proto/normalize.ts';
import { compileAccessLogs } from './config.ts';
import { fakeStream } from './testing.ts';

const FILE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

/** Normalizes each entry as the bootstrap loader does, then compiles the list. */
function compile(entries: unknown[]): ReturnType<typeof compileAccessLogs> {
  const normalized = entries.map((e, i) =>
    normalize('envoy.config.accesslog.v3.AccessLog', e, `access_log[${i}]`),
  );
  return compileAccessLogs(normalized, 'access_log');
}

function rejects(entries: unknown[], path: string, message: RegExp): void {
  assert.throws(
    () => compile(entries),
    (e: unknown) => e instanceof ConfigError && e.path === path && message.test(e.detail),
    JSON.stringify(entries),
  );
}

const stream = fakeStream({ method: 'GET', path: '/x', responseStatus: 204 });

describe('access_log config', () => {
  it('compiles file, stdout and stderr loggers with their formats and filters', () => {
    const logs = compile([
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': FILE,
          path: '/var/log/a.log',
          log_format: { text_format_source: { inline_string: '%REQ(:METHOD)% %RESPONSE_CODE%\n' } },
        },
        filter: {
          status_code_filter: { comparison: { op: 'GE', value: { default_value: 400, runtime_key: 'k' } } },
        },
      },
      {
        name: 'json',
        typed_config: {
          '@type': STDOUT,
          log_format: {
            json_format: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' },
            omit_empty_values: true,
          },
        },
      },
      { name: 'default', typed_config: { '@type': STDERR } },
      { name: 'legacy', typed_config: { '@type': FILE, path: '/l.log', format: '%PROTOCOL%|' } },
      {
        name: 'legacy-json',
        typed_config: { '@type': FILE, path: '/j.log', json_format: { p: '%PROTOCOL%' } },
      },
      { name: 'no-format', typed_config: { '@type': FILE, path: '/d.log' } },
      {
        name: 'text_format',
        typed_config: { '@type': FILE, path: '/t.log', log_format: { text_format: '%RESPONSE_CODE%' } },
      },
      {
        name: 'bytes',
        typed_config: {
          '@type': FILE,
          path: '/b.log',
          log_format: {
            text_format_source: { inline_bytes: Buffer.from('%RESPONSE_CODE%').toString('base64') },
          },
        },
      },
    ]);
    assert.deepEqual(
      logs.map((l) => [l.name, l.path]),
      [
        ['envoy.access_loggers.file', '/var/log/a.log'],
        ['json', '/dev/stdout'],
        ['default', '/dev/stderr'],
        ['legacy', '/l.log'],
        ['legacy-json', '/j.log'],
        ['no-format', '/d.log'],
        ['text_format', '/t.log'],
        ['bytes', '/b.log'],
      ],
    );
    assert.equal(logs[0].formatter.formatHttp(stream), 'GET 204\n');
    assert.equal(logs[0].filter!.http(stream), false);
    assert.equal(logs[0].filter!.http(fakeStream({ responseStatus: 500 })), true);
    assert.equal(logs[1].formatter.formatHttp(stream), '{"code":204,"path":"/x"}\n');
    assert.equal(logs[1].filter, null);
    assert.match(
      logs[2].formatter.formatHttp(stream),
      /^\[.*\] "GET \/x HTTP\/1\.1" 204 - 0 0 \d+ - "-" "-" "-" "example\.com" "-"\n$/,
    );
    assert.equal(logs[3].formatter.formatHttp(stream), 'HTTP/1.1|');
    assert.equal(logs[4].formatter.formatHttp(stream), '{"p":"HTTP/1.1"}\n');
    assert.match(logs[5].formatter.formatHttp(stream), /^\[.*\] "GET \/x HTTP\/1\.1" 204 /);
    assert.equal(logs[6].formatter.formatHttp(stream), '204');
    assert.equal(logs[7].formatter.formatHttp(stream), '204');
  });

  it('an absent or empty list is no access log', () => {
    assert.deepEqual(compileAccessLogs(undefined, 'x'), []);
    assert.deepEqual(compileAccessLogs([], 'x'), []);
  });

  it('rejects what Weft does not implement, naming the field', () => {
    rejects([{ name: 'x' }], 'access_log[0].typed_config', /expected an object/);
    rejects(
      [
        {
          name: 'x',
          typed_config: {
            '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
            type_url: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
          },
        },
      ],
      'access_log[0].typed_config.@type',
      /access logger envoy\.extensions\.access_loggers\.grpc\.v3\.HttpGrpcAccessLogConfig is not supported by Weft/,
    );
    rejects(
      [{ typed_config: { '@type': FILE, path: '/a', typed_json_format: { a: 'b' } } }],
      'access_log[0].typed_config.typed_json_format',
      /not supported by Weft/,
    );
    rejects(
      [
        {
          typed_config: {
            '@type': FILE,
            path: '/a',
            log_format: {
              json_format: { a: 'b' },
              formatters: [{ name: 'envoy.formatter.req_without_query' }],
            },
          },
        },
      ],
      'access_log[0].typed_config.log_format.formatters',
      /not supported by Weft/,
    );
    rejects(
      [
        {
          typed_config: { '@type': FILE, path: '/a', log_format: { text_format_source: { filename: '/f' } } },
        },
      ],
      'access_log[0].typed_config.log_format.text_format_source.filename',
      /not supported by Weft/,
    );
    rejects(
      [{ typed_config: { '@type': FILE, path: '/a', log_format: { text_format: '%BOGUS%' } } }],
      'access_log[0].typed_config.log_format.text_format',
      /%BOGUS% is not supported by Weft/,
    );
    rejects(
      [{ typed_config: { '@type': FILE, path: '/a', log_format: { json_format: { a: { b: '%BOGUS%' } } } } }],
      'access_log[0].typed_config.log_format.json_format.a.b',
      /%BOGUS% is not supported by Weft/,
    );
    rejects([{ typed_config: { '@type': FILE } }], 'access_log[0].typed_config.path', /required/);
    rejects(
      [{ typed_config: { '@type': FILE, path: '/a' }, filter: { metadata_filter: {} } }],
      'access_log[0].filter.metadata_filter',
      /not supported by Weft/,
    );
    rejects(
      [{ typed_config: { '@type': STDOUT, log_format: { content_type: 'text/plain', text_format: 'x' } } }],
      'access_log[0].typed_config.log_format.content_type',
      /not supported by Weft/,
    );
  });
});
