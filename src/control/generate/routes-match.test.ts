import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { generatorFromYaml, sidecarNode } from './testing.ts';

const WEB = 'web.default.svc.cluster.local';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [${WEB}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - { number: 80, name: http, protocol: HTTP }
    - { number: 8080, name: http-alt, protocol: HTTP }
  endpoints: [{ address: 10.1.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [${WEB}]
  http:
    - name: only-8080
      match: [{ port: 8080, uri: { prefix: /alt } }]
      route: [{ destination: { host: ${WEB}, port: { number: 8080 } } }]
    - name: authority
      match:
        - { authority: { exact: a.example } }
        - { authority: { prefix: b. } }
        - { authority: { regex: 'c[0-9]+\\.example' } }
      route: [{ destination: { host: ${WEB}, subset: v2 } }]
    - name: canary-callers
      match: [{ sourceLabels: { track: canary }, uri: { prefix: /new } }]
      route: [{ destination: { host: ${WEB}, subset: v3 } }]
    - name: headers
      match: [{ uri: { prefix: /h } }]
      headers:
        request:
          set: { x-set: one }
          add: { x-added: two }
          remove: [x-gone]
        response:
          set: { x-resp-set: three }
          add: { x-resp-added: four }
          remove: [x-resp-gone]
      route: [{ destination: { host: ${WEB} } }]
    - name: destination-headers
      match: [{ uri: { prefix: /d } }]
      route:
        - destination: { host: ${WEB} }
          headers:
            request: { add: { x-dest-added: five } }
            response: { add: { x-dest-resp-added: six } }
    - name: both-headers
      match: [{ uri: { prefix: /b } }]
      headers:
        request: { add: { x-route-added: seven } }
      route:
        - destination: { host: ${WEB} }
          headers:
            request: { add: { x-dest-added: eight } }
    - name: weighted-headers
      match: [{ uri: { prefix: /w } }]
      route:
        - destination: { host: ${WEB}, subset: v1 }
          weight: 60
          headers: { request: { add: { x-w: v1 } }, response: { add: { x-wr: v1 } } }
        - destination: { host: ${WEB}, subset: v2 }
          weight: 40
    - name: rest
      route: [{ destination: { host: ${WEB} } }]
`;

interface Route {
  name: string;
  match: Record<string, unknown>;
  route?: Record<string, unknown>;
  request_headers_to_add?: unknown;
  request_headers_to_remove?: unknown;
  response_headers_to_add?: unknown;
  response_headers_to_remove?: unknown;
}

const gen = generatorFromYaml(CONFIG);

/** The routes of `web` on `port` in the proxy's virtualOutbound route configuration. */
function routesOf(proxy: ProxyNode, port: number): Route[] {
  const rc = gen.generate(proxy, TYPE_URL.route, new Set(['virtualOutbound'])).get('virtualOutbound');
  assert.ok(rc, 'virtualOutbound is generated');
  const vh = (rc.virtual_hosts as unknown as { name: string; routes: Route[] }[]).find(
    (v) => v.name === `${WEB}:${port}`,
  );
  assert.ok(vh, `a virtual host for ${WEB}:${port}`);
  // virtualOutbound also serves the explicit proxy: its CONNECT route comes last and is not the VirtualService's.
  return vh.routes.filter((r) => r.match.connect_matcher === undefined);
}

const names = (routes: Route[]): string[] => routes.map((r) => r.name);
const byName = (routes: Route[], name: string): Route => {
  const found = routes.find((r) => r.name === name);
  assert.ok(found, `route ${name}`);
  return found;
};

const plain = sidecarNode('client', 'default');
const canary = sidecarNode('client', 'default', { track: 'canary' });

describe('VirtualService HTTP match port / authority / sourceLabels and header add → Envoy routes', () => {
  it('puts a match with port only on that port of the service', () => {
    const on8080 = routesOf(plain, 8080);
    const on80 = routesOf(plain, 80);
    assert.deepEqual(byName(on8080, 'only-8080').match, { prefix: '/alt' });
    assert.equal(byName(on8080, 'only-8080').route?.cluster, `outbound|8080||${WEB}`);
    assert.ok(!names(on80).includes('only-8080'), `port 80 has no only-8080 route: ${names(on80).join(',')}`);
    // Routes without a port match are on both ports, in the VirtualService's order.
    assert.deepEqual(names(on80), [
      'authority',
      'authority',
      'authority',
      'headers',
      'destination-headers',
      'both-headers',
      'weighted-headers',
      'rest',
    ]);
    assert.deepEqual(names(on8080), [
      'only-8080',
      'authority',
      'authority',
      'authority',
      'headers',
      'destination-headers',
      'both-headers',
      'weighted-headers',
      'rest',
    ]);
  });

  it('turns authority exact / prefix / regex into :authority header matchers, one route per match', () => {
    const authority = routesOf(plain, 80).filter((r) => r.name === 'authority');
    assert.deepEqual(
      authority.map((r) => r.match),
      [
        { prefix: '/', headers: [{ name: ':authority', string_match: { exact: 'a.example' } }] },
        { prefix: '/', headers: [{ name: ':authority', string_match: { prefix: 'b.' } }] },
        {
          prefix: '/',
          headers: [{ name: ':authority', string_match: { safe_regex: { regex: 'c[0-9]+\\.example' } } }],
        },
      ],
    );
    for (const r of authority) assert.equal(r.route?.cluster, `outbound|80|v2|${WEB}`);
  });

  it('applies a sourceLabels match only to proxies whose labels match', () => {
    const forCanary = routesOf(canary, 80);
    const forPlain = routesOf(plain, 80);
    assert.deepEqual(byName(forCanary, 'canary-callers').match, { prefix: '/new' });
    assert.equal(byName(forCanary, 'canary-callers').route?.cluster, `outbound|80|v3|${WEB}`);
    assert.ok(!names(forPlain).includes('canary-callers'));
    // Apart from that route the two proxies get the same routes.
    assert.deepEqual(
      forCanary.filter((r) => r.name !== 'canary-callers'),
      forPlain,
    );
    // Same namespace, labels differ only in what the selector looks at: the plan must not be shared.
    const otherCanary = sidecarNode('other', 'default', { track: 'canary' });
    assert.ok(names(routesOf(otherCanary, 80)).includes('canary-callers'));
    const almost = sidecarNode('client', 'default', { track: 'stable' });
    assert.ok(!names(routesOf(almost, 80)).includes('canary-callers'));
  });

  it('appends headers.*.add (APPEND_IF_EXISTS_OR_ADD) and overwrites headers.*.set', () => {
    const r = byName(routesOf(plain, 80), 'headers');
    assert.deepEqual(r.request_headers_to_add, [
      { header: { key: 'x-set', value: 'one' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-added', value: 'two' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(r.request_headers_to_remove, ['x-gone']);
    assert.deepEqual(r.response_headers_to_add, [
      { header: { key: 'x-resp-set', value: 'three' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-resp-added', value: 'four' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(r.response_headers_to_remove, ['x-resp-gone']);
  });

  it("applies a single destination's headers.*.add on its route", () => {
    const r = byName(routesOf(plain, 80), 'destination-headers');
    assert.equal(r.route?.cluster, `outbound|80||${WEB}`);
    assert.deepEqual(r.request_headers_to_add, [
      { header: { key: 'x-dest-added', value: 'five' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
    assert.deepEqual(r.response_headers_to_add, [
      { header: { key: 'x-dest-resp-added', value: 'six' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
    ]);
  });

  it("keeps a single destination's headers when the HTTPRoute sets headers too", () => {
    const r = byName(routesOf(plain, 80), 'both-headers');
    const keys = (r.request_headers_to_add as { header: { key: string } }[] | undefined)
      ?.map((h) => h.header.key)
      .sort();
    assert.deepEqual(keys, ['x-dest-added', 'x-route-added']);
  });

  it("puts a weighted destination's header add on its own weighted cluster", () => {
    const r = byName(routesOf(plain, 80), 'weighted-headers');
    assert.equal(r.request_headers_to_add, undefined);
    assert.deepEqual((r.route?.weighted_clusters as { clusters: unknown[] }).clusters, [
      {
        name: `outbound|80|v1|${WEB}`,
        weight: 60,
        request_headers_to_add: [
          { header: { key: 'x-w', value: 'v1' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
        ],
        response_headers_to_add: [
          { header: { key: 'x-wr', value: 'v1' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
        ],
      },
      { name: `outbound|80|v2|${WEB}`, weight: 40 },
    ]);
  });
});
