/**
 * AuthorizationPolicy → RBAC filters, checked by behaviour: each row of the matrix (after Istio's
 * documented examples) is loaded as YAML (validated against Istio's schemas), translated for a workload
 * foo/httpbin, and run in a real Weft proxy in front of a test upstream; requests then get 200 or 403.
 * What a plaintext proxy cannot carry yet (peer certificates, JWT metadata) is checked on the compiled
 * matchers with a request object holding those facts, plus the shape of the generated config.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { AuthorizationPolicy } from '../../api/istio/security.ts';
import { combineFiles, loadText } from '../../config/load.ts';
import type { JsonObject } from '../../core/json.ts';
import { compileRbac } from '../../proxy/http/filters/rbac-config.ts';
import { engineAllows, matchingPolicy } from '../../proxy/http/filters/rbac.ts';
import type { RbacRequest } from '../../proxy/http/filters/rbac-matchers.ts';
import { freePorts, rbacRequest, startRbacProxy, tlsPeer } from '../../../test/support/rbac-proxy.ts';
import type { Probe } from '../../../test/support/rbac-proxy.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { authzFilters, authzPolicyKey } from './authz.ts';

function node(
  namespace = 'foo',
  labels: Record<string, string> = { app: 'httpbin', version: 'v1' },
): ProxyNode {
  return {
    id: `sidecar~10.0.0.5~httpbin-1.${namespace}~${namespace}.svc.cluster.local`,
    type: 'sidecar',
    name: 'httpbin-1',
    namespace,
    dnsDomain: `${namespace}.svc.cluster.local`,
    ipAddresses: ['10.0.0.5'],
    labels,
    serviceAccount: 'httpbin',
    workloadName: 'httpbin',
    locality: { region: '', zone: '', subZone: '' },
    cluster: '',
    metadata: {},
  };
}

function snapshot(yaml: string): MeshSnapshot {
  const { resources, diagnostics } = combineFiles([loadText('authz.yaml', yaml)]);
  assert.deepEqual(diagnostics, [], 'the policies load without diagnostics');
  return buildSnapshot({
    version: 1,
    authorizationPolicies: resources.filter(
      (r) => r.kind === 'AuthorizationPolicy',
    ) as IstioResource<AuthorizationPolicy>[],
    discovery: aggregate([new ConfigDiscoverySource()]),
  });
}

function ap(name: string, spec: string, opts: { namespace?: string; annotations?: string } = {}): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${opts.namespace ?? 'foo'}
${opts.annotations ? `  annotations:\n    ${opts.annotations}\n` : ''}spec:
${spec
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;
}

/** The decision of the filter chain, on the compiled engines: the first refusal wins. */
function decide(filters: readonly JsonObject[], r: RbacRequest): number {
  for (const f of filters) {
    const rules = compileRbac(f.typed_config, 'f').rules;
    if (rules !== undefined && !engineAllows(rules, matchingPolicy(rules, r))) return 403;
  }
  return 200;
}

const mtls = (principal: string): Partial<RbacRequest> => ({
  downstreamSecurity: tlsPeer({ peerUriSans: [`spiffe://${principal}`] }),
});
const jwt = (claims: Record<string, unknown>): { metadata: Record<string, Record<string, unknown>> } => ({
  metadata: {
    istio_authn: {
      'request.auth.principal': `${String(claims.iss)}/${String(claims.sub)}`,
      'request.auth.audiences': claims.aud,
      'request.auth.claims': claims,
    },
  },
});

interface Row {
  name: string;
  yaml: string | ((ports: number[]) => string);
  /** Listeners to start (their ports are passed to `yaml`); default 1. */
  listeners?: number;
  requests: [Probe, number][];
  /** Matcher-level checks for facts a plaintext proxy cannot carry. */
  matcher?: [Parameters<typeof rbacRequest>[0], number][];
  shape?: (filters: JsonObject[]) => void;
}

const json = (v: unknown): string => JSON.stringify(v);

