import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { UpstreamRequest } from './codec.ts';
import { InvalidRequestError, headerObject, requestHead } from './http1-native-wire.ts';
import type { RequestFraming } from './http1-native-wire.ts';

function head(req: Partial<UpstreamRequest>): { text: string; framing: RequestFraming } {
  const framing: RequestFraming = { contentLength: -2, chunked: false };
  const text = requestHead(
    { method: 'GET', path: '/', headers: {}, body: null, ...req },
    '10.0.0.1:8080',
    framing,
  );
  return { text, framing };
}

describe('requestHead', () => {
  it('writes the request line, the headers as given and a default host', () => {
    const r = head({ path: '/a?b=1', headers: { accept: '*/*', 'x-list': ['1', '2'] } });
    assert.equal(
      r.text,
      'GET /a?b=1 HTTP/1.1\r\naccept: */*\r\nx-list: 1\r\nx-list: 2\r\nhost: 10.0.0.1:8080\r\n\r\n',
    );
    assert.deepEqual(r.framing, { contentLength: -1, chunked: false });
  });

  it('keeps a given content-length and frames other bodies as chunked', () => {
    const body = Readable.from([]);
    const cl = head({ method: 'POST', headers: { host: 'h', 'content-length': '12' }, body });
    assert.deepEqual(cl.framing, { contentLength: 12, chunked: false });
    assert.doesNotMatch(cl.text, /transfer-encoding/);
    const ch = head({ method: 'POST', headers: { host: 'h' }, body });
    assert.deepEqual(ch.framing, { contentLength: -1, chunked: true });
    assert.match(ch.text, /\r\ntransfer-encoding: chunked\r\n\r\n$/);
  });

  it('says content-length: 0 for a bodiless POST, PUT or PATCH only', () => {
    assert.match(head({ method: 'PUT', headers: { host: 'h' } }).text, /content-length: 0/);
    assert.doesNotMatch(head({ method: 'DELETE', headers: { host: 'h' } }).text, /content-length/);
  });

  it('drops caller framing and connection fields, and asks for an upgrade itself', () => {
    const r = head({
      headers: { host: 'h', connection: 'close', 'transfer-encoding': 'chunked', upgrade: 'x' },
      upgrade: 'websocket',
    });
    assert.equal(r.text, 'GET / HTTP/1.1\r\nhost: h\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
  });

  it('refuses fields that could split the head or confuse framing', () => {
    const bad: Partial<UpstreamRequest>[] = [
      { headers: { 'x-a': 'v\r\nx-b: 1' } },
      { headers: { 'x-a': 'v\n' } },
      { headers: { 'x-a': 'v\0' } },
      { headers: { 'x-a': ['ok', 'bad\r'] } },
      { headers: { 'x a': 'v' } },
      { headers: { 'content-length': '1e3' } },
      { headers: { 'content-length': ['1', '1'] } },
      { path: '/a b' },
      { path: '' },
      { method: 'GE T' },
      { upgrade: 'web socket' },
    ];
    for (const req of bad) assert.throws(() => head(req), InvalidRequestError, JSON.stringify(req));
  });

  it('long values are checked too, whether or not an equal-length valid value was seen before', () => {
    const good = 'a'.repeat(300);
    assert.match(head({ headers: { 'x-long': good } }).text, /x-long: a{300}\r\n/);
    assert.match(head({ headers: { 'x-long': good } }).text, /x-long: a{300}\r\n/, 'again, from the cache');
    for (const bad of ['a'.repeat(299) + '\n', '\r' + 'a'.repeat(299), 'a'.repeat(5000) + '\0']) {
      assert.throws(() => head({ headers: { 'x-long': bad } }), InvalidRequestError);
      assert.throws(() => head({ headers: { 'x-long': [good, bad] } }), InvalidRequestError);
    }
  });
});

describe('headerObject', () => {
  it('lower-cases names and joins duplicates as node:http does', () => {
    const h = headerObject([
      'Set-Cookie',
      'a=1',
      'X-A',
      '1',
      'set-cookie',
      'b=2',
      'x-a',
      '2',
      'Cookie',
      'c=1',
      'cookie',
      'd=2',
      'ETag',
      '"1"',
      'etag',
      '"2"',
      '__proto__',
      'x',
    ]);
    assert.deepEqual(
      { ...h },
      { 'set-cookie': ['a=1', 'b=2'], 'x-a': '1, 2', cookie: 'c=1; d=2', etag: '"1"' },
    );
    assert.equal(Object.getPrototypeOf(h), Object.prototype);
  });
});
