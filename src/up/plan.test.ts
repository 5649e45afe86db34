import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadText } from '../config/load.ts';
import { parseMeshFile } from './mesh-file.ts';
import { buildPlan, firstIpProblem, instanceIp } from './plan.ts';
import { backoffMs } from './supervisor.ts';

const MESH = `
mesh: {name: shop, controlPlane: {xdsPort: 0, dashboardPort: 15000}}
gateway: {ports: [8080]}
workloads:
  - name: web
    command: ["node", "web.js"]
    env: {GREETING: hi}
    ports: [{port: 8080, name: http}]
    readiness: {httpGet: /healthz}
  - name: reviews-v2
    namespace: shop
    labels: {app: reviews, version: v2}
    serviceAccount: reviewer
    locality: us-east/zone-a
    command: python3 reviews.py
    replicas: 2
    ports: [{port: 9080, name: http}, {port: 9090, name: grpc}]
  - name: loadgen
    command: ["sh", "load.sh"]
`;

function plan(
  dashboard = true,
  transparent?: { runId: string; subnetIndex: number },
): ReturnType<typeof buildPlan> {
  let next = 20_000;
  return buildPlan(parseMeshFile(MESH, 'weft.yaml', '/srv/shop'), {
    allocatePort: () => next++,
    dashboard,
    ...(transparent ? { transparent } : {}),
  });
}