const ROWS: Row[] = [
  {
    name: 'allow GET and HEAD from a principal to paths (Istio "allow-read")',
    yaml: ap(
      'allow-read',
      `selector:
  matchLabels: { app: httpbin }
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/sleep"]
  to:
  - operation:
      methods: ["GET", "HEAD"]
      paths: ["/info*", "/headers"]`,
    ),
    // Plaintext has no principal: nothing is allowed.
    requests: [
      [{ path: '/info' }, 403],
      [{ path: '/headers' }, 403],
    ],
    matcher: [
      [{ ...mtls('cluster.local/ns/default/sa/sleep'), path: '/info/x' }, 200],
      [{ ...mtls('cluster.local/ns/default/sa/sleep'), path: '/headers?a=1', method: 'HEAD' }, 200],
      [{ ...mtls('cluster.local/ns/default/sa/sleep'), path: '/headers/x' }, 403],
      [{ ...mtls('cluster.local/ns/default/sa/sleep'), path: '/info', method: 'POST' }, 403],
      [{ ...mtls('cluster.local/ns/default/sa/other'), path: '/info' }, 403],
    ],
    shape: (filters) => {
      assert.equal(filters.length, 1);
      const text = json(filters[0]);
      assert.match(text, /"ns\[foo\]-policy\[allow-read\]-rule\[0\]"/);
      assert.match(text, /"principal_name":\{"exact":"spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep"\}/);
      assert.match(text, /"url_path":\{"path":\{"prefix":"\/info"\}\}/);
    },
  },
  {
    name: 'deny requests from namespaces other than foo (notNamespaces)',
    yaml: ap(
      'deny-other-ns',
      `action: DENY
rules:
- from:
  - source:
      notNamespaces: ["foo"]`,
    ),
    requests: [[{}, 403]],
    matcher: [
      [mtls('cluster.local/ns/foo/sa/client'), 200],
      [mtls('cluster.local/ns/bar/sa/client'), 403],
      [{}, 403],
    ],
    shape: (filters) => assert.match(json(filters), /"not_id":\{"or_ids".*"regex":"\.\*\/ns\/foo\/\.\*"/),
  },
  {
    name: 'allow-nothing: spec {}',
    yaml: ap('allow-nothing', '{}'),
    requests: [
      [{}, 403],
      [{ method: 'POST', path: '/x' }, 403],
    ],
    matcher: [[mtls('cluster.local/ns/foo/sa/x'), 403]],
  },
  {
    name: 'deny-all: action DENY with rules [{}]',
    yaml: ap('deny-all', 'action: DENY\nrules:\n- {}'),
    requests: [
      [{}, 403],
      [{ path: '/x', from: '127.0.0.3' }, 403],
    ],
  },
  {
    name: 'allow-all: rules [{}]',
    yaml: ap('allow-all', 'rules:\n- {}'),
    requests: [
      [{}, 200],
      [{ method: 'DELETE', path: '/x' }, 200],
    ],
  },
  {
    name: 'when request.auth.claims[groups] (list and string claims) with requestPrincipals',
    yaml: ap(
      'claims',
      `rules:
- from:
  - source:
      requestPrincipals: ["https://issuer.example/*"]
  when:
  - key: request.auth.claims[groups]
    values: ["group1"]`,
    ),
    requests: [[{}, 403]],
    matcher: [
      [jwt({ iss: 'https://issuer.example', sub: 'u', groups: ['group0', 'group1'] }), 200],
      [jwt({ iss: 'https://issuer.example', sub: 'u', groups: 'group1' }), 200],
      [jwt({ iss: 'https://issuer.example', sub: 'u', groups: ['group2'] }), 403],
      [jwt({ iss: 'https://other.example', sub: 'u', groups: ['group1'] }), 403],
      [{}, 403],
    ],
    shape: (filters) => {
      const text = json(filters);
      assert.match(text, /"path":\[\{"key":"request.auth.claims"\},\{"key":"groups"\}\]/);
      assert.match(text, /"list_match":\{"one_of":\{"string_match":\{"exact":"group1"\}\}\}/);
      assert.match(
        text,
        /"key":"request.auth.principal"\}\],"value":\{"string_match":\{"prefix":"https:\/\/issuer.example\/"\}/,
      );
    },
  },
  {
    name: 'requestPrincipals "*": any authenticated request',
    yaml: ap('require-jwt', 'rules:\n- from:\n  - source:\n      requestPrincipals: ["*"]'),
    requests: [[{}, 403]],
    matcher: [
      [jwt({ iss: 'i', sub: 's' }), 200],
      [{}, 403],
    ],
  },
  {
    name: 'ipBlocks (peer address) and remoteIpBlocks (x-forwarded-for client)',
    yaml:
      ap('allow-ips', 'rules:\n- from:\n  - source:\n      ipBlocks: ["127.0.0.2", "127.0.1.0/24"]') +
      ap('allow-remote', 'rules:\n- from:\n  - source:\n      remoteIpBlocks: ["10.9.0.0/16"]'),
    requests: [
      [{ from: '127.0.0.2' }, 200],
      [{ from: '127.0.1.77' }, 200],
      [{ from: '127.0.0.1' }, 403],
      [{ from: '127.0.0.1', headers: { 'x-forwarded-for': '10.9.3.4' } }, 200],
      [{ from: '127.0.0.1', headers: { 'x-forwarded-for': '10.8.3.4' } }, 403],
    ],
  },
  {
    name: 'notPaths and notMethods',
    yaml: ap(
      'public',
      `rules:
- to:
  - operation:
      notPaths: ["/private*", "*.secret"]
      notMethods: ["DELETE"]`,
    ),
    requests: [
      [{ path: '/public' }, 200],
      [{ path: '/public?file=a.secret' }, 200],
      [{ path: '/private/x' }, 403],
      [{ path: '/a/b.secret' }, 403],
      [{ path: '/public', method: 'DELETE' }, 403],
    ],
  },
  {
    name: 'hosts: case-insensitive, with or without a port, prefix and suffix',
    yaml: ap(
      'hosts',
      'rules:\n- to:\n  - operation:\n      hosts: ["httpbin.example.com", "*.bar.com", "api.*"]',
    ),
    requests: [
      [{ host: 'httpbin.example.com' }, 200],
      [{ host: 'HTTPBIN.Example.com:8080' }, 200],
      [{ host: 'a.BAR.com:80' }, 200],
      [{ host: 'api.anything:1' }, 200],
      [{ host: 'httpbin.example.com.evil' }, 403],
      [{ host: 'httpbin.example.com:80x' }, 403],
      [{ host: 'bar.com' }, 403],
    ],
  },
  {
    name: 'ports: the destination port of the connection',
    listeners: 2,
    yaml: (ports) => ap('port', `rules:\n- to:\n  - operation:\n      ports: ["${ports[0]}"]`),
    requests: [
      [{ listener: 0 }, 200],
      [{ listener: 1 }, 403],
    ],
  },
  {
    name: 'methods, exact and wildcard',
    yaml: ap('methods', 'rules:\n- to:\n  - operation:\n      methods: ["GET", "P*"]'),
    requests: [
      [{ method: 'GET' }, 200],
      [{ method: 'PUT' }, 200],
      [{ method: 'PATCH' }, 200],
      [{ method: 'DELETE' }, 403],
    ],
  },
  {
    name: 'several policies: DENY first, then any ALLOW, mesh-wide and workload ones together',
    yaml:
      ap(
        'deny-admin',
        'action: DENY\nrules:\n- to:\n  - operation:\n      paths: ["/admin*"]\n  when:\n  - key: request.headers[x-role]\n    notValues: ["admin"]',
      ) +
      ap(
        'allow-get',
        'selector:\n  matchLabels: { app: httpbin }\nrules:\n- to:\n  - operation:\n      methods: ["GET"]',
      ) +
      ap(
        'allow-post-from-net',
        'rules:\n- from:\n  - source:\n      remoteIpBlocks: ["10.0.0.0/8"]\n  to:\n  - operation:\n      methods: ["POST"]\n      paths: ["/submit"]',
        { namespace: 'istio-system' },
      ) +
      ap(
        'deny-blocked',
        'action: DENY\nrules:\n- when:\n  - key: request.headers[x-block]\n    values: ["yes", "y*"]',
        {
          namespace: 'istio-system',
        },
      ),
    requests: [
      [{ path: '/a' }, 200],
      [{ path: '/admin' }, 403],
      [{ path: '/admin', headers: { 'x-role': 'admin' } }, 200],
      [{ path: '/admin', headers: { 'x-role': 'user' } }, 403],
      [{ method: 'POST', path: '/submit' }, 403],
      [{ method: 'POST', path: '/submit', headers: { 'x-forwarded-for': '10.1.1.1' } }, 200],
      [{ method: 'PUT', path: '/submit', headers: { 'x-forwarded-for': '10.1.1.1' } }, 403],
      [{ path: '/a', headers: { 'x-block': 'no,yes' } }, 403],
      [{ path: '/a', headers: { 'x-block': 'yeah' } }, 403],
      [{ path: '/a', headers: { 'x-block': 'no' } }, 200],
    ],
    shape: (filters) => {
      assert.equal(filters.length, 2);
      assert.match(json(filters[0]), /"action":"DENY"/);
      assert.match(json(filters[1]), /"action":"ALLOW"/);
    },
  },
  {
    name: 'dry-run policies are shadow rules only',
    yaml:
      ap('dry-deny', 'action: DENY\nrules:\n- {}', { annotations: 'istio.io/dry-run: "true"' }) +
      ap('dry-allow', 'rules:\n- to:\n  - operation:\n      paths: ["/only"]', {
        annotations: 'istio.io/dry-run: "true"',
      }),
    requests: [
      [{ path: '/x' }, 200],
      [{ path: '/only' }, 200],
    ],
    shape: (filters) => {
      assert.equal(filters.length, 2);
      assert.equal((filters[0].typed_config as JsonObject).rules, undefined);
      assert.equal((filters[0].typed_config as JsonObject).shadow_rules_stat_prefix, 'istio_dry_run_deny_');
      assert.equal((filters[1].typed_config as JsonObject).shadow_rules_stat_prefix, 'istio_dry_run_allow_');
    },
  },
  {
    name: 'AUDIT policies become a LOG filter that never denies',
    yaml: ap('audit', 'action: AUDIT\nrules:\n- to:\n  - operation:\n      paths: ["/audited"]'),
    requests: [
      [{ path: '/audited' }, 200],
      [{ path: '/other' }, 200],
    ],
    shape: (filters) => assert.match(json(filters), /"action":"LOG"/),
  },
  {
    name: 'an untranslatable condition drops an ALLOW rule but is ignored in a DENY rule',
    yaml:
      ap(
        'allow-template',
        'rules:\n- to:\n  - operation:\n      paths: ["/items/{*}"]\n- to:\n  - operation:\n      paths: ["/ok"]',
      ) +
      ap(
        'deny-template',
        'action: DENY\nrules:\n- to:\n  - operation:\n      methods: ["POST"]\n      paths: ["/items/{*}"]',
      ),
    requests: [
      [{ path: '/ok' }, 200],
      [{ path: '/items/1' }, 403],
      [{ method: 'POST', path: '/ok' }, 403],
    ],
    shape: (filters) => {
      const allow = json(filters[1]);
      assert.doesNotMatch(allow, /allow-template\]-rule\[0\]/);
      assert.match(allow, /allow-template\]-rule\[1\]/);
    },
  },
];

