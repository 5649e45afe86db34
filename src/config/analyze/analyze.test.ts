import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { combineFiles, loadText } from '../load.ts';
import { analyze } from './index.ts';

/** Loads YAML documents (joined with ---) as file "t.yaml"; fails the test on any load diagnostic. */
function load(...docs: string[]): IstioResource[] {
  const { resources, diagnostics } = combineFiles([loadText('t.yaml', docs.join('---\n'))]);
  assert.deepEqual(diagnostics, []);
  return resources;
}

/** "CODE severity resource field@line" for each diagnostic, without the support warnings unless asked. */
function summary(diagnostics: Diagnostic[], withSupport = false): string[] {
  return diagnostics
    .filter((d) => withSupport || !d.code.startsWith('WE02'))
    .map((d) => `${d.code} ${d.severity} ${d.resource} ${d.field ?? '-'}@${d.line}`);
}

const se = (name: string, host: string, extra = ''): string =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n  hosts: [${host}]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n${extra}`;

const drWithSubsets = (host: string, ...subsets: string[]): string =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr-${host.replace(/[^a-z]/g, '')}}\nspec:\n  host: ${host}\n  subsets:\n${subsets.map((s) => `  - name: ${s}\n    labels: {version: ${s}}\n`).join('')}`;

describe('analyze: VirtualService references', () => {
  it('a subset that no DestinationRule for the host defines is IST0101, on the subset field and its line', () => {
    const resources = load(
      se('reviews', 'reviews.default.svc.cluster.local'),
      drWithSubsets('reviews', 'v1'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
`,
    );
    const diagnostics = analyze(resources);
    assert.deepEqual(summary(diagnostics), [
      'IST0101 error VirtualService default/reviews spec.http[0].route[1].destination.subset@29',
    ]);
    assert.equal(
      diagnostics[0].message,
      'Referenced host+subset in destinationrule not found: "reviews.default.svc.cluster.local+v3"',
    );
  });

  it('finds subsets through a wildcard DestinationRule, and in context resources', () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  http:
  - route:
    - destination: {host: a.example.com, subset: v2}
`;
    const context = load(drWithSubsets('"*.example.com"', 'v2'), se('a', 'a.example.com'));
    assert.deepEqual(summary(analyze(load(vs), { context })), []);
    assert.deepEqual(summary(analyze(load(vs, se('a', 'a.example.com')))), [
      'IST0101 error VirtualService default/a spec.http[0].route[0].destination.subset@8',
    ]);
  });

  it('a host no ServiceEntry defines is a warning, once per host', () => {
    const resources = load(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: shop}
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: cart}
    mirror: {host: cart}
  tcp:
  - route:
    - destination: {host: db.example.com}
`);
    assert.deepEqual(summary(analyze(resources)), [
      'WE0101 warning VirtualService shop/a spec.http[0].route[0].destination.host@8',
      'WE0101 warning VirtualService shop/a spec.tcp[0].route[0].destination.host@12',
    ]);
    assert.match(
      analyze(resources)[0].message,
      /host "cart.shop.svc.cluster.local" is not defined by any ServiceEntry/,
    );
  });

  it('a gateway that does not exist is IST0101; mesh and existing gateways are fine', () => {
    const resources = load(
      se('a', 'a.example.com'),
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: edge}\nspec:\n  selector: {istio: ingress}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  gateways: [mesh, edge/gw, missing]
  http:
  - match: [{gateways: [other/gw]}]
    route: [{destination: {host: a.example.com}}]
`,
    );
    assert.deepEqual(summary(analyze(resources)), [
      'IST0101 error VirtualService default/a spec.gateways[2]@21',
      'IST0101 error VirtualService default/a spec.http[0].match[0].gateways[0]@23',
    ]);
    assert.match(analyze(resources)[0].message, /Referenced gateway not found: "default\/missing"/);
  });
});

