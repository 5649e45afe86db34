/**
 * Test support for the ADS server and its users: a small generator over a mutable set of canonical
 * resources, and an ADS client on a real grpc-js stream that queues what the server sends.
 * Not used at run time.
 */
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { WireJson } from '../../api/envoy/wire.ts';
import type { JsonObject } from '../../core/json.ts';
import { adsServiceDefinition, DELTA_PATH, SOTW_PATH } from './service.ts';
import { TYPE_URL } from './types.ts';
import type { ProxyNode, ResourceSet, XdsGenerator } from './types.ts';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export function testCluster(name: string, extra: JsonObject = {}): JsonObject {
  return {
    '@type': TYPE_URL.cluster,
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    ...extra,
  };
}

export interface TestEndpoint {
  address: string;
  port: number;
  weight?: number;
  zone?: string;
  health?: string;
}

export function testEndpoints(cluster: string, endpoints: readonly TestEndpoint[]): JsonObject {
  return {
    '@type': TYPE_URL.endpoint,
    cluster_name: cluster,
    endpoints: endpoints.map((e) => ({
      locality: { region: 'eu', zone: e.zone ?? 'eu-a' },
      lb_endpoints: [
        {
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          health_status: e.health ?? 'HEALTHY',
          load_balancing_weight: e.weight ?? 1,
        },
      ],
    })),
  };
}

export function testHttpListener(name: string, port: number, routeName: string): JsonObject {
  return {
    '@type': TYPE_URL.listener,
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

export function testTcpListener(name: string, port: number, cluster: string): JsonObject {
  return {
    '@type': TYPE_URL.listener,
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster },
          },
        ],
      },
    ],
  };
}

export function testRoute(name: string, domains: string[], cluster: string): JsonObject {
  return {
    '@type': TYPE_URL.route,
    name,
    virtual_hosts: [
      { name: `${name}-vh`, domains, routes: [{ match: { prefix: '/' }, route: { cluster } }] },
    ],
  };
}

export interface GenerateCall {
  proxy: string;
  typeUrl: string;
  names: string[] | null;
}

/**
 * A generator over plain maps the test edits: every proxy gets every listener and cluster, and the routes and
 * endpoints it names. `only` restricts a type to some proxies (by node id) to test per-proxy output.
 */
export class TestGenerator implements XdsGenerator {
  readonly resources = new Map<string, Map<string, JsonObject>>(
    Object.values(TYPE_URL).map((t) => [t, new Map()]),
  );
  readonly calls: GenerateCall[] = [];
  /** Per proxy id: resources of these names are left out for it. */
  readonly hidden = new Map<string, Set<string>>();
  fail: Error | null = null;
  /** Returns fresh copies on every call, as a generator that shares nothing between proxies would. */
  cloneOnGenerate = false;

  static sample(): TestGenerator {
    const g = new TestGenerator();
    g.set(testCluster('outbound|9080||reviews.default.svc.cluster.local'));
    g.set(testCluster('outbound|9080||ratings.default.svc.cluster.local'));
    g.set(
      testEndpoints('outbound|9080||reviews.default.svc.cluster.local', [
        { address: '10.0.0.1', port: 9080 },
        { address: '10.0.0.2', port: 9080, zone: 'eu-b', weight: 2 },
      ]),
    );
    g.set(
      testEndpoints('outbound|9080||ratings.default.svc.cluster.local', [
        { address: '10.0.1.1', port: 9080 },
      ]),
    );
    g.set(testHttpListener('0.0.0.0_9080', 9080, '9080'));
    g.set(testTcpListener('0.0.0.0_3306', 3306, 'outbound|9080||ratings.default.svc.cluster.local'));
    g.set(
      testRoute(
        '9080',
        ['reviews', 'reviews.default.svc.cluster.local'],
        'outbound|9080||reviews.default.svc.cluster.local',
      ),
    );
    return g;
  }

