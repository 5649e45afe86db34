import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFieldPath } from './diagnostic.ts';
import { closestName, validateSpec } from './schema.ts';

/** Issues as "field: message" lines, for readable assertions. */
function problems(schemaKey: string, spec: unknown): string[] {
  return validateSpec(schemaKey, spec).map((i) => `${formatFieldPath(i.path)}: ${i.message}`);
}

describe('validateSpec: plain schema errors', () => {
  it('accepts a valid spec', () => {
    assert.deepEqual(
      problems('VirtualService', {
        hosts: ['reviews'],
        http: [
          {
            match: [{ uri: { prefix: '/v1' }, headers: { 'end-user': { exact: 'jason' } } }],
            route: [
              { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
              { destination: { host: 'reviews', subset: 'v2' }, weight: 20 },
            ],
            timeout: '1.5s',
            retries: { attempts: 3, perTryTimeout: '100ms' },
          },
        ],
      }),
      [],
    );
  });

  it('names an unknown field, and the field it was probably meant to be', () => {
    assert.deepEqual(
      problems('VirtualService', { http: [{ route: [{ destination: { host: 'a' }, weigth: 3 }] }] }),
      ['http[0].route[0].weigth: unknown field (did you mean "weight"?)'],
    );
    assert.deepEqual(problems('VirtualService', { hosts: ['a'], colour: 'red' }), ['colour: unknown field']);
  });

  it('reports a wrong type with the value found', () => {
    assert.deepEqual(
      problems('VirtualService', { http: [{ route: [{ destination: { host: 'a' }, weight: '50' }] }] }),
      ['http[0].route[0].weight: must be integer, got string "50"'],
    );
    assert.deepEqual(problems('VirtualService', { hosts: 'reviews' }), [
      'hosts: must be array, got string "reviews"',
    ]);
  });

  it('reports a missing required field and a bad enum value', () => {
    assert.deepEqual(problems('VirtualService', { http: [{ route: [{ weight: 100 }] }] }), [
      'http[0].route[0].destination: required field is missing',
    ]);
    const [issue] = problems('DestinationRule', {
      host: 'a',
      trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBINN' } },
    });
    assert.match(
      issue,
      /^trafficPolicy\.loadBalancer\.simple: must be one of .*ROUND_ROBIN.*; got string "ROUND_ROBINN"$/,
    );
  });

  it('reports two members of a "one of" group once, naming them', () => {
    assert.deepEqual(
      problems('VirtualService', { http: [{ match: [{ uri: { exact: '/a', prefix: '/b' } }] }] }),
      ['http[0].match[0].uri: only one of exact, prefix, regex may be set (found exact, prefix)'],
    );
  });

  it('checks int32 ranges and schema limits', () => {
    assert.deepEqual(
      problems('VirtualService', { http: [{ route: [{ destination: { host: 'a' }, weight: 2 ** 31 }] }] }),
      ['http[0].route[0].weight: must be a 32-bit integer'],
    );
    assert.deepEqual(problems('VirtualService', { http: [{ directResponse: { status: -1 } }] }), [
      'http[0].directResponse.status: must be >= 0',
    ]);
  });
});

describe('validateSpec: the CRDs CEL rules', () => {
  it('durations: Go syntax, at least 1ms', () => {
    assert.deepEqual(problems('VirtualService', { http: [{ timeout: '1m30s' }, { timeout: '250ms' }] }), []);
    assert.deepEqual(problems('VirtualService', { http: [{ timeout: '5x' }, { timeout: '0.5ms' }] }), [
      'http[0].timeout: invalid duration "5x" (expected e.g. "1.5s", "100ms", "1m")',
      'http[1].timeout: must be at least 1ms, got "0.5ms"',
    ]);
  });

  it('ServiceEntry: wildcard host, duplicate ports, endpoints vs selector, resolution rules', () => {
    assert.deepEqual(
      problems('ServiceEntry', {
        hosts: ['*'],
        ports: [
          { number: 80, name: 'http' },
          { number: 80, name: 'http2' },
          { number: 70000, name: 'big' },
        ],
        endpoints: [{ address: '10.0.0.1' }],
        workloadSelector: { labels: { app: 'x' } },
      }).sort(),
      [
        ': only one of workloadSelector, endpoints may be set (found workloadSelector, endpoints)',
        'endpoints: resolution NONE (the default) takes no endpoints',
        'hosts[0]: must not be "*"',
        'ports[1]: duplicate number 80 (also in item 0)',
        'ports[2].number: must be a port number 1-65535',
      ].sort(),
    );
    assert.deepEqual(
      problems('ServiceEntry', {
        hosts: ['a.example.com'],
        addresses: ['10.0.0.0/24'],
        resolution: 'DNS_ROUND_ROBIN',
        endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }],
      }).sort(),
      [
        'addresses: CIDR addresses are allowed only with resolution NONE or STATIC',
        'endpoints: resolution DNS_ROUND_ROBIN takes at most one endpoint',
      ],
    );
  });

  it('WorkloadEntry: address or network, unix sockets, port names', () => {
    assert.deepEqual(problems('WorkloadEntry', { labels: { app: 'a' } }), [
      ': one of address, network is required',
    ]);
    assert.deepEqual(
      problems('WorkloadEntry', { address: 'unix://relative', ports: { http: 8080 } }).sort(),
      [
        'address: a unix:// address must be an absolute path or an abstract socket (@name)',
        'ports: an endpoint with a unix:// address takes no ports',
      ],
    );
    assert.deepEqual(problems('WorkloadEntry', { address: 'unix:///var/run/dir/' }), [
      'address: a unix:// address must not be a directory',
    ]);
    assert.deepEqual(
      problems('WorkloadEntry', { address: '10.0.0.1', ports: { '-bad': 80, http: 0 } }).sort(),
      [
        'ports.http: must be a port number 1-65535',
        'ports["-bad"]: invalid port name (letters, digits and "-", not starting or ending with "-", under 63 characters)',
      ],
    );
  });

  it('selectors: no wildcards, no empty keys', () => {
    assert.deepEqual(
      problems('PeerAuthentication', {
        selector: { matchLabels: { 'app*': 'x', '': 'y', ok: 'v*' } },
      }).sort(),
      [
        'selector.matchLabels.ok: must not contain "*"',
        'selector.matchLabels: keys must not be empty',
        'selector.matchLabels["app*"]: key must not contain "*"',
      ],
    );
  });

  it('PeerAuthentication: portLevelMtls keys are ports and need a selector', () => {
    assert.deepEqual(
      problems('PeerAuthentication', { portLevelMtls: { '8080': { mode: 'DISABLE' }, http: {} } }).sort(),
      [
        'portLevelMtls.http: key must be a port number 1-65535',
        'portLevelMtls: portLevelMtls needs a selector with matchLabels',
      ],
    );
  });

  it('AuthorizationPolicy: serviceAccounts exclude principals; selector excludes targetRefs; no cross-namespace refs', () => {
    assert.deepEqual(
      problems('AuthorizationPolicy', {
        selector: { matchLabels: { app: 'a' } },
        targetRefs: [{ kind: 'Service', name: 's', namespace: 'other' }],
        rules: [{ from: [{ source: { serviceAccounts: ['ns/sa'], principals: ['x'] } }] }],
      }).sort(),
      [
        ': only one of selector, targetRef, targetRefs may be set (found selector, targetRefs)',
        'rules[0].from[0].source: serviceAccounts or notServiceAccounts cannot be set together with principals',
        'targetRefs[0].namespace: must be empty',
      ],
    );
  });

  it('RequestAuthentication: jwksUri is an http(s) URL; one of jwks and jwksUri', () => {
    assert.deepEqual(
      problems('RequestAuthentication', {
        jwtRules: [{ issuer: 'i', jwksUri: 'ftp://x', jwks: '{}' }],
      }).sort(),
      [
        'jwtRules[0].jwksUri: must be an http:// or https:// URL',
        'jwtRules[0]: only one of jwksUri, jwks_uri, jwks may be set (found jwksUri, jwks)',
      ],
    );
  });

  it('Gateway TLS: one way of naming credentials', () => {
    assert.deepEqual(
      problems('Gateway', {
        servers: [
          {
            port: { number: 443, name: 'https', protocol: 'HTTPS' },
            hosts: ['*'],
            tls: { mode: 'SIMPLE', credentialName: 'a', credentialNames: ['b'] },
          },
        ],
      }),
      [
        'servers[0].tls: only one of credentialName, credentialNames may be set (found credentialName, credentialNames)',
      ],
    );
  });

  it('WorkloadGroup probe scheme; Telemetry tag overrides', () => {
    assert.deepEqual(
      problems('WorkloadGroup', { template: {}, probe: { httpGet: { port: 80, scheme: 'FTP' } } }),
      ['probe.httpGet.scheme: must be one of HTTP, HTTPS'],
    );
    assert.deepEqual(
      problems('Telemetry', {
        metrics: [
          {
            overrides: [
              { tagOverrides: { a: { operation: 'UPSERT' }, b: { operation: 'REMOVE', value: 'x' } } },
            ],
          },
        ],
      }).sort(),
      [
        'metrics[0].overrides[0].tagOverrides.a.value: operation UPSERT needs a value',
        'metrics[0].overrides[0].tagOverrides.b.value: operation REMOVE takes no value',
      ],
    );
  });
});

describe('closestName', () => {
  it('suggests near misses only', () => {
    assert.equal(closestName('weigth', ['weight', 'headers', 'destination']), 'weight');
    assert.equal(closestName('Hosts', ['hosts', 'http']), 'hosts');
    assert.equal(closestName('colour', ['hosts', 'http', 'tcp']), undefined);
  });
});
