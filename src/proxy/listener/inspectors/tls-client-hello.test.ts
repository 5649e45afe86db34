import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './tls-client-hello.ts';

/** The first bytes node:tls sends: a real ClientHello, captured by a plain TCP server. */
async function capture(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ClientHello')), 5000);
      server.once('connection', (s) => {
        let seen = Buffer.alloc(0);
        s.on('data', (c: Buffer) => {
          seen = Buffer.concat([seen, c]);
          if (seen.length >= 5 && seen.length >= 5 + seen.readUInt16BE(3)) {
            clearTimeout(timer);
            resolve(seen);
            s.destroy();
          }
        });
      });
      const client = tls.connect({ port, host: '127.0.0.1', ...options });
      client.on('error', () => undefined);
    });
  } finally {
    server.close();
  }
}

/** A ClientHello built by hand: one record, the given extensions (type, data). */
function clientHello(extensions: [number, Buffer][] | null, recordVersion = 0x0301): Buffer {
  const parts = [
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one suite
    Buffer.from([1, 0]), // null compression
  ];
  if (extensions) {
    const ext = Buffer.concat(
      extensions.map(([type, data]) => {
        const head = Buffer.alloc(4);
        head.writeUInt16BE(type, 0);
        head.writeUInt16BE(data.length, 2);
        return Buffer.concat([head, data]);
      }),
    );
    const len = Buffer.alloc(2);
    len.writeUInt16BE(ext.length);
    parts.push(len, ext);
  }
  const body = Buffer.concat(parts);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  const rec = Buffer.from([22, recordVersion >> 8, recordVersion & 0xff, hs.length >> 8, hs.length & 0xff]);
  return Buffer.concat([rec, hs]);
}

function sni(name: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const entry = Buffer.concat([Buffer.from([0, n.length >> 8, n.length & 0xff]), n]);
  return Buffer.concat([Buffer.from([entry.length >> 8, entry.length & 0xff]), entry]);
}

function alpn(...names: string[]): Buffer {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([n.length]), Buffer.from(n)])));
  return Buffer.concat([Buffer.from([list.length >> 8, list.length & 0xff]), list]);
}

function withByte(bytes: Buffer, at: number, value: number): Buffer {
  bytes[bytes.length + at] = value;
  return bytes;
}

/** Re-frames a single-record ClientHello into records of at most `size` fragment bytes. */
function split(record: Buffer, size: number): Buffer {
  const hs = record.subarray(5);
  const out: Buffer[] = [];
  for (let i = 0; i < hs.length; i += size) {
    const frag = hs.subarray(i, i + size);
    out.push(Buffer.from([22, 3, 1, frag.length >> 8, frag.length & 0xff]), frag);
  }
  return Buffer.concat(out);
}

describe('parseClientHello', () => {
  it('reads SNI and ALPN from a real node:tls ClientHello, and needs every byte of it', async () => {
    const hello = await capture({ servername: 'Api.Example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.deepEqual(parseClientHello(hello), {
      kind: 'client_hello',
      serverName: 'api.example.com',
      applicationProtocols: ['h2', 'http/1.1'],
    });
    for (let n = 0; n < hello.length; n++) {
      assert.deepEqual(parseClientHello(hello.subarray(0, n)), { kind: 'need_more' }, `prefix of ${n} bytes`);
    }
  });

  it('a ClientHello without SNI or ALPN is still TLS', async () => {
    // node:tls sends no SNI for an IP address.
    const hello = await capture({});
    assert.deepEqual(parseClientHello(hello), {
      kind: 'client_hello',
      serverName: undefined,
      applicationProtocols: [],
    });
    assert.equal(parseClientHello(clientHello(null)).kind, 'client_hello');
  });

  it('reassembles a ClientHello split over several records', () => {
    const one = clientHello([
      [0, sni('a.test')],
      [16, alpn('h2')],
    ]);
    for (const size of [1, 3, 17, 64]) {
      const many = split(one, size);
      assert.deepEqual(parseClientHello(many), {
        kind: 'client_hello',
        serverName: 'a.test',
        applicationProtocols: ['h2'],
      });
      assert.deepEqual(parseClientHello(many.subarray(0, many.length - 1)), { kind: 'need_more' });
    }
  });

  it('says "not TLS" from the first byte that cannot be a ClientHello', () => {
    assert.deepEqual(parseClientHello(Buffer.from('G')), { kind: 'not_tls' });
    assert.deepEqual(parseClientHello(Buffer.from([22, 2])), { kind: 'not_tls' });
    // A handshake record whose message is not a ClientHello (a ServerHello).
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 40, 2])), { kind: 'not_tls' });
    // Zero-length and oversized record fragments.
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), { kind: 'not_tls' });
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0x01])), { kind: 'not_tls' });
    // An alert record after a partial handshake.
    const hello = clientHello([[0, sni('x')]]);
    const partial = split(hello, 10).subarray(0, 15);
    assert.deepEqual(parseClientHello(Buffer.concat([partial, Buffer.from([21, 3, 1, 0, 2, 2, 40])])), {
      kind: 'not_tls',
    });
    assert.deepEqual(parseClientHello(Buffer.alloc(0)), { kind: 'need_more' });
    assert.deepEqual(parseClientHello(Buffer.from([22, 3])), { kind: 'need_more' });
  });

  it('refuses malformed bodies: lengths past the end, duplicate extensions, bad names', () => {
    const cases: [string, Buffer][] = [
      [
        'duplicate SNI extension',
        clientHello([
          [0, sni('a')],
          [0, sni('b')],
        ]),
      ],
      ['empty ALPN name', clientHello([[16, alpn('')]])],
      ['SNI with a NUL', clientHello([[0, sni('a\u0000b')]])],
      ['SNI list length past the end', clientHello([[0, Buffer.from([0, 50, 0, 0, 1, 0x61])]])],
      ['ALPN list empty', clientHello([[16, Buffer.from([0, 0])]])],
      ['extension length past the end', withByte(clientHello([[16, alpn('h2')]]), -7, 0xff)],
    ];
    for (const [what, bytes] of cases) assert.deepEqual(parseClientHello(bytes), { kind: 'not_tls' }, what);
  });

  it('a handshake length beyond the limit is too large at once; never throws on random bytes', () => {
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff])), {
      kind: 'too_large',
    });
    // Small records that never finish: the peek stops at the limit.
    const tiny = split(clientHello([[0, sni('a'.repeat(60000))]]), 1);
    assert.deepEqual(parseClientHello(tiny.subarray(0, MAX_CLIENT_HELLO_BYTES)), { kind: 'too_large' });
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
    const base = clientHello([
      [0, sni('fuzz.test')],
      [16, alpn('h2', 'http/1.1')],
    ]);
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(base);
      // Keep the record header valid so the body parser is what gets exercised.
      for (let k = 0; k < 4; k++) bytes[9 + ((random() * 256 + random()) % (bytes.length - 9))] = random();
      assert.doesNotThrow(() => parseClientHello(bytes));
      assert.doesNotThrow(() => parseClientHello(bytes.subarray(0, random() % bytes.length)));
    }
  });
});