describe('analyze: weights', () => {
  const vs = (...weights: (number | undefined)[]): string =>
    `${se('a', 'a.example.com')}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a.example.com]\n  http:\n  - route:\n${weights
      .map(
        (w) => `    - destination: {host: a.example.com}\n${w === undefined ? '' : `      weight: ${w}\n`}`,
      )
      .join('')}`;

  it('weights summing to 100, or a single destination, are fine', () => {
    assert.deepEqual(summary(analyze(load(vs(80, 20)))), []);
    assert.deepEqual(summary(analyze(load(vs(undefined)))), []);
    assert.deepEqual(summary(analyze(load(vs(100, 0)))), []);
  });

  it('weights not summing to 100 are a warning on the route', () => {
    const d = analyze(load(vs(80, 30)));
    assert.deepEqual(summary(d), ['WE0104 warning VirtualService default/a spec.http[0].route@15']);
    assert.match(d[0].message, /weights add up to 110, not 100/);
    assert.match(
      analyze(load(vs(80, undefined)))[0].message,
      /add up to 80.*1 destination\(s\) without a weight get none/,
    );
  });

  it('a negative weight, or no weight at all across several destinations, is an error', () => {
    assert.deepEqual(summary(analyze(load(vs(120, -20)))), [
      'WE0103 error VirtualService default/a spec.http[0].route[1].weight@19',
    ]);
    assert.deepEqual(summary(analyze(load(vs(undefined, undefined)))), [
      'WE0103 error VirtualService default/a spec.http[0].route@15',
    ]);
  });
});

describe('analyze: conflicting VirtualServices', () => {
  const vs = (name: string, host: string, gateways?: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}}\nspec:\n  hosts: [${host}]\n${gateways ? `  gateways: [${gateways}]\n` : ''}  http:\n  - route: [{destination: {host: ${host}}}]\n`;

  it('two for the same host on the mesh are IST0109 errors on both', () => {
    const d = analyze(
      load(se('a', 'a.example.com'), vs('one', 'a.example.com'), vs('two', 'a.example.com', 'mesh')),
    );
    assert.deepEqual(summary(d), [
      'IST0109 error VirtualService default/one spec.hosts[0]@13',
      'IST0109 error VirtualService default/two spec.hosts[0]@21',
    ]);
    assert.match(d[0].message, /also defined for the mesh by VirtualService default\/two/);
  });

  it('two for the same host on the same gateway are a WE0102 warning; different gateways do not conflict', () => {
    const gw =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n';
    const gw2 = gw.replace('name: gw}', 'name: gw2}');
    assert.deepEqual(
      summary(
        analyze(
          load(
            se('a', 'a.example.com'),
            gw,
            vs('one', 'a.example.com', 'gw'),
            vs('two', 'a.example.com', 'gw'),
          ),
        ),
      ),
      [
        'WE0102 warning VirtualService default/one spec.hosts[0]@19',
        'WE0102 warning VirtualService default/two spec.hosts[0]@28',
      ],
    );
    assert.deepEqual(
      summary(
        analyze(
          load(
            se('a', 'a.example.com'),
            gw,
            gw2,
            vs('one', 'a.example.com', 'gw'),
            vs('two', 'a.example.com', 'gw2'),
          ),
        ),
      ),
      [],
    );
  });
});

describe('analyze: selectors and workloads', () => {
  const we = (name: string, labels: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}}\nspec:\n  address: 10.0.0.1\n  labels: ${labels}\n`;
  const gateway =
    'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n';

  it('a Gateway whose selector matches no known workload is IST0127, only when workloads are known', () => {
    assert.deepEqual(summary(analyze(load(gateway))), []);
    assert.deepEqual(summary(analyze(load(gateway, we('w', '{app: reviews}')))), [
      'IST0127 warning Gateway default/gw spec.selector@5',
    ]);
    assert.deepEqual(summary(analyze(load(gateway, we('w', '{istio: ingressgateway, x: y}')))), []);
  });

  it("a DestinationRule subset that selects none of its host's workloads is a WE0107 info", () => {
    const resources = load(
      se(
        'reviews',
        'reviews.default.svc.cluster.local',
        '  workloadSelector: {labels: {app: reviews}}\n',
      ).replace('resolution: STATIC\n', 'resolution: STATIC\n'),
      we('r1', '{app: reviews, version: v1}'),
      we('other', '{app: ratings, version: v2}'),
      drWithSubsets('reviews', 'v1', 'v2'),
    );
    const d = analyze(resources);
    assert.deepEqual(summary(d), [
      'WE0107 info DestinationRule default/dr-reviews spec.subsets[1].labels@33',
    ]);
    assert.match(d[0].message, /subset "v2" selects none of the 1 known workload\(s\)/);
  });
});

