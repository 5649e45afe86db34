import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ISTIO_KINDS } from '../api/istio/resource.ts';
import { supportTableTypos, unsupportedFieldPaths, unsupportedSchemaPaths } from './support.ts';

describe('support table', () => {
  it('names only fields that exist in the CRD schemas', () => {
    for (const kind of ISTIO_KINDS) assert.deepEqual(supportTableTypos(kind), [], kind);
  });

  it('leaves exactly these VirtualService fields unsupported', () => {
    assert.deepEqual(unsupportedSchemaPaths('VirtualService'), [
      'http[].delegate',
      'http[].match[].sourceNamespace',
      'http[].match[].statPrefix',
      'http[].mirror_percent',
      'http[].mirrorPercent',
      'tcp[].match[].destinationSubnets',
      'tcp[].match[].sourceSubnet',
      'tls[].match[].destinationSubnets',
    ]);
  });

  it('leaves exactly these fields of the other networking kinds unsupported', () => {
    assert.deepEqual(unsupportedSchemaPaths('ServiceEntry'), ['endpoints[].network', 'subjectAltNames']);
    assert.deepEqual(unsupportedSchemaPaths('WorkloadEntry'), ['network']);
    assert.deepEqual(unsupportedSchemaPaths('WorkloadGroup'), ['metadata', 'probe', 'template']);
    assert.deepEqual(unsupportedSchemaPaths('Sidecar'), [
      'egress[].captureMode',
      'inboundConnectionPool',
      'ingress[].captureMode',
      'ingress[].connectionPool',
      'ingress[].tls',
      'outboundTrafficPolicy',
    ]);
    const dr = unsupportedSchemaPaths('DestinationRule').filter(
      (p) => p.startsWith('trafficPolicy.') && !p.includes('[]'),
    );
    assert.deepEqual(dr, [
      'trafficPolicy.connectionPool.tcp.tcpKeepalive',
      'trafficPolicy.loadBalancer.backendUtilization',
      'trafficPolicy.loadBalancer.warmup',
      'trafficPolicy.loadBalancer.warmupDurationSecs',
      'trafficPolicy.loadBalancer.zoneAwareLbSetting',
      'trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes',
      'trafficPolicy.proxyProtocol',
      'trafficPolicy.retryBudget.budgetInterval',
      'trafficPolicy.tls.caCrl',
      'trafficPolicy.tls.credentialName',
      'trafficPolicy.tls.insecureSkipVerify',
      'trafficPolicy.tunnel',
    ]);
  });

  it('leaves exactly these fields of the security kinds unsupported', () => {
    assert.deepEqual(unsupportedSchemaPaths('PeerAuthentication'), []);
    assert.deepEqual(unsupportedSchemaPaths('AuthorizationPolicy'), [
      'provider',
      'rules[].from[].source.notServiceAccounts',
      'rules[].from[].source.notTrustDomains',
      'rules[].from[].source.serviceAccounts',
      'rules[].from[].source.trustDomains',
      'targetRef',
      'targetRefs',
    ]);
    assert.deepEqual(unsupportedSchemaPaths('RequestAuthentication'), [
      'jwtRules[].jwks_uri',
      'jwtRules[].presence',
      'jwtRules[].spaceDelimitedClaims',
      'jwtRules[].timeout',
      'targetRef',
      'targetRefs',
    ]);
  });

  it('finds unsupported fields present in a spec, inside lists too', () => {
    assert.deepEqual(
      unsupportedFieldPaths('DestinationRule', {
        host: 'a',
        subsets: [
          { name: 'v1' },
          { name: 'v2', trafficPolicy: { tunnel: { targetHost: 'x', targetPort: 1 } } },
        ],
        trafficPolicy: {
          loadBalancer: { simple: 'RANDOM', warmupDurationSecs: '10s' },
          outlierDetection: { interval: '1s', outlierDetectionHttpErrorCodes: [500] },
          portLevelSettings: [{ port: { number: 80 }, outlierDetection: { consecutive5xxErrors: 2 } }],
        },
      }),
      [
        ['subsets', 1, 'trafficPolicy', 'tunnel'],
        ['trafficPolicy', 'loadBalancer', 'warmupDurationSecs'],
        ['trafficPolicy', 'outlierDetection', 'outlierDetectionHttpErrorCodes'],
      ],
    );
    assert.deepEqual(unsupportedFieldPaths('PeerAuthentication', { mtls: { mode: 'STRICT' } }), []);
  });

  it('accepts mirror, mirrorPercentage and mirrors, and reports the deprecated integer mirror percents', () => {
    assert.deepEqual(
      unsupportedFieldPaths('VirtualService', {
        hosts: ['a'],
        http: [
          {
            route: [{ destination: { host: 'a' } }],
            mirror: { host: 'b', subset: 'v1', port: { number: 80 } },
            mirrorPercentage: { value: 12.5 },
          },
          {
            route: [{ destination: { host: 'a' } }],
            mirrors: [{ destination: { host: 'b' }, percentage: { value: 50 } }],
          },
          { route: [{ destination: { host: 'a' } }], mirror: { host: 'b' }, mirrorPercent: 10 },
        ],
      }),
      [['http', 2, 'mirrorPercent']],
    );
  });
});
