import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectHttp, MAX_HTTP_INSPECT_BYTES } from './http-request-line.ts';

const detect = (s: string | Buffer): string => {
  const r = detectHttp(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  return r.kind === 'http' ? r.protocol : r.kind;
};

describe('detectHttp', () => {
  it('finds HTTP/1.1, HTTP/1.0 and the h2c preface', () => {
    assert.equal(detect('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'http/1.1');
    assert.equal(detect('POST /x?y=1 HTTP/1.0\r\n'), 'http/1.0');
    assert.equal(detect('OPTIONS * HTTP/1.1\n'), 'http/1.1');
    assert.equal(detect('CONNECT a.test:443 HTTP/1.1\r\n'), 'http/1.1');
    assert.equal(detect('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04'), 'h2c');
  });

  it('waits while the bytes are a valid beginning, for each prefix', () => {
    for (const full of ['GET /index.html HTTP/1.1\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']) {
      for (let n = 0; n < full.length; n++)
        assert.equal(detect(full.slice(0, n)), 'need_more', full.slice(0, n));
    }
  });

  it('decides "not HTTP" on the first impossible byte', () => {
    assert.equal(detect('hello world\r\n'), 'not_http');
    assert.equal(detect('SSH-2.0-OpenSSH_9.6\r\n'), 'not_http');
    assert.equal(detect(' GET'), 'not_http');
    assert.equal(detect('GET /\r\n'), 'not_http'); // HTTP/0.9
    assert.equal(detect('GET / HTTP/2.0\r\n'), 'not_http');
    assert.equal(detect('GET / HTTP/1.1x'), 'not_http');
    assert.equal(detect('GET  / HTTP/1.1\r\n'), 'not_http');
    assert.equal(detect(Buffer.from([0x16, 3, 1, 0, 5])), 'not_http'); // TLS
    assert.equal(detect(Buffer.from([0x0a, 0, 0, 0, 0x0a])), 'not_http'); // MySQL-ish
    assert.equal(detect('PRI * HTTP/2.0\r\nxx'), 'not_http');
  });

  it('gives up at the inspection limit instead of waiting for an endless request line', () => {
    const long = `GET /${'a'.repeat(MAX_HTTP_INSPECT_BYTES)}`;
    assert.equal(detect(long.slice(0, MAX_HTTP_INSPECT_BYTES - 1)), 'need_more');
    assert.equal(detect(long), 'not_http');
  });
});