describe('run plan', () => {
  it('gives each instance a loopback IP in order, private ports, outbound and admin ports', () => {
    const p = plan();
    assert.equal(p.controlPlane.xdsPort, 20_000);
    assert.equal(p.controlPlane.debugPort, 15014);
    assert.equal(p.controlPlane.dashboardPort, 15000);
    assert.deepEqual(
      p.instances.map((i) => [
        i.instance,
        i.namespace,
        i.ip,
        i.ports.map((x) => [x.service, x.private]),
        i.outbound,
        i.admin,
      ]),
      [
        ['web-0', 'default', '127.0.0.10', [[8080, 20001]], 20002, 20003],
        [
          'reviews-v2-0',
          'shop',
          '127.0.0.11',
          [
            [9080, 20004],
            [9090, 20005],
          ],
          20006,
          20007,
        ],
        [
          'reviews-v2-1',
          'shop',
          '127.0.0.12',
          [
            [9080, 20008],
            [9090, 20009],
          ],
          20010,
          20011,
        ],
        ['loadgen-0', 'default', '127.0.0.13', [], 20012, 20013],
      ],
    );
    assert.equal(p.gateway?.admin, 20014);
    assert.deepEqual(
      p.instances.map((i) => i.readiness),
      [
        { kind: 'http', host: '127.0.0.1', port: 20001, path: '/healthz' },
        { kind: 'tcp', host: '127.0.0.1', port: 20004 },
        { kind: 'tcp', host: '127.0.0.1', port: 20008 },
        { kind: 'none' },
      ],
    );
    assert.equal(p.instances[1].appLog, '/srv/shop/.weft/logs/reviews-v2-0.app.log');
    assert.equal(p.instances[1].sidecarLog, '/srv/shop/.weft/logs/reviews-v2-0.sidecar.log');
  });

  it('counts instance IPs up from --first-ip, across octets', () => {
    let next = 20_000;
    const p = buildPlan(parseMeshFile(MESH, 'weft.yaml', '/srv/shop'), {
      allocatePort: () => next++,
      dashboard: true,
      firstIp: '127.0.7.254',
    });
    assert.deepEqual(
      p.instances.map((i) => i.ip),
      ['127.0.7.254', '127.0.7.255', '127.0.8.0', '127.0.8.1'],
    );
    assert.ok(p.instances[0].sidecarArgs.join(' ').includes('--ip 127.0.7.254'));
    assert.equal(instanceIp(3), '127.0.0.13');
  });

  it('accepts only a first IP whose instances all stay in 127/8, off 127.0.0.0 and 127.0.0.1', () => {
    assert.equal(firstIpProblem('127.0.0.10', 7), undefined);
    assert.equal(firstIpProblem('127.0.0.2', 1), undefined);
    assert.equal(firstIpProblem('127.200.3.10', 300), undefined);
    assert.equal(firstIpProblem('127.0.0.1', 3)?.includes('127.0.0.1'), true);
    assert.equal(firstIpProblem('127.0.0.0', 1)?.includes('127.0.0.1'), true);
    assert.equal(firstIpProblem('10.0.0.10', 1), '10.0.0.10 is not a loopback address (127.0.0.0/8)');
    assert.equal(firstIpProblem('128.0.0.1', 1), '128.0.0.1 is not a loopback address (127.0.0.0/8)');
    assert.equal(firstIpProblem('127.0.0.300', 1), 'not an IPv4 address: "127.0.0.300"');
    assert.equal(firstIpProblem('::1', 1), 'not an IPv4 address: "::1"');
    assert.equal(
      firstIpProblem('127.255.255.250', 6),
      '6 instances from 127.255.255.250 run past the end of 127.0.0.0/8',
    );
    assert.equal(firstIpProblem('127.255.255.250', 5), undefined);
  });

  it('builds the control plane, sidecar and gateway command lines', () => {
    const p = plan();
    assert.deepEqual(p.controlPlane.args, [
      'control-plane',
      ...['--config', '/srv/shop', '--config', '/srv/shop/.weft/generated'],
      ...['--state-dir', '/srv/shop/.weft/state', '--xds-port', '20000', '--debug-port', '15014'],
      ...['--dashboard-port', '15000', '--trust-domain', 'cluster.local'],
    ]);
    assert.equal(plan(false).controlPlane.args.includes('--dashboard-port'), false);
    assert.equal(plan(false).controlPlane.dashboardPort, 0);
    assert.deepEqual(p.instances[1].sidecarArgs, [
      'proxy',
      ...['--xds-address', '127.0.0.1:20000', '--ca-token-file', '/srv/shop/.weft/tokens/reviews-v2-0.token'],
      ...['--type', 'sidecar', '--name', 'reviews-v2-0', '--namespace', 'shop', '--ip', '127.0.0.11'],
      ...['--workload-name', 'reviews-v2', '--service-account', 'reviewer'],
      ...['--labels', 'app=reviews,version=v2,weft.io/instance=reviews-v2-0'],
      ...['--locality', 'us-east/zone-a'],
      ...['--metadata', 'WEFT_OUTBOUND_PORT=20006', '--metadata', 'WEFT_OUTBOUND_BIND=127.0.0.1'],
      ...['--metadata', 'WEFT_ADMIN_ADDRESS=127.0.0.1:20007'],
      ...['--admin-port', '20007', '--prometheus-port', '0', '--health-port', '0'],
    ]);
    assert.deepEqual(p.gateway?.args, [
      'proxy',
      ...[
        '--xds-address',
        '127.0.0.1:20000',
        '--ca-token-file',
        '/srv/shop/.weft/tokens/ingressgateway.token',
      ],
      ...['--type', 'router', '--name', 'ingressgateway', '--namespace', 'istio-system', '--ip', '127.0.0.1'],
      ...['--service-account', 'ingressgateway', '--labels', 'istio=ingressgateway'],
      ...['--metadata', 'WEFT_GATEWAY_BIND=127.0.0.1', '--metadata', 'WEFT_ADMIN_ADDRESS=127.0.0.1:20014'],
      ...['--admin-port', '20014', '--prometheus-port', '0', '--health-port', '0'],
    ]);
  });

  it("sets the app's environment", () => {
    const [web, reviews, , loadgen] = plan().instances;
    assert.deepEqual(web.app.env, {
      GREETING: 'hi',
      PORT: '20001',
      HOST: '127.0.0.1',
      WEFT_PORT_8080: '20001',
      HTTP_PROXY: 'http://127.0.0.1:20002',
      http_proxy: 'http://127.0.0.1:20002',
      HTTPS_PROXY: 'http://127.0.0.1:20002',
      https_proxy: 'http://127.0.0.1:20002',
      grpc_proxy: 'http://127.0.0.1:20002',
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
      NODE_USE_ENV_PROXY: '1',
      WEFT_WORKLOAD: 'web',
      WEFT_NAMESPACE: 'default',
      WEFT_INSTANCE: 'web-0',
      WEFT_SERVICE: 'web',
    });
    assert.equal(web.app.cwd, '/srv/shop');
    assert.deepEqual(web.app.command, { argv: ['node', 'web.js'] });
    assert.equal(reviews.app.env.WEFT_PORT_9090, '20005');
    assert.equal(reviews.app.env.WEFT_SERVICE, 'reviews');
    assert.deepEqual(reviews.app.command, { shell: 'python3 reviews.py' });
    assert.equal(loadgen.app.env.PORT, undefined);
    assert.equal(loadgen.app.env.HTTP_PROXY, 'http://127.0.0.1:20012');
  });

  it('generates a ServiceEntry per service and a Sidecar per instance', () => {
    const p = plan();
    assert.equal(p.generated.length, 1);
    assert.equal(p.generated[0].file, 'weft-up.yaml');
    const text = p.generated[0].yaml;
    assert.match(text, /^# Written by weft up/);
    const docs = parseAllDocuments(text).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        'ServiceEntry/web',
        'ServiceEntry/reviews',
        'Sidecar/web-0',
        'Sidecar/reviews-v2-0',
        'Sidecar/reviews-v2-1',
      ],
    );
    assert.deepEqual(docs[1], {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        hosts: ['reviews.shop.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [
          { number: 9080, name: 'http', protocol: 'HTTP' },
          { number: 9090, name: 'grpc', protocol: 'GRPC' },
        ],
        workloadSelector: { labels: { app: 'reviews' } },
      },
    });
    assert.deepEqual(docs[4], {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 'reviews-v2-1', namespace: 'shop' },
      spec: {
        workloadSelector: { labels: { 'weft.io/instance': 'reviews-v2-1' } },
        ingress: [
          { port: { number: 9080, name: 'http', protocol: 'HTTP' }, defaultEndpoint: '127.0.0.1:20008' },
          { port: { number: 9090, name: 'grpc', protocol: 'GRPC' }, defaultEndpoint: '127.0.0.1:20009' },
        ],
      },
    });
    // The exact text, for a readable diff when the shape changes on purpose.
    assert.equal(
      text.split('---\n')[2],
      `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: web-0
  namespace: default
spec:
  workloadSelector:
    labels:
      weft.io/instance: web-0
  ingress:
    - port:
        number: 8080
        name: http
        protocol: HTTP
      defaultEndpoint: 127.0.0.1:20001
`,
    );
  });

  it('generates resources that pass the Istio schema checks', () => {
    const loaded = loadText('weft-up.yaml', plan().generated[0].yaml);
    assert.deepEqual(loaded.diagnostics, []);
    assert.equal(loaded.documents.length, 5);
    for (const d of loaded.documents) {
      assert.deepEqual(d.diagnostics, []);
      assert.ok(d.resource, d.key);
    }
  });

  it('backs off restarts from 1 s, doubling, up to 30 s', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs),
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
    );
  });

  it('in transparent mode runs each app in its namespace on its own ports, reached by service VIPs', () => {
    const p = plan(true, { runId: 'abc123', subnetIndex: 5 });
    const web = p.instances[0];
    const reviews1 = p.instances[2];
    assert.equal(web.network?.netns, 'weft-abc123-0');
    assert.equal(web.network?.hostIp, '198.18.5.1');
    assert.equal(reviews1.network?.appIp, '198.18.5.10');
    // No private ports: the app keeps its declared ones, alone in its namespace.
    assert.deepEqual(
      reviews1.ports.map((x) => [x.service, x.private]),
      [
        [9080, 9080],
        [9090, 9090],
      ],
    );
    assert.equal(web.app.env.PORT, '8080');
    assert.equal(web.app.env.HOST, '0.0.0.0');
    for (const k of ['HTTP_PROXY', 'http_proxy', 'grpc_proxy', 'NODE_USE_ENV_PROXY'])
      assert.equal(web.app.env[k], undefined, k);
    assert.deepEqual(web.readiness, { kind: 'http', host: '198.18.5.2', port: 8080, path: '/healthz' });
    const args = web.sidecarArgs.join(' ');
    assert.match(args, /--interception-mode REDIRECT/);
    assert.match(args, new RegExp(`WEFT_OUTBOUND_BIND=198\\.18\\.5\\.1 `));
    assert.match(
      args,
      new RegExp(`WEFT_OUTBOUND_PORT=${p.transparent?.networks.instances[0].outboundPort} `),
    );
    interface Doc {
      kind: string;
      metadata: { name: string };
      spec: { hosts?: string[]; addresses?: string[]; ingress?: { defaultEndpoint: string }[] };
    }
    const docs = parseAllDocuments(p.generated[0].yaml).map((d) => d.toJS() as Doc);
    const entries = docs.filter((d) => d.kind === 'ServiceEntry');
    assert.deepEqual(
      entries.map((e) => [e.spec.hosts?.[0], e.spec.addresses]),
      [
        ['web.default.svc.cluster.local', ['240.240.0.1']],
        ['reviews.shop.svc.cluster.local', ['240.240.0.2']],
      ],
    );
    const sidecar = docs.find((d) => d.kind === 'Sidecar' && d.metadata.name === 'reviews-v2-1');
    assert.deepEqual(
      sidecar?.spec.ingress?.map((i) => i.defaultEndpoint),
      ['198.18.5.10:9080', '198.18.5.10:9090'],
    );
    const hosts = p.transparent?.hosts ?? '';
    assert.match(
      hosts,
      /^240\.240\.0\.2\s+reviews\.shop\.svc\.cluster\.local reviews\.shop\.svc reviews\.shop reviews$/m,
    );
    // Explicit mode has neither.
    assert.equal(plan().transparent, undefined);
    assert.equal(plan().instances[0].network, undefined);
  });

  it("passes the gateway's locality to its proxy", () => {
    const mesh = parseMeshFile(
      'gateway: {ports: [8080], locality: region1/zone-a}\nworkloads: [{name: a, command: x}]',
      'weft.yaml',
      '/m',
    );
    let next = 30_000;
    const p = buildPlan(mesh, { allocatePort: () => next++, dashboard: false });
    assert.match(p.gateway?.args.join(' ') ?? '', / --locality region1\/zone-a /);
    let again = 30_000;
    const none = buildPlan(
      parseMeshFile('gateway: {ports: [8080]}\nworkloads: [{name: a, command: x}]', 'weft.yaml', '/m'),
      {
        allocatePort: () => again++,
        dashboard: false,
      },
    );
    assert.doesNotMatch(none.gateway?.args.join(' ') ?? '', /--locality/);
    assert.throws(
      () =>
        parseMeshFile('gateway: {locality: "a b"}\nworkloads: [{name: a, command: x}]', 'weft.yaml', '/m'),
      /gateway\.locality/,
    );
  });
});
