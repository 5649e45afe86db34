/**
 * Workload auto-registration end to end: a real control plane (in this process, for its registration grace
 * period, which has no CLI flag) and real delta-xDS streams. A proxy connecting with node metadata becomes an
 * endpoint in another proxy's EDS; it stays while any stream of its node is open or reopens within the grace
 * period, and leaves that EDS once the grace period after its last stream has passed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, credentials } from '@grpc/grpc-js';
import type { WireJson } from '../../src/api/envoy/wire.ts';
import { createLogger, setLogLevel } from '../../src/core/logger.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { AdsTestClient, sidecarNode } from '../../src/control/xds/testing.ts';
import { TYPE_URL } from '../../src/control/xds/types.ts';

setLogLevel('error');

const HOST = '127.0.92.31';
const GRACE_MS = 3000;
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: ratings } }
`;

/** The node a ratings sidecar sends: its address and labels are what registers it. */
const RATINGS_NODE = {
  id: 'sidecar~10.0.92.7~ratings-v1-abc.default~default.svc.cluster.local',
  cluster: 'ratings.default',
  metadata: { NAME: 'ratings-v1-abc', NAMESPACE: 'default', LABELS: { app: 'ratings', version: 'v1' } },
  locality: { region: 'eu', zone: 'eu-a' },
};

type Message = { [key: string]: WireJson };

/** The endpoint addresses of the one ClusterLoadAssignment in a delta EDS response. */
function addressesOf(response: Message): string[] {
  const [resource] = response.resources as { resource: Message }[];
  const cla = resource.resource as {
    endpoints?: {
      lb_endpoints?: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[];
    }[];
  };
  return (cla.endpoints ?? [])
    .flatMap((group) => group.lb_endpoints ?? [])
    .map(
      (e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`,
    )
    .sort();
}

describe('workload auto-registration lifecycle', { timeout: 60_000 }, () => {
  let dir: string;
  let cp: ControlPlane;
  let target = '';
  const streams: AdsTestClient[] = [];

  const stream = (): AdsTestClient => {
    // Each stream on its own channel: closing a test client closes its channel.
    const s = new AdsTestClient(0, 'delta', new Client(target, credentials.createInsecure()));
    streams.push(s);
    return s;
  };

  /** A stream of the ratings sidecar: it registers with its first request. */
  async function registrant(): Promise<AdsTestClient> {
    const s = stream();
    s.send({ node: RATINGS_NODE, type_url: TYPE_URL.cluster });
    const cds = await s.next(5000);
    s.send({ type_url: TYPE_URL.cluster, response_nonce: cds.nonce });
    return s;
  }

  /** Resolves once the control plane has seen `count` more disconnects of the ratings node. */
  function disconnects(count: number): Promise<void> {
    return new Promise((resolve) => {
      let seen = 0;
      const onDisconnect = (node: { id: string }): void => {
        if (node.id !== RATINGS_NODE.id || ++seen < count) return;
        cp.ads.off('disconnect', onDisconnect);
        resolve();
      };
      cp.ads.on('disconnect', onDisconnect);
    });
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-registration-'));
    fs.writeFileSync(path.join(dir, 'ratings.yaml'), SERVICE);
    cp = new ControlPlane({
      configPaths: [dir],
      host: HOST,
      xdsPort: 0,
      debugPort: 0,
      debounceMs: 10,
      registrationGraceMs: GRACE_MS,
      logger: createLogger('test-cp'),
    });
    const { xdsPort } = await cp.start();
    target = `${HOST}:${xdsPort}`;
  });

  after(async () => {
    for (const s of streams) s.close();
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("puts a registering proxy in another's EDS, keeps it across a reconnect, and removes it after the grace", async () => {
    // The caller subscribes to ratings' endpoints before any ratings proxy exists.
    const observer = stream();
    observer.send({
      node: sidecarNode('productpage-v1', '10.0.92.9'),
      type_url: TYPE_URL.endpoint,
      resource_names_subscribe: [RATINGS],
    });
    const next = async (timeoutMs = 5000): Promise<string[]> => {
      const eds = await observer.next(timeoutMs);
      observer.send({ type_url: TYPE_URL.endpoint, response_nonce: eds.nonce });
      assert.equal(eds.type_url, TYPE_URL.endpoint);
      return addressesOf(eds);
    };
    assert.deepEqual(await next(), []);

    // The ratings sidecar connects: it is an endpoint of ratings for the caller.
    const first = await registrant();
    assert.deepEqual(await next(), ['10.0.92.7:9080']);

    // Its stream ends and it comes back well within the grace period: the caller sees no change.
    const gone = disconnects(1);
    first.close();
    await gone;
    await observer.none(300);
    const second = await registrant();
    // Two streams of the same node (an agent reconnecting before the old stream is torn down): the one that
    // ends does not start the grace period while the other is open.
    const third = await registrant();
    const secondGone = disconnects(1);
    second.close();
    await secondGone;
    // Longer than the grace period: the reconnect cancelled the first one, and the open stream holds the place.
    await observer.none(GRACE_MS + 1000);
    assert.ok(
      cp.mesh.endpoints('ratings.default.svc.cluster.local', 9080).some((e) => e.address === '10.0.92.7'),
      'still registered',
    );

    // The last stream ends: once the grace period has passed the caller's EDS has no ratings endpoint.
    const lastGone = disconnects(1);
    third.close();
    await lastGone;
    assert.deepEqual(await next(GRACE_MS + 10_000), []);
  });
});