describe('analyze: policies', () => {
  const pa = (name: string, mode: string, selector?: string, namespace = 'default'): string =>
    `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${selector ? `  selector: {matchLabels: ${selector}}\n` : ''}  mtls: {mode: ${mode}}\n`;

  it('more than one namespace-wide PeerAuthentication in a namespace is an error', () => {
    assert.deepEqual(
      summary(analyze(load(pa('a', 'STRICT'), pa('b', 'STRICT'), pa('c', 'STRICT', undefined, 'other')))),
      ['WE0105 error PeerAuthentication default/a -@1', 'WE0105 error PeerAuthentication default/b -@7'],
    );
  });

  it('two PeerAuthentications for the same selector with different modes conflict; same mode or other selectors do not', () => {
    assert.deepEqual(
      summary(analyze(load(pa('a', 'STRICT', '{app: x, v: "1"}'), pa('b', 'DISABLE', '{v: "1", app: x}')))),
      [
        'WE0106 error PeerAuthentication default/a spec.selector@5',
        'WE0106 error PeerAuthentication default/b spec.selector@12',
      ],
    );
    assert.deepEqual(
      summary(analyze(load(pa('a', 'STRICT', '{app: x}'), pa('b', 'STRICT', '{app: x}')))),
      [],
    );
    assert.deepEqual(
      summary(analyze(load(pa('a', 'STRICT', '{app: x}'), pa('b', 'DISABLE', '{app: y}')))),
      [],
    );
  });

  it('more than one Sidecar without a workload selector in a namespace is IST0111', () => {
    const sc = (name: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: ${name}}\nspec:\n  egress: [{hosts: ["./*"]}]\n`;
    assert.deepEqual(summary(analyze(load(sc('a'), sc('b')))), [
      'IST0111 error Sidecar default/a -@1',
      'IST0111 error Sidecar default/b -@7',
    ]);
  });
});

describe('analyze: Weft support', () => {
  it('warns about each field Weft does not implement (Telemetry included)', () => {
    const resources = load(
      se('a', 'a.example.com'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  exportTo: ["."]
  http:
  - match:
    - uri: {prefix: /}
      statPrefix: a
    route: [{destination: {host: a.example.com}}]
    mirrorPercent: 5
  - delegate: {name: b}
`,
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\nspec: {action: DENY, targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]}\n',
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  tracing: [{useRequestIdForTraceSampling: true}]\n',
    );
    assert.deepEqual(summary(analyze(resources), true), [
      'WE0200 warning VirtualService default/a spec.http[0].match[0].statPrefix@18',
      'WE0200 warning VirtualService default/a spec.http[0].mirrorPercent@20',
      'WE0200 warning VirtualService default/a spec.http[1].delegate@21',
      'WE0200 warning AuthorizationPolicy default/deny spec.targetRefs@26',
      'WE0200 warning Telemetry default/t spec.targetRefs@32',
      'WE0200 warning Telemetry default/t spec.tracing[0].useRequestIdForTraceSampling@33',
    ]);
    assert.equal(analyze(resources)[0].message, 'not supported by Weft, ignored');
  });
});
