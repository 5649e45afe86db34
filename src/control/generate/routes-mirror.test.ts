import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMirrorPolicies, mirrorHits } from '../../proxy/router/mirror-policy.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Service } from '../model/types.ts';
import { mirrorPolicies } from './routes.ts';
import type { RouteContext } from './routes.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const MULTI = 'multi.default.svc.cluster.local';

function service(hostname: string, ports: number[]): Service {
  return {
    hostname,
    namespace: 'default',
    ports: ports.map((number) => ({ number, name: `http-${number}`, protocol: 'HTTP' })),
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: [],
    origin: `test ${hostname}`,
  } as unknown as Service;
}

/** Only what mirror translation reads: the services by host and the route configuration's port. */
const ctx = {
  snap: {
    serviceByHost: new Map([
      [REVIEWS, service(REVIEWS, [9080])],
      [MULTI, service(MULTI, [80, 8080])],
    ]),
  } as unknown as MeshSnapshot,
  port: 8080,
} as unknown as RouteContext;

const ALL = { default_value: { numerator: 1_000_000, denominator: 'MILLION' } };

describe('VirtualService mirror / mirrorPercentage / mirrors → request_mirror_policies', () => {
  it('mirrors everything without mirrorPercentage, resolving the port as route destinations do', () => {
    assert.deepEqual(mirrorPolicies({ mirror: { host: REVIEWS, subset: 'v3' } }, ctx), [
      { cluster: `outbound|9080|v3|${REVIEWS}`, runtime_fraction: ALL },
    ]);
    // Several ports: the route configuration's port, unless the mirror names one.
    assert.deepEqual(
      mirrorPolicies({ mirror: { host: MULTI } }, ctx).map((p) => p.cluster),
      [`outbound|8080||${MULTI}`],
    );
    assert.deepEqual(
      mirrorPolicies({ mirror: { host: MULTI, port: { number: 80 } } }, ctx).map((p) => p.cluster),
      [`outbound|80||${MULTI}`],
    );
  });

  it('turns mirrorPercentage (a percent, fractions allowed) into parts per million', () => {
    const out = mirrorPolicies({ mirror: { host: REVIEWS }, mirrorPercentage: { value: 12.5 } }, ctx);
    assert.deepEqual(out, [
      {
        cluster: `outbound|9080||${REVIEWS}`,
        runtime_fraction: { default_value: { numerator: 125_000, denominator: 'MILLION' } },
      },
    ]);
    // The proxy accepts it and mirrors exactly 12.5% of evenly spread draws.
    const [policy] = compileMirrorPolicies({ request_mirror_policies: out }, 'route')!;
    let hits = 0;
    for (let i = 0; i < 1000; i++) if (mirrorHits(policy, i / 1000)) hits++;
    assert.equal(hits, 125);
    assert.deepEqual(
      mirrorPolicies({ mirror: { host: REVIEWS }, mirrorPercentage: { value: 0.0001 } }, ctx)[0]
        .runtime_fraction,
      { default_value: { numerator: 1, denominator: 'MILLION' } },
    );
  });

  it('gives each of mirrors its own policy, after mirror, and leaves out mirrors at 0%', () => {
    const out = mirrorPolicies(
      {
        mirror: { host: REVIEWS },
        mirrors: [
          { destination: { host: MULTI, port: { number: 80 } }, percentage: { value: 50 } },
          { destination: { host: REVIEWS, subset: 'v2' } },
          { destination: { host: MULTI }, percentage: { value: 0 } },
        ],
      },
      ctx,
    );
    assert.deepEqual(out, [
      { cluster: `outbound|9080||${REVIEWS}`, runtime_fraction: ALL },
      {
        cluster: `outbound|80||${MULTI}`,
        runtime_fraction: { default_value: { numerator: 500_000, denominator: 'MILLION' } },
      },
      { cluster: `outbound|9080|v2|${REVIEWS}`, runtime_fraction: ALL },
    ]);
    assert.deepEqual(mirrorPolicies({ mirrorPercentage: { value: 50 } }, ctx), []);
    assert.deepEqual(mirrorPolicies({ mirror: { host: REVIEWS }, mirrorPercentage: { value: 0 } }, ctx), []);
  });

  it('names a cluster for an unknown host exactly as a route destination would (no crash)', () => {
    assert.deepEqual(mirrorPolicies({ mirror: { host: 'nowhere.example' } }, ctx), [
      { cluster: 'outbound|8080||nowhere.example', runtime_fraction: ALL },
    ]);
  });
});
