import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import type { HttpStream } from '../http/stream.ts';
import { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import { IstioMetrics } from './istio-metrics.ts';
import { peerFromNodeMetadata } from './peer-headers.ts';
import { peerFromWorkloadMetadata } from './peer-metadata.ts';
import type { PeerMetadata } from './peer-metadata.ts';
import { compileIstioStats, planMetrics } from './stats-config.ts';
import { IstioStatsFilter } from './stats-filter.ts';
import type { TrafficDirection } from './stats-filter.ts';
import { HTTP_LABELS } from './labels.ts';

const NODE: NodeInfo = {
  id: 'n',
  cluster: 'c',
  locality: undefined,
  metadata: {
    WORKLOAD_NAME: 'productpage-v1',
    NAMESPACE: 'bookinfo',
    CLUSTER_ID: 'east',
    LABELS: { app: 'productpage', version: 'v1' },
    REGION: 'eu',
  },
};

const CLUSTERS: Record<string, Partial<ClusterConfig>> = {
  'outbound|9080||reviews.bookinfo.svc.cluster.local': {
    name: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
  },
  withmeta: {
    name: 'withmeta',
    istioServices: [{ host: 'ratings.bookinfo.svc.cluster.local', name: 'ratings', namespace: 'bookinfo' }],
  },
  'inbound|9080||': { name: 'inbound|9080||' },
};

const clusters = {
  get: (name: string) => (CLUSTERS[name] === undefined ? undefined : { config: CLUSTERS[name] }),
} as unknown as ClusterManager;

interface FakeStream {
  downstreamPeer?: PeerMetadata;
  upstreamPeer?: PeerMetadata;
  downstreamSecurity?: { peerPrincipal?: string; localPrincipal?: string; peerSubject?: string };
  clusterName?: string;
  authority?: string;
  responseStatus?: number;
  grpcStatus?: string;
  isGrpc?: boolean;
  flags?: string;
  bytesReceived?: number;
  bytesSent?: number;
  method?: string;
  headers?: Record<string, string>;
}

function stream(f: FakeStream): HttpStream {
  return {
    clusterName: '',
    upstreamHost: null,
    upstreamHeaders: null,
    authority: '',
    responseStatus: 200,
    isGrpc: false,
    flags: '',
    bytesReceived: 0,
    bytesSent: 0,
    startMs: 0,
    endMs: 12,
    method: 'GET',
    headers: {},
    ...f,
  } as unknown as HttpStream;
}

function setup(config: unknown = {}, direction: TrafficDirection = 'OUTBOUND') {
  const metrics = new IstioMetrics();
  const filter = new IstioStatsFilter('istio.stats', compileIstioStats(config as never, 'cfg'), {
    metrics,
    clusters,
    node: NODE,
    trafficDirection: direction,
  });
  const render = (): string => metrics.renderPrometheus({});
  /** The labels of the only series of a family. */
  const labelsOf = (family: string): Record<string, string>[] =>
    render()
      .split('\n')
      .filter((l) => l.startsWith(family + '{'))
      .map((l) => {
        const out: Record<string, string> = {};
        for (const m of l
          .slice(l.indexOf('{') + 1, l.lastIndexOf('}'))
          .matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
          out[m[1]] = m[2];
        return out;
      });
  return { filter, metrics, render, labelsOf };
}

const REVIEWS = peerFromWorkloadMetadata('reviews-v2;bookinfo;reviews;v2;west')!;

describe('istio.stats HTTP filter: labels', () => {
  it('source reporter: self as source, the upstream peer as destination, service from the cluster name', () => {
    const { filter, labelsOf } = setup({}, 'OUTBOUND');
    filter.onComplete(
      stream({
        upstreamPeer: REVIEWS,
        clusterName: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
        flags: 'UT',
        responseStatus: 504,
      }),
    );
    const [labels] = labelsOf('istio_requests_total');
    assert.deepEqual(Object.keys(labels), HTTP_LABELS);
    assert.deepEqual(labels, {
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'bookinfo',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'east',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'unknown',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      destination_cluster: 'west',
      request_protocol: 'http',
      response_code: '504',
      grpc_response_status: '',
      response_flags: 'UT',
      connection_security_policy: 'unknown',
    });
  });

  it('destination reporter: the downstream peer and mTLS identity as source, self as destination', () => {
    const { filter, labelsOf } = setup({}, 'INBOUND');
    const caller = peerFromNodeMetadata({
      WORKLOAD_NAME: 'gw',
      NAMESPACE: 'istio-system',
      LABELS: { 'app.kubernetes.io/name': 'gateway' },
    });
    filter.onComplete(
      stream({
        downstreamPeer: caller,
        downstreamSecurity: {
          peerPrincipal: 'spiffe://td/ns/istio-system/sa/gw',
          localPrincipal: 'spiffe://td/ns/bookinfo/sa/pp',
        },
        clusterName: 'withmeta',
        isGrpc: true,
        grpcStatus: '14',
      }),
    );
    const [l] = labelsOf('istio_requests_total');
    assert.equal(l.reporter, 'destination');
    assert.equal(l.source_workload, 'gw');
    assert.equal(l.source_app, 'gateway');
    assert.equal(l.source_canonical_service, 'gateway');
    assert.equal(l.source_canonical_revision, 'latest');
    assert.equal(l.source_version, 'unknown');
    assert.equal(l.source_principal, 'spiffe://td/ns/istio-system/sa/gw');
    assert.equal(l.destination_principal, 'spiffe://td/ns/bookinfo/sa/pp');
    assert.equal(l.destination_workload, 'productpage-v1');
    assert.equal(l.destination_service, 'ratings.bookinfo.svc.cluster.local');
    assert.equal(l.request_protocol, 'grpc');
    assert.equal(l.grpc_response_status, '14');
    assert.equal(l.connection_security_policy, 'mutual_tls');
  });

  it('unknown peers and plaintext: "unknown" everywhere, "none" security, the authority as service', () => {
    const { filter, labelsOf } = setup({}, 'INBOUND');
    filter.onComplete(stream({ clusterName: 'inbound|9080||', authority: 'Reviews:9080' }));
    const [l] = labelsOf('istio_requests_total');
    for (const k of [
      'source_workload',
      'source_app',
      'source_canonical_service',
      'source_canonical_revision',
      'source_principal',
      'source_cluster',
    ])
      assert.equal(l[k], 'unknown', k);
    assert.equal(l.connection_security_policy, 'none');
    assert.equal(l.destination_service, 'Reviews');
    assert.equal(l.destination_service_name, 'Reviews');
    assert.equal(l.destination_service_namespace, 'bookinfo');
  });

  it('disable_host_header_fallback leaves the service unknown', () => {
    const { filter, labelsOf } = setup({ disable_host_header_fallback: true }, 'INBOUND');
    filter.onComplete(stream({ authority: 'reviews:9080' }));
    assert.equal(labelsOf('istio_requests_total')[0].destination_service, 'unknown');
  });

  it('SERVER_GATEWAY reports as a waypoint with both peers', () => {
    const { filter, labelsOf } = setup({ reporter: 'SERVER_GATEWAY' }, 'INBOUND');
    filter.onComplete(
      stream({ upstreamPeer: REVIEWS, downstreamPeer: peerFromNodeMetadata({ WORKLOAD_NAME: 'a' }) }),
    );
    const [l] = labelsOf('istio_requests_total');
    assert.equal(l.reporter, 'waypoint');
    assert.equal(l.source_workload, 'a');
    assert.equal(l.destination_workload, 'reviews-v2');
  });
});

describe('istio.stats HTTP filter: recording', () => {
  it('one series per combination, counts and histograms per request', () => {
    const { filter, render } = setup({}, 'OUTBOUND');
    for (let i = 0; i < 3; i++)
      filter.onComplete(stream({ upstreamPeer: REVIEWS, bytesReceived: 10, bytesSent: 2000 }));
    filter.onComplete(stream({ upstreamPeer: REVIEWS, responseStatus: 503 }));
    const text = render();
    assert.match(text, /^istio_requests_total\{.*response_code="200".*\} 3$/m);
    assert.match(text, /^istio_requests_total\{.*response_code="503".*\} 1$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{.*response_code="200".*,le="10"\} 0$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{.*response_code="200".*,le="25"\} 3$/m);
    assert.match(text, /^istio_response_bytes_sum\{.*response_code="200".*\} 6000$/m);
    assert.match(text, /^istio_request_bytes_bucket\{.*response_code="200".*,le="10"\} 3$/m);
    assert.doesNotMatch(text, /istio_request_messages_total/, 'gRPC only');
    assert.equal(text.match(/^# TYPE istio_requests_total counter$/gm)?.length, 1);
    assert.equal(text.match(/^# TYPE istio_request_duration_milliseconds histogram$/gm)?.length, 1);
    assert.match(text, /^istio_build\{component="proxy",tag="[^"]+"\} 1$/m);
  });

  it('counts gRPC messages across chunks', () => {
    const { filter, render } = setup({}, 'OUTBOUND');
    const s = stream({ isGrpc: true, grpcStatus: '0' });
    const msg = Buffer.from([0, 0, 0, 0, 2, 9, 9]);
    filter.onRequestData(s, msg.subarray(0, 3));
    filter.onRequestData(s, msg.subarray(3));
    filter.onResponseData(s, Buffer.concat([msg, msg, msg]));
    filter.onComplete(s);
    const text = render();
    assert.match(text, /^istio_request_messages_total\{.*\} 1$/m);
    assert.match(text, /^istio_response_messages_total\{.*\} 3$/m);
  });
});

describe('istio.stats configuration', () => {
  it('drops a metric, removes a tag, overrides and adds tags', () => {
    const { filter, labelsOf, render } = setup(
      {
        metrics: [
          { name: 'request_bytes', drop: true },
          {
            name: 'requests_total',
            dimensions: { request_method: 'request.method', destination_app: "'fixed'" },
          },
          {
            dimensions: {
              region: "node.metadata['REGION']",
              caller: "request.headers['X-Caller']",
              user: "request.headers['x-user'] | upstream_peer.labels['team'] | 'anonymous'",
              zone: 'node.metadata[\'ZONE\'] | "a|b"',
            },
            tags_to_remove: ['source_principal'],
          },
        ],
      },
      'OUTBOUND',
    );
    filter.onComplete(stream({ method: 'POST', headers: { 'x-caller': 'cron' }, upstreamPeer: REVIEWS }));
    const text = render();
    assert.doesNotMatch(text, /istio_request_bytes/);
    const [l] = labelsOf('istio_requests_total');
    const expected = [
      ...HTTP_LABELS.filter((x) => x !== 'source_principal'),
      'request_method',
      'region',
      'caller',
      'user',
      'zone',
    ];
    assert.deepEqual(Object.keys(l), expected);
    assert.equal(l.destination_app, 'fixed');
    assert.equal(l.request_method, 'POST');
    assert.equal(l.region, 'eu');
    assert.equal(l.caller, 'cron');
    assert.equal(l.user, 'anonymous', 'neither the header nor the label is there');
    assert.equal(l.zone, 'a|b');
    const [d] = labelsOf('istio_response_bytes_sum');
    assert.equal(d.request_method, undefined, 'only on requests_total');
    assert.equal(d.destination_app, 'reviews');
    assert.equal(d.region, 'eu');
  });

  it('plans TCP metrics without the HTTP-only labels', () => {
    const plan = planMetrics(compileIstioStats({}, 'p'), 'tcp');
    assert.deepEqual(
      plan.metrics.map((m) => m.metric),
      [
        'tcp_sent_bytes_total',
        'tcp_received_bytes_total',
        'tcp_connections_opened_total',
        'tcp_connections_closed_total',
      ],
    );
    assert.ok(!plan.metrics[0].labelNames.includes('response_code'));
    assert.ok(!plan.metrics[0].labelNames.includes('grpc_response_status'));
  });

  it('refuses what Weft does not implement, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ definitions: [] }, /^cfg\.definitions: not supported by Weft/],
      [{ reporter: 'CLIENT' }, /^cfg\.reporter: unknown value "CLIENT"/],
      [{ metrics: [{ name: 'requests' }] }, /^cfg\.metrics\[0\]\.name: unknown metric "requests"/],
      [
        { metrics: [{ dimensions: { x: 'request.size' } }] },
        /^cfg\.metrics\[0\]\.dimensions\.x: expression "request\.size" is not supported by Weft/,
      ],
      [{ metrics: [{ dimensions: { 'bad-name': "'v'" } }] }, /not a valid Prometheus label name/],
      [{ metrics: [{ dimensions: { x: 3 } }] }, /expected a string/],
      [{ metrics: [{ value: 'x' }] }, /^cfg\.metrics\[0\]\.value: not supported by Weft/],
      [{ tcp_reporting_duration: '0s' }, /must be greater than 0/],
    ];
    for (const [config, re] of bad) {
      assert.throws(
        () => compileIstioStats(config as never, 'cfg'),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
        JSON.stringify(config),
      );
    }
    assert.equal(compileIstioStats({ tcp_reporting_duration: '2.5s' }, 'cfg').tcpReportingDurationMs, 2500);
  });
});

describe('/stats/prometheus', () => {
  it('renders the istio families after the Envoy stats of the same store', () => {
    const store = new StatsStore();
    store.counter('cluster.a.upstream_rq_total').inc();
    const metrics = new IstioMetrics();
    store.addPrometheusSource(metrics);
    const text = store.renderPrometheus();
    assert.match(
      text,
      /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="a"\} 1\n# TYPE istio_build gauge\n/m,
    );
    assert.doesNotMatch(store.renderPrometheus({ filter: /^envoy_/ }), /istio_build/);
  });
});
