import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { compileHeaderMutation, parseValueFormat } from './header-mutation.ts';
import { request } from './test-helpers.ts';
import type { HeaderMap, HeaderMutation, RouteRequest } from './types.ts';

function mutation(config: JsonObject, prefix: 'request' | 'response' = 'request'): HeaderMutation {
  const m = compileHeaderMutation(config, 'rc', prefix);
  assert.ok(m);
  return m;
}

function apply(config: JsonObject, headers: HeaderMap, req: RouteRequest = request()): HeaderMap {
  mutation(config).apply(headers, req);
  return headers;
}

const add = (key: string, value: string, extra: JsonObject = {}): JsonObject => ({
  header: { key, value },
  ...extra,
});

describe('append actions', () => {
  it('APPEND_IF_EXISTS_OR_ADD (the default) adds a value or another instance', () => {
    assert.deepEqual(apply({ request_headers_to_add: [add('x', '1')] }, {}), { x: '1' });
    assert.deepEqual(apply({ request_headers_to_add: [add('x', '2')] }, { x: '1' }), { x: ['1', '2'] });
    assert.deepEqual(apply({ request_headers_to_add: [add('x', '3')] }, { x: ['1', '2'] }), {
      x: ['1', '2', '3'],
    });
  });

  it('ADD_IF_ABSENT adds only when the header is missing', () => {
    const cfg = { request_headers_to_add: [add('x', 'new', { append_action: 'ADD_IF_ABSENT' })] };
    assert.deepEqual(apply(cfg, {}), { x: 'new' });
    assert.deepEqual(apply(cfg, { x: 'old' }), { x: 'old' });
  });

  it('OVERWRITE_IF_EXISTS_OR_ADD replaces all values or adds', () => {
    const cfg = {
      request_headers_to_add: [add('x', 'new', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })],
    };
    assert.deepEqual(apply(cfg, { x: ['a', 'b'] }), { x: 'new' });
    assert.deepEqual(apply(cfg, {}), { x: 'new' });
  });

  it('OVERWRITE_IF_EXISTS replaces only an existing header', () => {
    const cfg = { request_headers_to_add: [add('x', 'new', { append_action: 'OVERWRITE_IF_EXISTS' })] };
    assert.deepEqual(apply(cfg, { x: 'old' }), { x: 'new' });
    assert.deepEqual(apply(cfg, {}), {});
  });

  it('maps the deprecated append flag, and refuses it together with append_action', () => {
    assert.deepEqual(apply({ request_headers_to_add: [add('x', 'n', { append: false })] }, { x: 'o' }), {
      x: 'n',
    });
    assert.deepEqual(apply({ request_headers_to_add: [add('x', 'n', { append: true })] }, { x: 'o' }), {
      x: ['o', 'n'],
    });
    assert.throws(
      () =>
        mutation({
          request_headers_to_add: [add('x', 'n', { append: true, append_action: 'ADD_IF_ABSENT' })],
        }),
      /^ConfigError: rc\.request_headers_to_add\[0\]\.append: append and append_action may not both be set$/,
    );
  });

  it('decides every entry against the headers before this level added anything, then overwrites, then appends', () => {
    const cfg = {
      request_headers_to_add: [
        add('x', 'appended'),
        add('x', 'absent-only', { append_action: 'ADD_IF_ABSENT' }),
        add('x', 'overwritten', { append_action: 'OVERWRITE_IF_EXISTS' }),
        add('y', 'first', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }),
        add('y', 'second', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }),
      ],
    };
    // x absent: ADD_IF_ABSENT applies (x was absent before), OVERWRITE_IF_EXISTS does not.
    assert.deepEqual(apply(cfg, {}), { x: ['appended', 'absent-only'], y: 'second' });
    // x present: the overwrite happens first, then the append lands after it.
    assert.deepEqual(apply(cfg, { x: 'old' }), { x: ['overwritten', 'appended'], y: 'second' });
  });

  it('removes before adding', () => {
    const cfg = {
      request_headers_to_remove: ['x'],
      request_headers_to_add: [add('x', 'new', { append_action: 'ADD_IF_ABSENT' })],
    };
    assert.deepEqual(apply(cfg, { x: 'old', z: '1' }), { x: 'new', z: '1' });
  });

  it('drops empty values unless keep_empty_value', () => {
    assert.deepEqual(apply({ request_headers_to_add: [add('x', '')] }, {}), {});
    assert.deepEqual(apply({ request_headers_to_add: [add('x', '', { keep_empty_value: true })] }, {}), {
      x: '',
    });
    assert.deepEqual(
      apply({ request_headers_to_add: [add('x', '%REQ(missing)%')] }, {}),
      {},
      'an absent header formats as ""',
    );
  });

  it('never mutates an array it did not create (it may belong to the incoming request)', () => {
    const incoming = ['a'];
    const headers: HeaderMap = { x: incoming };
    apply({ request_headers_to_add: [add('x', 'b')] }, headers);
    assert.deepEqual(incoming, ['a']);
    assert.deepEqual(headers.x, ['a', 'b']);
  });

  it('lower-cases header names', () => {
    assert.deepEqual(
      apply(
        { request_headers_to_add: [add('X-Trace', 'v')], request_headers_to_remove: ['X-Gone'] },
        { 'x-gone': '1' },
      ),
      { 'x-trace': 'v' },
    );
  });

  it('returns undefined when a level configures nothing', () => {
    assert.equal(compileHeaderMutation({}, 'rc', 'request'), undefined);
    assert.equal(
      compileHeaderMutation({ request_headers_to_add: [add('x', '1')] }, 'rc', 'response'),
      undefined,
    );
  });

  it('works the same for response headers', () => {
    const headers: HeaderMap = { server: 'upstream', 'x-keep': '1' };
    mutation(
      { response_headers_to_add: [add('x-served-by', 'weft')], response_headers_to_remove: ['server'] },
      'response',
    ).apply(headers, request());
    assert.deepEqual(headers, { 'x-keep': '1', 'x-served-by': 'weft' });
  });
});