describe('AuthorizationPolicy → RBAC filters, run in a real proxy', { timeout: 120_000 }, () => {
  for (const row of ROWS) {
    it(row.name, async () => {
      const ports = row.listeners === undefined ? [0] : await freePorts(row.listeners);
      const yaml = typeof row.yaml === 'string' ? row.yaml : row.yaml(ports);
      const filters = authzFilters(node(), snapshot(yaml));
      assert.ok(filters.length > 0, 'some filter applies');
      row.shape?.(filters);
      for (const [req, status] of row.matcher ?? [])
        assert.equal(decide(filters, rbacRequest(req)), status, `matcher: ${JSON.stringify(req)}`);
      const p = await startRbacProxy(filters, ports);
      try {
        for (const [probe, status] of row.requests)
          assert.equal((await p.send(probe)).status, status, `request ${JSON.stringify(probe)}`);
      } finally {
        await p.stop();
      }
    });
  }
});

describe('AuthorizationPolicy applicability', () => {
  const yaml =
    ap('ns-wide', 'rules:\n- {}') +
    ap('v2-only', 'selector:\n  matchLabels: { version: v2 }\nrules:\n- {}') +
    ap('other-ns', 'rules:\n- {}', { namespace: 'bar' }) +
    ap('mesh-selected', 'selector:\n  matchLabels: { app: ratings }\naction: DENY\nrules:\n- {}', {
      namespace: 'istio-system',
    }) +
    ap('by-target', 'targetRefs:\n- kind: Service\n  group: ""\n  name: httpbin\nrules:\n- {}') +
    ap('custom', 'action: CUSTOM\nprovider:\n  name: ext\nrules:\n- {}');
  const snap = snapshot(yaml);
  const names = (n: ProxyNode): string[] =>
    authzFilters(n, snap).flatMap((f) =>
      Object.keys(((f.typed_config as JsonObject).rules as JsonObject).policies as JsonObject),
    );

  it('applies namespace policies, selectors, and root-namespace selectors across namespaces', () => {
    assert.deepEqual(names(node()), ['ns[foo]-policy[ns-wide]-rule[0]']);
    assert.deepEqual(names(node('foo', { app: 'httpbin', version: 'v2' })).sort(), [
      'ns[foo]-policy[ns-wide]-rule[0]',
      'ns[foo]-policy[v2-only]-rule[0]',
    ]);
    assert.deepEqual(names(node('bar', { app: 'ratings' })), [
      'ns[istio-system]-policy[mesh-selected]-rule[0]',
      'ns[bar]-policy[other-ns]-rule[0]',
    ]);
    assert.deepEqual(names(node('baz', { app: 'x' })), []);
  });

  it('keys plans by the applicable policies and their content', () => {
    const a = authzPolicyKey(node(), snap);
    assert.equal(a, authzPolicyKey(node('foo', { app: 'other' }), snap));
    assert.notEqual(a, authzPolicyKey(node('foo', { version: 'v2' }), snap));
    assert.equal(authzPolicyKey(node('baz'), snap), '');
    const changed = snapshot(
      yaml.replace(
        'name: ns-wide\n  namespace: foo\nspec:\n  rules:\n  - {}',
        'name: ns-wide\n  namespace: foo\nspec:\n  action: DENY\n  rules:\n  - {}',
      ),
    );
    assert.notEqual(authzPolicyKey(node(), changed), a);
  });
});
