import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { qualifyGatewayName, qualifyHost, qualifySpecNames } from './hosts.ts';

describe('qualifyHost', () => {
  it('qualifies a short name with the namespace and the cluster domain', () => {
    assert.equal(qualifyHost('reviews', 'ns'), 'reviews.ns.svc.cluster.local');
    assert.equal(qualifyHost('reviews', 'ns', 'example.org'), 'reviews.ns.svc.example.org');
  });
  it('leaves *, names with a dot and IP addresses alone', () => {
    for (const h of [
      '*',
      '*.example.com',
      'reviews.other',
      'reviews.ns.svc.cluster.local',
      '10.0.0.1',
      '::1',
      '2001:db8::2',
    ])
      assert.equal(qualifyHost(h, 'ns'), h);
  });
});

describe('qualifyGatewayName', () => {
  it('follows Istio: name → ns/name, ./name → ns/name, ns/name and mesh stay', () => {
    assert.equal(qualifyGatewayName('my-gateway', 'ns'), 'ns/my-gateway');
    assert.equal(qualifyGatewayName('./my-gateway', 'ns'), 'ns/my-gateway');
    assert.equal(qualifyGatewayName('istio-system/ingress', 'ns'), 'istio-system/ingress');
    assert.equal(qualifyGatewayName('mesh', 'ns'), 'mesh');
  });
  it('reads the legacy FQDN form name.namespace[.svc.cluster.local] as namespace/name', () => {
    assert.equal(qualifyGatewayName('ingress.istio-system.svc.cluster.local', 'ns'), 'istio-system/ingress');
    assert.equal(qualifyGatewayName('ingress.istio-system', 'ns'), 'istio-system/ingress');
  });
});

describe('qualifySpecNames', () => {
  it('qualifies every host and gateway reference of a VirtualService, without touching the input', () => {
    const spec = {
      hosts: ['reviews', 'bookinfo.com', '*'],
      gateways: ['gw', 'mesh', 'other/gw2'],
      http: [
        {
          match: [{ gateways: ['gw'] }, { uri: { prefix: '/' } }],
          route: [
            { destination: { host: 'reviews', subset: 'v1' } },
            { destination: { host: 'ratings.prod' } },
          ],
          mirror: { host: 'mirror' },
          mirrors: [{ destination: { host: 'm2' } }],
        },
      ],
      tcp: [{ match: [{ gateways: ['tgw'] }], route: [{ destination: { host: 'mysql' } }] }],
      tls: [{ match: [{ sniHosts: ['a.com'] }], route: [{ destination: { host: 'tlsbackend' } }] }],
    };
    const before = structuredClone(spec);
    const out = qualifySpecNames('VirtualService', spec, 'ns');
    assert.deepEqual(spec, before);
    assert.deepEqual(out, {
      hosts: ['reviews.ns.svc.cluster.local', 'bookinfo.com', '*'],
      gateways: ['ns/gw', 'mesh', 'other/gw2'],
      http: [
        {
          match: [{ gateways: ['ns/gw'] }, { uri: { prefix: '/' } }],
          route: [
            { destination: { host: 'reviews.ns.svc.cluster.local', subset: 'v1' } },
            { destination: { host: 'ratings.prod' } },
          ],
          mirror: { host: 'mirror.ns.svc.cluster.local' },
          mirrors: [{ destination: { host: 'm2.ns.svc.cluster.local' } }],
        },
      ],
      tcp: [
        {
          match: [{ gateways: ['ns/tgw'] }],
          route: [{ destination: { host: 'mysql.ns.svc.cluster.local' } }],
        },
      ],
      tls: [
        {
          match: [{ sniHosts: ['a.com'] }],
          route: [{ destination: { host: 'tlsbackend.ns.svc.cluster.local' } }],
        },
      ],
    });
  });
  it('qualifies DestinationRule.host only', () => {
    assert.deepEqual(
      qualifySpecNames('DestinationRule', { host: 'reviews', subsets: [{ name: 'v1' }] }, 'x'),
      {
        host: 'reviews.x.svc.cluster.local',
        subsets: [{ name: 'v1' }],
      },
    );
  });
  it('leaves other kinds as they are (ServiceEntry hosts are not resolved in Istio either)', () => {
    const se = { hosts: ['short'] };
    assert.equal(qualifySpecNames('ServiceEntry', se, 'ns'), se);
  });
});
