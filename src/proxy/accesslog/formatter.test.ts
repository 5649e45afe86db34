import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { ConfigError } from '../../core/errors.ts';
import { DEFAULT_FORMAT, jsonFormatter, textFormatter } from './formatter.ts';
import { recordDownstreamAddresses } from './operators.ts';
import { fakeHost, fakeSession, fakeStream } from './testing.ts';
import type { FakeStreamInit } from './testing.ts';

function text(format: string, init: FakeStreamInit = {}, omitEmpty = false): string {
  return textFormatter(format, 'f', omitEmpty).formatHttp(fakeStream(init));
}

function json(dict: Record<string, unknown>, init: FakeStreamInit = {}, omitEmpty = false): string {
  return jsonFormatter(dict as never, 'f', { omitEmpty }).formatHttp(fakeStream(init));
}

const COMPLETE: FakeStreamInit = {
  method: 'POST',
  path: '/api/items?x=1',
  authority: 'shop.local:8080',
  headers: {
    'user-agent': 'curl/8',
    'x-request-id': 'abc-123',
    'x-forwarded-for': '10.1.1.1',
    'x-envoy-original-path': '/orig',
  },
  responseStatus: 201,
  clusterName: 'outbound|80||shop',
  upstreamHost: fakeHost('10.0.0.5', 8080),
  upstreamHeaders: { 'x-envoy-upstream-service-time': '7', 'content-type': 'text/plain' },
  upstreamTrailers: { 'grpc-message': 'fine' },
  bytesReceived: 12,
  bytesSent: 345,
  startMs: 100,
  endMs: 142.9,
};