describe('forbidden names', () => {
  it('refuses pseudo-headers and host, to add or to remove', () => {
    for (const key of [':path', ':authority', 'host', 'Host']) {
      assert.throws(
        () => mutation({ request_headers_to_add: [add(key, 'v')] }),
        /^ConfigError: rc\.request_headers_to_add\[0\]\.header\.key: .*may not be modified$/,
      );
    }
    assert.throws(
      () => mutation({ request_headers_to_remove: ['ok', ':method'] }),
      /^ConfigError: rc\.request_headers_to_remove\[1\]: .*may not be removed$/,
    );
    assert.throws(
      () => mutation({ response_headers_to_add: [add(':status', '200')] }, 'response'),
      /may not be modified/,
    );
  });

  it('refuses invalid names and values Node could not send', () => {
    assert.throws(
      () => mutation({ request_headers_to_add: [add('bad name', 'v')] }),
      /is not a valid header name/,
    );
    assert.throws(
      () => mutation({ request_headers_to_add: [add('x', 'a\r\nb')] }),
      /^ConfigError: rc\.request_headers_to_add\[0\]\.header\.value: .*NUL, CR or LF/,
    );
    assert.throws(
      () => mutation({ request_headers_to_add: [{ header: { key: 'x', raw_value: 'AA==' } }] }),
      /header\.raw_value: not supported by Weft/,
    );
  });
});

describe('substitution formatters', () => {
  const req = request({
    headers: { 'x-user': 'alice', 'x-list': ['a', 'b'] },
    method: 'POST',
    authority: 'api.example.com:8443',
    sourceIp: '192.0.2.7',
  });

  it('formats %REQ(...)%, alternatives, truncation, pseudo-headers and the client address', () => {
    const f = (v: string): string => parseValueFormat(v, 'v').format(req);
    assert.equal(f('user=%REQ(x-user)%'), 'user=alice');
    assert.equal(f('%REQ(X-User)%'), 'alice');
    assert.equal(f('%REQ(x-missing?x-user)%'), 'alice');
    assert.equal(f('%REQ(x-user):3%'), 'ali');
    assert.equal(f('%REQ(x-list)%'), 'a,b');
    assert.equal(f('%REQ(:method)% %REQ(:authority)%'), 'POST api.example.com:8443');
    assert.equal(f('%REQ(x-missing)%'), '');
    assert.equal(f('%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%'), '192.0.2.7');
    assert.equal(f('100%% sure'), '100% sure');
  });

  it('keeps a constant value constant', () => {
    assert.equal(parseValueFormat('plain %% text', 'v').constant, 'plain % text');
    assert.equal(parseValueFormat('%REQ(a)%', 'v').constant, undefined);
  });

  it('rejects commands it cannot evaluate and malformed ones, naming the field', () => {
    assert.throws(
      () => parseValueFormat('%DOWNSTREAM_REMOTE_ADDRESS%', 'rc.x.value'),
      /^ConfigError: rc\.x\.value: substitution %DOWNSTREAM_REMOTE_ADDRESS% is not supported by Weft: the downstream port/,
    );
    assert.throws(() => parseValueFormat('%PROTOCOL%', 'v'), /%PROTOCOL% is not supported by Weft/);
    assert.throws(() => parseValueFormat('%START_TIME%', 'v'), /%START_TIME% is not supported by Weft/);
    assert.throws(() => parseValueFormat('50% off', 'v'), /invalid substitution at offset 2/);
    assert.throws(() => parseValueFormat('%REQ()%', 'v'), /invalid substitution|needs a header name/);
  });

  it('evaluates formatters on each apply', () => {
    const m = mutation({
      request_headers_to_add: [add('x-client', '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%')],
    });
    const a: HeaderMap = {};
    const b: HeaderMap = {};
    m.apply(a, request({ sourceIp: '1.1.1.1' }));
    m.apply(b, request({ sourceIp: '2.2.2.2' }));
    assert.deepEqual([a['x-client'], b['x-client']], ['1.1.1.1', '2.2.2.2']);
  });
});