  /** Adds or replaces a resource (keyed by its name, or cluster_name for endpoints). */
  set(resource: JsonObject): void {
    const typeUrl = resource['@type'] as string;
    const name = (typeUrl === TYPE_URL.endpoint ? resource.cluster_name : resource.name) as string;
    this.resources.get(typeUrl)!.set(name, resource);
  }

  delete(typeUrl: string, name: string): void {
    this.resources.get(typeUrl)!.delete(name);
  }

  generate(proxy: ProxyNode, typeUrl: string, names: ReadonlySet<string> | null): ResourceSet {
    this.calls.push({ proxy: proxy.id, typeUrl, names: names ? [...names].sort() : null });
    if (this.fail) throw this.fail;
    const hidden = this.hidden.get(proxy.id);
    const out = new Map<string, JsonObject>();
    for (const [name, r] of this.resources.get(typeUrl) ?? []) {
      if (hidden?.has(name)) continue;
      if (names === null || names.has(name)) out.set(name, this.cloneOnGenerate ? structuredClone(r) : r);
    }
    return out;
  }
}

export function sidecarNode(name: string, ip = '10.0.0.9', namespace = 'default'): JsonObject {
  return {
    id: `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: `${name}.${namespace}`,
    metadata: { NAME: name, NAMESPACE: namespace, LABELS: { app: name.split('-')[0] } },
    locality: { region: 'eu', zone: 'eu-a' },
  };
}

type Message = { [key: string]: WireJson };

/**
 * An ADS client on one real gRPC stream. Responses queue up; next() takes the oldest (waiting up to a
 * deadline), none() asserts that nothing arrives for a while.
 */
export class AdsTestClient {
  readonly #client: Client;
  readonly #call: ClientDuplexStream<object, Message>;
  readonly #responses: Message[] = [];
  #waiter: (() => void) | null = null;
  readonly ended: Promise<{ code: number; details: string }>;
  #done = false;

  constructor(port: number, kind: 'sotw' | 'delta', client?: Client) {
    this.#client = client ?? new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    const def =
      adsServiceDefinition[kind === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources'];
    this.#call = this.#client.makeBidiStreamRequest(
      kind === 'sotw' ? SOTW_PATH : DELTA_PATH,
      def.requestSerialize as (m: object) => Buffer,
      def.responseDeserialize as (b: Buffer) => Message,
      new Metadata(),
    );
    this.#call.on('data', (m: Message) => {
      this.#responses.push(m);
      this.#waiter?.();
    });
    this.ended = new Promise((resolve) => {
      this.#call.on('status', (s: { code: number; details: string }) => {
        this.#done = true;
        this.#waiter?.();
        resolve({ code: s.code, details: s.details });
      });
    });
    this.#call.on('error', (_err: ServiceError) => {
      // Reported through 'status'.
    });
  }

  send(request: Message): void {
    this.#call.write(request);
  }

  /** The next response, or an error after `timeoutMs`. */
  async next(timeoutMs = 2000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    while (this.#responses.length === 0) {
      if (this.#done) throw new Error('stream ended while waiting for a response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
    return this.#responses.shift()!;
  }

  /** Resolves if nothing arrives within `ms`; rejects with what arrived otherwise. */
  async none(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.#responses.length > 0) {
      throw new Error(`unexpected response: ${JSON.stringify(this.#responses[0]).slice(0, 300)}`);
    }
  }

  get queued(): number {
    return this.#responses.length;
  }

  /** Sends an ACK of a SotW response. */
  ack(response: Message, names: string[] = []): void {
    this.send({
      version_info: response.version_info,
      response_nonce: response.nonce,
      type_url: response.type_url,
      resource_names: names,
    });
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** Resource names of a SotW or delta response, sorted. */
export function namesOf(response: Message): string[] {
  const resources = (response.resources ?? []) as Message[];
  return resources
    .map((r) => {
      const inner = (r.resource ?? r) as Message;
      const name = inner.name ?? inner.cluster_name ?? r.name;
      return typeof name === 'string' ? name : '';
    })
    .sort();
}
