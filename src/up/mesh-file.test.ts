import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadMeshFile, MeshFileError, parseMeshFile, protocolFromName } from './mesh-file.ts';

const DIR = '/srv/shop';

function problems(text: string): string[] {
  try {
    parseMeshFile(text, 'weft.yaml', DIR);
  } catch (err) {
    assert.ok(err instanceof MeshFileError, String(err));
    return [...err.problems];
  }
  assert.fail('expected a MeshFileError');
}

describe('weft.yaml', () => {
  it('applies the defaults', () => {
    const mesh = parseMeshFile(
      `
workloads:
  - name: reviews-v2
    labels: {app: reviews, version: v2}
    command: ["python3", "reviews.py"]
    cwd: reviews
    env: {RATIO: 0.5, DEBUG: true}
    ports: [{port: 9080, name: http}, {port: 9090, name: grpc-api}, {port: 7000, protocol: TCP}]
  - name: web
    command: node web.js
`,
      'weft.yaml',
      DIR,
    );
    assert.equal(mesh.name, 'shop');
    assert.equal(mesh.mode, 'explicit');
    assert.equal(mesh.trustDomain, 'cluster.local');
    assert.deepEqual(mesh.controlPlane, { xdsPort: 15010, debugPort: 15014, dashboardPort: 15000 });
    assert.equal(mesh.gateway, undefined);
    const [reviews, web] = mesh.workloads;
    assert.deepEqual(reviews, {
      name: 'reviews-v2',
      namespace: 'default',
      service: 'reviews',
      serviceAccount: 'reviews',
      labels: { app: 'reviews', version: 'v2' },
      command: { argv: ['python3', 'reviews.py'] },
      cwd: '/srv/shop/reviews',
      env: { RATIO: '0.5', DEBUG: 'true' },
      replicas: 1,
      ports: [
        { port: 9080, name: 'http', protocol: 'HTTP' },
        { port: 9090, name: 'grpc-api', protocol: 'GRPC' },
        { port: 7000, name: 'tcp-7000', protocol: 'TCP' },
      ],
      readiness: {},
    });
    assert.equal(web.service, 'web');
    assert.deepEqual(web.labels, { app: 'web', version: 'v1' });
    assert.deepEqual(web.command, { shell: 'node web.js' });
    assert.equal(web.cwd, DIR);
  });

  it('takes the gateway block with its defaults', () => {
    const mesh = parseMeshFile(
      'gateway: {ports: [8080]}\nworkloads: [{name: a, command: x}]',
      'weft.yaml',
      DIR,
    );
    assert.deepEqual(mesh.gateway, {
      name: 'ingressgateway',
      namespace: 'istio-system',
      labels: { istio: 'ingressgateway' },
      ports: [8080],
    });
  });

  it('names the file, the path and the field of each schema problem', () => {
    assert.deepEqual(
      problems(`
mesh: {mode: explicitt, controlPlane: {xdsPort: 70000}}
workloads:
  - {name: a, command: x}
  - {name: b, command: x}
  - name: Bad_Name
    command: []
    replicas: 0
    colour: red
    ports: [{port: 0, name: http}, {name: http}]
`),
      [
        'weft.yaml: mesh.mode: must be one of explicit, transparent, got "explicitt"',
        'weft.yaml: mesh.controlPlane.xdsPort: must be 0-65535, got 70000',
        'weft.yaml: workloads[2].colour: unknown field',
        'weft.yaml: workloads[2].name: must be a DNS label (lowercase letters, digits and "-", at most 63, starting and ending alphanumeric), got "Bad_Name"',
        'weft.yaml: workloads[2].command: must list at least 1',
        'weft.yaml: workloads[2].replicas: must be 1-245, got 0',
        'weft.yaml: workloads[2].ports[0].port: must be 1-65535, got 0',
        'weft.yaml: workloads[2].ports[1].port: required',
      ],
    );
  });

  it('reports missing workloads, wrong types and bad YAML', () => {
    assert.deepEqual(problems('mesh: {name: x}'), ['weft.yaml: workloads: required']);
    assert.deepEqual(problems('workloads: {name: a}'), [
      'weft.yaml: workloads: must be a list, got {"name":"a"}',
    ]);
    assert.deepEqual(problems('workloads: [{name: a, command: 5}]'), [
      'weft.yaml: workloads[0].command: must be a string or a list, got 5',
    ]);
    const yaml = problems('workloads: [{name: a, command: x}\n');
    assert.equal(yaml.length >= 1, true);
    assert.match(yaml[0], /^weft\.yaml: invalid YAML: /);
    assert.match(
      problems('workloads: [{name: a, name: b, command: x}]')[0],
      /^weft\.yaml: invalid YAML: Map keys must be unique at line 1, column \d+:$/,
    );
  });

  it('takes the mode, explicit unless the file says transparent', () => {
    assert.equal(parseMeshFile('workloads: [{name: a, command: x}]', 'weft.yaml', '/m').mode, 'explicit');
    assert.equal(
      parseMeshFile('mesh: {mode: transparent}\nworkloads: [{name: a, command: x}]', 'weft.yaml', '/m').mode,
      'transparent',
    );
  });

  it('finds duplicates and conflicts across workloads', () => {
    assert.deepEqual(
      problems(`
mesh: {controlPlane: {xdsPort: 9000, debugPort: 9000}}
gateway: {ports: [9000]}
workloads:
  - name: reviews-v1
    labels: {app: reviews}
    command: x
    ports: [{port: 9080, name: http}, {port: 9080, name: http-2}]
  - name: reviews-v2
    service: reviews
    command: x
    ports: [{port: 9080, protocol: TCP}, {port: 9081, name: custom}]
  - {name: reviews-v1, command: x}
  - {name: reviews-v1, namespace: other, command: x}
  - {name: c, service: cat, labels: {app: dog}, command: x, env: {PORT: 1, HTTP_PROXY: x, WEFT_PORT_1: y}}
`),
      [
        'weft.yaml: mesh.controlPlane.debugPort: 9000 is already mesh.controlPlane.xdsPort',
        'weft.yaml: gateway.ports[0]: 9000 is already mesh.controlPlane.xdsPort',
        'weft.yaml: workloads[0].ports[1].port: 9080 is already workloads[0].ports[0]',
        'weft.yaml: workloads[1].ports[0].protocol: TCP differs from HTTP at workloads[0].ports[0] (same service reviews, port 9080)',
        'weft.yaml: workloads[1].ports[1].protocol: required (the name "custom" has no protocol prefix; prefixes: http, http2, grpc, tcp)',
        'weft.yaml: workloads[2].name: "reviews-v1" is already workloads[0] in namespace default',
        'weft.yaml: workloads[4].labels.app: "dog" differs from service "cat" (a service selects its workloads by their app label)',
        "weft.yaml: workloads[4].env.PORT: set by weft up (see the app's environment in docs); remove it",
        "weft.yaml: workloads[4].env.HTTP_PROXY: set by weft up (see the app's environment in docs); remove it",
        "weft.yaml: workloads[4].env.WEFT_PORT_1: set by weft up (see the app's environment in docs); remove it",
      ],
    );
  });

  it('derives the protocol from the port name as Istio does', () => {
    assert.equal(protocolFromName('http'), 'HTTP');
    assert.equal(protocolFromName('http2-web'), 'HTTP2');
    assert.equal(protocolFromName('GRPC-x'), 'GRPC');
    assert.equal(protocolFromName('tcp'), 'TCP');
    assert.equal(protocolFromName('httpx'), undefined);
    assert.equal(protocolFromName('grpc-web'), 'GRPC');
    assert.equal(protocolFromName(undefined), undefined);
  });

  it('loads DIR/weft.yaml, naming the path as typed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-file-'));
    assert.throws(
      () => loadMeshFile(dir, 'mydir'),
      (e: MeshFileError) =>
        e.problems[0] === 'mydir/weft.yaml: not found (weft up reads the mesh from DIR/weft.yaml)',
    );
    fs.writeFileSync(path.join(dir, 'weft.yaml'), 'workloads: [{name: a, command: x, replicas: 1.5}]');
    assert.throws(
      () => loadMeshFile(dir, 'mydir'),
      (e: MeshFileError) =>
        e.message === 'mydir/weft.yaml: workloads[0].replicas: must be an integer, got 1.5',
    );
    fs.writeFileSync(path.join(dir, 'weft.yaml'), 'workloads: [{name: a, command: x}]');
    assert.equal(loadMeshFile(dir, 'mydir').name, path.basename(dir));
  });
});
