import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { compileRbac } from './rbac-config.ts';
import { compileCidrRange } from './rbac-cidr.ts';
import { compilePermission, compilePrincipal } from './rbac-matchers.ts';
import { rbacRequest, tlsPeer as tls } from '../../../../test/support/rbac-proxy.ts';

function configError(fn: () => unknown, path: string, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.path, path);
    assert.match(e.detail, detail);
    return true;
  });
}

const principal = (json: Json) => compilePrincipal(json, 'p');
const permission = (json: Json) => compilePermission(json, 'p');

describe('RBAC config', () => {
  it('refuses unknown and unsupported oneofs, naming the field', () => {
    const policy = (perm: JsonObject, princ: JsonObject = { any: true }) =>
      compileRbac({ rules: { policies: { a: { permissions: [perm], principals: [princ] } } } }, 'f');
    configError(
      () => policy({ destination_host: 'x' }),
      'f.rules.policies.a.permissions[0].destination_host',
      /unknown field/,
    );
    configError(
      () => policy({ uri_template: { name: 'x' } }),
      'f.rules.policies.a.permissions[0].uri_template',
      /not supported by Weft/,
    );
    configError(
      () => policy({ any: true }, { filter_state: { key: 'k' } }),
      'f.rules.policies.a.principals[0].filter_state',
      /not supported by Weft/,
    );
    configError(
      () => policy({ any: true }, { nobody: true }),
      'f.rules.policies.a.principals[0].nobody',
      /unknown field/,
    );
    configError(() => policy({}), 'f.rules.policies.a.permissions[0]', /one of .* is required/);
    configError(
      () => policy({ any: true, destination_port: 80 }),
      'f.rules.policies.a.permissions[0].destination_port',
      /only one/,
    );
    configError(
      () => policy({ and_rules: { rules: [{ not_rule: { header: { name: 'x', bogus: 1 } } }] } }),
      'f.rules.policies.a.permissions[0].and_rules.rules[0].not_rule.header.bogus',
      /unknown field/,
    );
  });

  it('refuses bad CIDR ranges and bad values', () => {
    configError(
      () => principal({ direct_remote_ip: { address_prefix: '10.0.0.300', prefix_len: 8 } }),
      'p.direct_remote_ip.address_prefix',
      /not an IPv4 or IPv6 address/,
    );
    configError(
      () => principal({ remote_ip: { address_prefix: '10.0.0.0', prefix_len: 33 } }),
      'p.remote_ip.prefix_len',
      /0 to 32/,
    );
    configError(() => permission({ destination_port: 70000 }), 'p.destination_port', /0 to 65535/);
    configError(() => permission({ any: false }), 'p.any', /must be true/);
    configError(
      () => compileRbac({ rules: { action: 'MAYBE' } }, 'f'),
      'f.rules.action',
      /unknown value "MAYBE"/,
    );
    configError(
      () =>
        compileRbac({ rules: { policies: { a: { permissions: [{ any: true }], principals: [] } } } }, 'f'),
      'f.rules.policies.a.principals',
      /at least one/,
    );
    configError(
      () => compileRbac({ track_per_rule_stats: true }, 'f'),
      'f.track_per_rule_stats',
      /not supported/,
    );
    configError(
      () => principal({ metadata: { filter: 'istio_authn', path: [{ key: 'a' }], value: { or_match: {} } } }),
      'p.metadata.value.or_match',
      /not supported by Weft/,
    );
  });
});