describe('access log text format', () => {
  it("prints Envoy's default format", () => {
    assert.equal(
      text(DEFAULT_FORMAT, COMPLETE),
      '[2024-05-01T12:03:04.056Z] "POST /orig HTTP/1.1" 201 - 12 345 42 7 "10.1.1.1" "curl/8" "abc-123" ' +
        '"shop.local:8080" "10.0.0.5:8080"\n',
    );
  });

  it('prints - for every value it does not know', () => {
    assert.equal(
      text(DEFAULT_FORMAT, { headers: {}, authority: '', endMs: 0, responseStatus: 0 }),
      '[2024-05-01T12:03:04.056Z] "GET / HTTP/1.1" 0 - 0 0 - - "-" "-" "-" "-" "-"\n',
    );
  });

  it('omit_empty_values prints nothing instead of -', () => {
    assert.equal(text('a=%REQ(X-MISSING)% b=%UPSTREAM_HOST%|', {}, true), 'a= b=|');
  });

  it('reads request headers with an alternative and a maximum length', () => {
    assert.equal(text('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%', { path: '/p' }), '/p');
    assert.equal(text('%REQ(X-MISSING?USER-AGENT)%', COMPLETE), 'curl/8');
    assert.equal(text('%REQ(USER-AGENT):3%', COMPLETE), 'cur');
    assert.equal(
      text('%REQ(:METHOD)% %REQ(:AUTHORITY)% %REQ(HOST)%', COMPLETE),
      'POST shop.local:8080 shop.local:8080',
    );
    assert.equal(text('%REQ(X-MULTI)%', { headers: { 'x-multi': ['a', 'b'] as never } }), 'a,b');
  });

  it("reads the upstream's response headers and trailers", () => {
    assert.equal(
      text('%RESP(CONTENT-TYPE)% %RESP(X-NONE?X-ENVOY-UPSTREAM-SERVICE-TIME)%', COMPLETE),
      'text/plain 7',
    );
    assert.equal(text('%TRAILER(GRPC-MESSAGE)% %TRAILER(X-NONE)%', COMPLETE), 'fine -');
    assert.equal(text('%RESP(CONTENT-TYPE)%', {}), '-');
  });

  it('formats START_TIME with a strftime pattern, in UTC', () => {
    const at = { startTime: Date.UTC(2024, 0, 2, 3, 4, 5, 67) };
    assert.equal(text('%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%', at), '2024-01-02T03:04:05.067Z');
    assert.equal(text('%START_TIME(%s)%', at), String(Math.floor(at.startTime / 1000)));
    assert.equal(
      text('%START_TIME(%E3S|%6f|%f|%j|%y|%b %a|%%)%', at),
      '05.067|067000|067000000|002|24|Jan Tue|%',
    );
  });

  it('prints response and upstream facts', () => {
    assert.equal(
      text(
        '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW% %UPSTREAM_HOST% %UPSTREAM_REMOTE_ADDRESS% %UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%',
        COMPLETE,
      ),
      '201 - outbound|80||shop outbound|80||shop 10.0.0.5:8080 10.0.0.5:8080 10.0.0.5',
    );
    assert.equal(
      text('%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%', { flags: 'UF,URX', responseStatus: 503 }),
      'UF,URX upstream_reset_before_response_started{connection_failure}',
    );
    assert.equal(text('%RESPONSE_CODE_DETAILS%', { flags: 'NR' }), 'route_not_found');
    assert.equal(text('%RESPONSE_CODE_DETAILS%', COMPLETE), 'via_upstream');
    assert.equal(text('%RESPONSE_CODE_DETAILS%', {}), '-');
    // Weft does not know these: Envoy's "-".
    assert.equal(
      text(
        '%CONNECTION_TERMINATION_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON% %UPSTREAM_LOCAL_ADDRESS% %REQUEST_DURATION% %RESPONSE_DURATION%',
        COMPLETE,
      ),
      '- - - - -',
    );
  });

  it('prints durations in whole milliseconds and the protocol', () => {
    assert.equal(text('%DURATION% %BYTES_RECEIVED% %BYTES_SENT%', COMPLETE), '42 12 345');
    assert.equal(text('%PROTOCOL%', { http2: true }), 'HTTP/2');
    assert.equal(text('%PROTOCOL%', { httpVersion: '1.0' }), 'HTTP/1.0');
  });

  it('prints downstream addresses (IPv4-mapped addresses as plain IPv4, IPv6 in brackets)', () => {
    assert.equal(
      text(
        '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT%',
        {},
      ),
      '127.0.0.1:8080 10.0.0.9:40000 10.0.0.9 8080',
    );
    assert.equal(
      text('%DOWNSTREAM_REMOTE_ADDRESS%', { socket: { remoteAddress: '::1', remotePort: 5 } }),
      '[::1]:5',
    );
    assert.equal(text('%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%', { socket: null }), '- -');
  });

  it('prints what the downstream TLS established', () => {
    const security = {
      sni: 'shop.local',
      peerUriSans: ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://x/y'],
      peerSubject: 'CN=client',
      tlsVersion: 'TLSv1.3',
      localPrincipal: 'spiffe://cluster.local/ns/a/sa/me',
    };
    assert.equal(
      text(
        '%REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_PEER_SUBJECT% %DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_LOCAL_URI_SAN%',
        { security },
      ),
      'shop.local spiffe://cluster.local/ns/a/sa/b,spiffe://x/y CN=client TLSv1.3 spiffe://cluster.local/ns/a/sa/me',
    );
    assert.equal(
      text('%REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION%', {}),
      '- - -',
    );
  });

  it('prints the gRPC status by name, snake name or number', () => {
    const grpc = { isGrpc: true, grpcStatus: '14' };
    assert.equal(
      text('%GRPC_STATUS% %GRPC_STATUS(SNAKE_STRING)% %GRPC_STATUS(NUMBER)% %GRPC_STATUS_NUMBER%', grpc),
      'Unavailable UNAVAILABLE 14 14',
    );
    assert.equal(text('%GRPC_STATUS%', { grpcStatus: '0' }), 'OK');
    assert.equal(text('%GRPC_STATUS%', {}), '-');
  });

  it('prints the route name, hostname, trace id and dynamic metadata', () => {
    assert.equal(text('%ROUTE_NAME%', { routeName: 'default' }), 'default');
    assert.equal(text('%ROUTE_NAME%', { routeName: null }), '-');
    assert.equal(text('%ROUTE_NAME%', { routeName: '' }), '-');
    assert.equal(text('%HOSTNAME%'), hostname());
    assert.equal(
      text('%TRACE_ID%', { trace: { sampled: true, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' } }),
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
    assert.equal(text('%TRACE_ID%', { trace: { sampled: true } }), '-');
    const dynamicMetadata = { 'envoy.filters.http.jwt_authn': { payload: { sub: 'alice', n: 3 } } };
    assert.equal(
      text(
        '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:sub)% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:n)% %DYNAMIC_METADATA(x:y)%',
        { dynamicMetadata },
      ),
      'alice 3 -',
    );
    assert.equal(
      text('%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload)%', { dynamicMetadata }),
      '{"sub":"alice","n":3}',
    );
  });

  it('formats TCP sessions with the same operators (HTTP-only ones print -)', () => {
    const f = textFormatter(
      '%START_TIME% %PROTOCOL% %REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_LOCAL_ADDRESS%',
      'f',
    );
    const session = fakeSession({
      flags: 'UF',
      upstreamHost: fakeHost('10.0.0.7', 3306),
      bytesReceived: 10,
      bytesSent: 20,
      upstream: { localAddress: '127.0.0.1', localPort: 4444 },
    });
    assert.equal(
      f.formatTcp(session),
      '2024-05-01T12:03:04.056Z - - 0 UF 10 20 250 10.0.0.7:3306 tcp 127.0.0.1:50000 127.0.0.1:4444',
    );
  });

  it('prints TCP addresses copied while the sockets were open', () => {
    const session = fakeSession();
    recordDownstreamAddresses(session);
    // The socket is gone: Node no longer answers its addresses.
    (session as unknown as { downstream: object }).downstream = {};
    assert.equal(
      textFormatter('%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%', 'f').formatTcp(session),
      '127.0.0.1:50000 127.0.0.1:9000',
    );
  });

  it('rejects what Weft does not know, naming the field', () => {
    const cases: [string, RegExp][] = [
      ['%NOPE%', /command operator %NOPE% is not supported by Weft/],
      ['%REQ%', /REQ needs a header name/],
      ['%REQ(a?b?c)%', /expected REQ\(name\) or REQ\(name\?alternative\)/],
      ['%DURATION(x)%', /%DURATION% takes no argument/],
      ['100% sure', /no valid command operator at position 3/],
      ['%START_TIME(%Q)%', /time format specifier "%Q"/],
      ['%GRPC_STATUS(LOUD)%', /expected CAMEL_STRING, SNAKE_STRING or NUMBER/],
      ['%FILTER_STATE(x)%', /%FILTER_STATE% is not supported by Weft/],
    ];
    for (const [format, message] of cases) {
      assert.throws(
        () => textFormatter(format, 'x.log_format'),
        (e: unknown) => e instanceof ConfigError && e.path === 'x.log_format' && message.test(e.message),
        format,
      );
    }
  });
});

describe('access log JSON format', () => {
  it('writes one object per line, keys in config order, numbers as numbers', () => {
    const line = json(
      {
        start_time: '%START_TIME%',
        method: '%REQ(:METHOD)%',
        response_code: '%RESPONSE_CODE%',
        bytes_sent: '%BYTES_SENT%',
        duration: '%DURATION%',
        upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
        flags: '%RESPONSE_FLAGS%',
        combined: '%REQ(:METHOD)% %RESPONSE_FLAGS%',
        constant: 'weft',
        nested: { host: '%UPSTREAM_HOST%', n: 5, on: true },
      },
      COMPLETE,
    );
    assert.ok(line.endsWith('}\n'));
    assert.equal(line.split('\n').length, 2);
    const obj = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(obj, {
      start_time: '2024-05-01T12:03:04.056Z',
      method: 'POST',
      response_code: 201,
      bytes_sent: 345,
      duration: 42,
      upstream_service_time: '7',
      flags: null,
      combined: 'POST -',
      constant: 'weft',
      nested: { host: '10.0.0.5:8080', n: 5, on: true },
    });
    assert.deepEqual(Object.keys(obj), [
      'start_time',
      'method',
      'response_code',
      'bytes_sent',
      'duration',
      'upstream_service_time',
      'flags',
      'combined',
      'constant',
      'nested',
    ]);
  });

  it('escapes strings', () => {
    const obj = JSON.parse(
      json({ ua: '%REQ(USER-AGENT)%' }, { headers: { 'user-agent': 'a "q" \\ \u0001' } }),
    ) as { ua: string };
    assert.equal(obj.ua, 'a "q" \\ \u0001');
  });

  it('omit_empty_values leaves unknown values out', () => {
    assert.equal(
      json({ a: '%UPSTREAM_HOST%', b: '%RESPONSE_CODE%', c: { d: '%RESPONSE_FLAGS%' } }, {}, true),
      '{"b":200,"c":{}}\n',
    );
  });

  it('sorts keys when asked', () => {
    const f = jsonFormatter({ b: '%RESPONSE_CODE%', a: 'x' }, 'f', { sortKeys: true });
    assert.equal(f.formatHttp(fakeStream()), '{"a":"x","b":200}\n');
  });

  it('keeps dynamic metadata structured', () => {
    const line = json(
      { jwt: '%DYNAMIC_METADATA(jwt:payload)%' },
      { dynamicMetadata: { jwt: { payload: { sub: 'a' } } } },
    );
    assert.equal(line, '{"jwt":{"sub":"a"}}\n');
  });

  it('formats TCP sessions', () => {
    const f = jsonFormatter(
      { bytes_received: '%BYTES_RECEIVED%', protocol: '%PROTOCOL%', flags: '%RESPONSE_FLAGS%' },
      'f',
    );
    assert.equal(
      f.formatTcp(fakeSession({ bytesReceived: 3, flags: 'UF' })),
      '{"bytes_received":3,"protocol":null,"flags":"UF"}\n',
    );
  });

  it('rejects lists and bad operators, naming the key', () => {
    assert.throws(
      () => jsonFormatter({ a: { b: ['%PROTOCOL%'] } }, 'x.json_format'),
      (e: unknown) => e instanceof ConfigError && e.path === 'x.json_format.a.b' && /lists/.test(e.message),
    );
    assert.throws(
      () => jsonFormatter({ 'odd key': '%NOPE%' }, 'x.json_format'),
      (e: unknown) => e instanceof ConfigError && e.path === 'x.json_format["odd key"]',
    );
  });
});
