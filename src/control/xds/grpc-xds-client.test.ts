/**
 * The ADS server against a client nobody here wrote: gRPC's own xDS client (@grpc/grpc-js-xds) resolves
 * `xds:///echo` through it (LDS → RDS → CDS → EDS), ACKs every response, and follows an endpoint push.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { register as registerXds } from '@grpc/grpc-js-xds';
import type { JsonObject } from '../../core/json.ts';
import { createLogger, setLogLevel } from '../../core/logger.ts';
import { AdsServer } from './ads-server.ts';
import { TestGenerator } from './testing.ts';
import { TYPE_URL } from './types.ts';

setLogLevel('error');
registerXds();

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };
const METHOD = '/weft.test.Echo/Echo';

/** A gRPC server whose one method answers with its own name. */
async function echoServer(name: string): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.register(
    METHOD,
    (call: { request: Buffer }, callback: (err: null, value: Buffer) => void) =>
      callback(null, Buffer.from(name)),
    (b: Buffer) => b,
    (b: Buffer) => b,
    'unary',
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port };
}

function endpoints(port: number): JsonObject {
  return {
    '@type': TYPE_URL.endpoint,
    cluster_name: 'outbound|50051||echo.default.svc.cluster.local',
    endpoints: [
      {
        locality: { region: 'eu', zone: 'eu-a' },
        // gRPC ignores a locality without a weight.
        load_balancing_weight: 1,
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
        ],
      },
    ],
  };
}

function call(client: Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      METHOD,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from('hi'),
      { deadline: Date.now() + 5000 },
      (err: ServiceError | null, value?: Buffer) => (err ? reject(err) : resolve(value!.toString())),
    );
  });
}

describe('ADS server with the grpc-js-xds client', { timeout: 30_000 }, () => {
  const generator = new TestGenerator();
  const ads = new AdsServer({ generator, debounceMs: 10, logger: createLogger('test-xds') });
  let one: { server: Server; port: number };
  let two: { server: Server; port: number };
  let client: Client;

  before(async () => {
    one = await echoServer('one');
    two = await echoServer('two');
    generator.set({
      '@type': TYPE_URL.listener,
      name: 'echo',
      api_listener: {
        api_listener: {
          '@type': HCM,
          rds: { route_config_name: 'echo:50051', config_source: ADS },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      },
    });
    generator.set({
      '@type': TYPE_URL.route,
      name: 'echo:50051',
      virtual_hosts: [
        {
          name: 'echo',
          domains: ['echo'],
          routes: [
            { match: { prefix: '' }, route: { cluster: 'outbound|50051||echo.default.svc.cluster.local' } },
          ],
        },
      ],
    });
    generator.set({
      '@type': TYPE_URL.cluster,
      name: 'outbound|50051||echo.default.svc.cluster.local',
      type: 'EDS',
      eds_cluster_config: { eds_config: ADS },
      lb_policy: 'ROUND_ROBIN',
    });
    generator.set(endpoints(one.port));
    const port = await ads.listen(0, '127.0.0.1');
    const bootstrap = {
      xds_servers: [
        {
          server_uri: `127.0.0.1:${port}`,
          channel_creds: [{ type: 'insecure' }],
          server_features: ['xds_v3'],
        },
      ],
      node: {
        id: 'echo-client-1',
        locality: { region: 'eu', zone: 'eu-a' },
        metadata: { NAMESPACE: 'shop' },
      },
    };
    client = new Client('xds:///echo', credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
  });

  after(async () => {
    client.close();
    await ads.close();
    one.server.forceShutdown();
    two.server.forceShutdown();
    setLogLevel('info');
  });

  it('resolves a service through LDS, RDS, CDS and EDS and ACKs each', async () => {
    assert.equal(await call(client), 'one');
    const [status] = ads.status();
    assert.equal(status.node.type, 'grpc');
    assert.equal(status.node.namespace, 'shop');
    assert.deepEqual(
      status.types.map((t) => [t.typeUrl, t.subscribed.length, t.state]),
      [
        [TYPE_URL.cluster, 1, 'SYNCED'],
        [TYPE_URL.endpoint, 1, 'SYNCED'],
        [TYPE_URL.listener, 1, 'SYNCED'],
        [TYPE_URL.route, 1, 'SYNCED'],
      ],
    );
    assert.ok(status.types.every((t) => t.lastAckedVersion === t.lastSentVersion));
  });

  it('follows an endpoint push, and NACKs an invalid resource while keeping the last good one', async () => {
    generator.set(endpoints(two.port));
    ads.push({ full: false, reason: 'endpoint' });
    const deadline = Date.now() + 5000;
    let answer = await call(client);
    while (answer !== 'two' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await call(client);
    }
    assert.equal(answer, 'two');

    // A cluster with an LB policy gRPC does not implement: the client rejects it and keeps the last good one.
    generator.set({
      '@type': TYPE_URL.cluster,
      name: 'outbound|50051||echo.default.svc.cluster.local',
      type: 'EDS',
      eds_cluster_config: { eds_config: ADS },
      lb_policy: 'RANDOM',
    });
    const nacked = new Promise<string>((resolve) => ads.once('nack', (e) => resolve(e.message)));
    ads.push({ full: true, reason: 'config' });
    const nack = await nacked;
    assert.match(nack, /unsupported lb_policy: RANDOM/);
    const cds = ads.status()[0].types.find((t) => t.typeUrl === TYPE_URL.cluster)!;
    assert.equal(cds.state, 'NACK');
    assert.equal(cds.error, nack);
    assert.notEqual(cds.lastAckedVersion, cds.lastSentVersion);
    assert.equal(await call(client), 'two');
  });
});