describe('RBAC matchers', () => {
  it('match CIDR ranges of both families, and IPv4-mapped peers as IPv4', () => {
    const v4 = compileCidrRange({ address_prefix: '10.1.0.0', prefix_len: 16 }, 'c');
    assert.equal(v4.matches('10.1.255.3'), true);
    assert.equal(v4.matches('::ffff:10.1.0.9'), true);
    assert.equal(v4.matches('10.2.0.1'), false);
    assert.equal(v4.matches('fd00::1'), false);
    assert.equal(v4.matches(''), false);
    const all = compileCidrRange({ address_prefix: '0.0.0.0', prefix_len: 0 }, 'c');
    assert.equal(all.matches('255.1.2.3'), true);
    const v6 = compileCidrRange({ address_prefix: 'fd00:1::', prefix_len: 33 }, 'c');
    assert.equal(v6.matches('fd00:1:7fff::1'), true);
    assert.equal(v6.matches('fd00:1:8000::1'), false);
    assert.equal(v6.matches('10.0.0.1'), false);
    const host = compileCidrRange({ address_prefix: '::1', prefix_len: 128 }, 'c');
    assert.equal(host.matches('::1'), true);
    assert.equal(host.matches('::2'), false);
  });

  it('authenticated needs TLS; matches URI SANs, then DNS SANs, then the subject', () => {
    const spiffe = principal({ authenticated: { principal_name: { exact: 'spiffe://td/ns/a/sa/b' } } });
    const anyTls = principal({ authenticated: {} });
    const notAnyPrincipal = principal({
      not_id: { authenticated: { principal_name: { safe_regex: { regex: '.+' } } } },
    });
    const plain = rbacRequest();
    assert.equal(spiffe(plain), false);
    assert.equal(anyTls(plain), false);
    assert.equal(notAnyPrincipal(plain), true);
    const peer = rbacRequest({
      downstreamSecurity: tls({ peerUriSans: ['spiffe://x', 'spiffe://td/ns/a/sa/b'] }),
    });
    assert.equal(spiffe(peer), true);
    assert.equal(anyTls(peer), true);
    assert.equal(notAnyPrincipal(peer), false);
    const dns = principal({ authenticated: { principal_name: { suffix: '.example.com' } } });
    assert.equal(dns(rbacRequest({ downstreamSecurity: tls({ peerDnsSans: ['a.example.com'] }) })), true);
    const subject = principal({ authenticated: { principal_name: { exact: 'CN=client' } } });
    assert.equal(subject(rbacRequest({ downstreamSecurity: tls({ peerSubject: 'CN=client' }) })), true);
    // No peer certificate: the subject is empty, which `.+` does not match.
    assert.equal(notAnyPrincipal(rbacRequest({ downstreamSecurity: tls({}) })), true);
  });

  it('read destination address and port, SNI and the direct vs forwarded client', () => {
    const port = permission({ destination_port: 9090 });
    const range = permission({ destination_port_range: { start: 9000, end: 9090 } });
    assert.equal(port(rbacRequest({ localPort: 9090 })), true);
    assert.equal(range(rbacRequest({ localPort: 9090 })), false);
    assert.equal(range(rbacRequest({ localPort: 9000 })), true);
    const dest = permission({ destination_ip: { address_prefix: '10.0.0.5', prefix_len: 32 } });
    assert.equal(dest(rbacRequest({ localAddress: '10.0.0.5' })), true);
    const sni = permission({ requested_server_name: { suffix: '.svc' } });
    assert.equal(sni(rbacRequest()), false);
    assert.equal(sni(rbacRequest({ downstreamSecurity: tls({ sni: 'a.svc' }) })), true);
    const direct = principal({ source_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } });
    const remote = principal({ remote_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } });
    const r = rbacRequest({ remoteAddress: '10.0.0.2', sourceIp: '10.0.0.1' });
    assert.equal(direct(r), false);
    assert.equal(remote(r), true);
  });

  it('match dynamic metadata as Envoy does', () => {
    const md = (value: JsonObject, path = ['request.auth.claims', 'groups'], invert = false) =>
      principal({ metadata: { filter: 'istio_authn', path: path.map((key) => ({ key })), value, invert } });
    const req = rbacRequest({
      metadata: {
        istio_authn: {
          'request.auth.principal': 'iss/sub',
          'request.auth.claims': {
            groups: ['dev', 'ops'],
            level: 3,
            admin: false,
            gone: null,
            nested: { a: 'b' },
          },
        },
      },
    });
    assert.equal(md({ list_match: { one_of: { string_match: { exact: 'ops' } } } })(req), true);
    assert.equal(md({ list_match: { one_of: { string_match: { exact: 'qa' } } } })(req), false);
    assert.equal(md({ string_match: { exact: 'ops' } })(req), false, 'a list is not a string');
    assert.equal(md({ string_match: { exact: 'iss/sub' } }, ['request.auth.principal'])(req), true);
    assert.equal(md({ string_match: { exact: 'b' } }, ['request.auth.claims', 'nested', 'a'])(req), true);
    assert.equal(
      md({ double_match: { range: { start: 1, end: 3 } } }, ['request.auth.claims', 'level'])(req),
      false,
    );
    assert.equal(md({ double_match: { exact: 3 } }, ['request.auth.claims', 'level'])(req), true);
    assert.equal(md({ bool_match: false }, ['request.auth.claims', 'admin'])(req), true);
    assert.equal(md({ null_match: {} }, ['request.auth.claims', 'gone'])(req), true);
    assert.equal(md({ null_match: {} }, ['request.auth.claims', 'missing'])(req), false);
    assert.equal(md({ present_match: true }, ['request.auth.claims', 'missing'])(req), false);
    assert.equal(md({ present_match: true }, ['request.auth.claims', 'missing'], true)(req), true);
    assert.equal(md({ present_match: true }, ['request.auth.principal'])(req), true);
    assert.equal(md({ present_match: true }, ['request.auth.principal'])(rbacRequest()), false);
  });
});
