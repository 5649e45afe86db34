import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { VirtualService } from '../api/istio/networking.ts';
import type { IstioResource } from '../api/istio/resource.ts';
import { formatDiagnostic } from './diagnostic.ts';
import type { Diagnostic } from './diagnostic.ts';
import { loadConfig, loadText } from './load.ts';
import { lineOfField } from './locations.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-load-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;

/** A fresh directory with these files (path → content). */
function tree(files: Record<string, string | Buffer>): string {
  const dir = path.join(tmpRoot, `t${dirCount++}`);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const names = (rs: readonly IstioResource[]): string[] =>
  rs.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`);
const codes = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.code}@${d.line ?? '-'}`);

const reviewsVs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  gateways:
  - my-gateway
  - mesh
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
`;

describe('loadConfig', () => {
  it("skips weft up's mesh description and node_modules in a directory, but reads them when named", () => {
    const dir = tree({
      'weft.yaml': 'workloads: []\n',
      'vs.yaml': reviewsVs,
      'app/node_modules/pkg/config.yaml': 'not: istio\n',
      'app/node_modules/pkg/package.json': '{}',
    });
    const r = loadConfig([dir]);
    assert.deepEqual(names(r.resources), ['VirtualService default/reviews']);
    assert.deepEqual(codes(r.diagnostics), []);
    const named = loadConfig([path.join(dir, 'weft.yaml')]);
    assert.ok(named.diagnostics.length > 0, 'a file named explicitly is read whatever its name');
  });

  it('loads multi-document YAML, applies Istio defaults and remembers where each resource starts', () => {
    const dir = tree({
      'a.yaml': `# comment\n${reviewsVs}---\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: reviews\n  namespace: prod\n  labels: {team: books}\nspec:\n  host: reviews\n`,
    });
    const { resources, diagnostics } = loadConfig([dir]);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(names(resources), ['VirtualService default/reviews', 'DestinationRule prod/reviews']);
    const [vs, dr] = resources as [IstioResource<VirtualService>, IstioResource<{ host: string }>];
    assert.deepEqual(vs.metadata, { name: 'reviews', namespace: 'default', labels: {}, annotations: {} });
    assert.deepEqual(vs.spec.hosts, ['reviews.default.svc.cluster.local']);
    assert.deepEqual(vs.spec.gateways, ['default/my-gateway', 'mesh']);
    assert.equal(vs.spec.http?.[0].route?.[0].destination.host, 'reviews.default.svc.cluster.local');
    assert.equal(dr.spec.host, 'reviews.prod.svc.cluster.local');
    assert.deepEqual(dr.metadata.labels, { team: 'books' });
    assert.deepEqual(vs.source, { file: path.join(dir, 'a.yaml'), line: 2, column: 1 });
    assert.equal(dr.source.line, 18);
    assert.equal(dr.apiVersion, 'networking.istio.io/v1beta1');
    assert.equal(lineOfField(vs, ['spec', 'http', 0, 'route', 0, 'destination', 'subset']), 16);
    assert.ok(Object.isFrozen(vs) && Object.isFrozen(vs.spec) && Object.isFrozen(vs.metadata.labels));
  });

  it('excludes an invalid resource without affecting the others in the same file or other files', () => {
    const dir = tree({
      'a.yaml': `${reviewsVs}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: bad\nspec:\n  http:\n  - route:\n    - destination:\n        host: x\n      weight: "50"\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: my-gateway\nspec:\n  selector: {istio: ingressgateway}\n`,
      'b.yaml':
        'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ok}\nspec: {host: ok}\n',
    });
    const { resources, diagnostics } = loadConfig([dir]);
    assert.deepEqual(names(resources), [
      'VirtualService default/reviews',
      'Gateway default/my-gateway',
      'DestinationRule default/ok',
    ]);
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      `${path.join(dir, 'a.yaml')}:26: error IST0106 VirtualService default/bad: spec.http[0].route[0].weight: must be integer, got string "50"`,
    ]);
  });

  it('reports the later of two resources with the same kind, namespace and name', () => {
    const dr = (host: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: ns}\nspec: {host: ${host}}\n`;
    const dir = tree({ 'a.yaml': dr('first'), 'b.yaml': `${dr('second')}---\n${dr('third')}` });
    const { resources, diagnostics } = loadConfig([dir]);
    assert.equal(resources.length, 1);
    assert.equal((resources[0].spec as { host: string }).host, 'first.ns.svc.cluster.local');
    assert.deepEqual(codes(diagnostics), ['WE0008@1', 'WE0008@6']);
    assert.match(diagnostics[0].message, /duplicate of the resource at .*a\.yaml:1/);
    assert.equal(diagnostics[0].file, path.join(dir, 'b.yaml'));
  });

  it('skips non-Istio kinds with an info, and warns about Istio kinds Weft does not take', () => {
    const { resources, diagnostics } = loadConfig([
      tree({
        'k8s.yaml':
          'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n',
      }),
    ]);
    assert.deepEqual(resources, []);
    assert.deepEqual(
      diagnostics.map((d) => `${d.code} ${d.severity}@${d.line}`),
      ['WE0004 info@1', 'WE0006 warning@5', 'WE0006 warning@9'],
    );
  });

  it('rejects a kind in an API version Weft does not accept, bad metadata, unknown top-level fields and a missing required spec', () => {
    const { resources, diagnostics } = loadConfig([
      tree({
        'bad.yaml': [
          'apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: a}\nspec: {}',
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {namespace: x}\nspec: {}',
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: Upper_Case}\nspec: {}',
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: a\n  labels: {version: 2}\nspec: {}',
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspecs: {hosts: [a]}',
          'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}',
        ].join('\n---\n'),
      }),
    ]);
    assert.deepEqual(resources, []);
    assert.deepEqual(
      diagnostics.map((d) => `${d.code} ${d.resource ?? '-'} ${d.field ?? '-'}@${d.line}: ${d.message}`),
      [
        'WE0005 VirtualService default/a apiVersion@1: apiVersion networking.istio.io/v2 is not accepted for VirtualService (accepted: networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)',
        'WE0007 - metadata.name@8: required field is missing',
        "WE0007 - metadata.name@13: invalid name \"Upper_Case\": lower-case letters, digits, '-' and '.'",
        'WE0007 VirtualService default/a metadata.labels.version@20: must be a string, got 2',
        'IST0106 VirtualService default/a specs@26: unknown field',
        'IST0106 ServiceEntry default/a spec@28: required field is missing',
      ],
    );
  });

  it('reads JSON files, walks directories recursively and ignores hidden and non-config files', () => {
    const dr = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'j' },
      spec: { host: 'j' },
    };
    const dir = tree({
      'sub/deeper/r.json': JSON.stringify(dr, null, 2),
      'sub/x.yml': reviewsVs,
      '.hidden.yaml': 'not: [valid',
      '.git/config.yaml': 'not: [valid',
      'notes.txt': 'not: [valid',
    });
    const { resources, diagnostics } = loadConfig([dir]);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(names(resources), ['DestinationRule default/j', 'VirtualService default/reviews']);
    assert.equal(resources[0].source.line, 1);
    // A file named explicitly is read whatever its extension.
    const explicit = loadConfig([path.join(dir, 'notes.txt')]);
    assert.deepEqual(codes(explicit.diagnostics), ['WE0002@1']);
  });

  it('reports a missing path', () => {
    const missing = path.join(tmpRoot, 'does-not-exist');
    const { diagnostics } = loadConfig([missing]);
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      `${missing}: error WE0001 cannot read: no such file or directory`,
    ]);
  });
});

describe('loadConfig: bad input never throws', () => {
  it('malformed YAML: the broken document is reported with its line, the others still load', () => {
    const file = path.join(
      tree({
        'm.yaml': `${reviewsVs}---\napiVersion: v1\nkind: [unclosed\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n`,
      }),
      'm.yaml',
    );
    const loaded = loadText(file, fs.readFileSync(file, 'utf8'));
    assert.equal(loaded.parsed, false);
    const { resources, diagnostics } = loadConfig([file]);
    assert.deepEqual(names(resources), ['VirtualService default/reviews', 'Gateway default/g']);
    assert.equal(diagnostics.length, 1);
    assert.equal(diagnostics[0].code, 'WE0002');
    assert.ok(
      diagnostics[0].line !== undefined && diagnostics[0].line >= 17 && diagnostics[0].line <= 19,
      String(diagnostics[0].line),
    );
  });

  it('a document that is a scalar or a list', () => {
    const { diagnostics } = loadConfig([tree({ 's.yaml': 'just a string\n---\n42\n---\n- a\n- b\n' })]);
    assert.deepEqual(codes(diagnostics), ['WE0003@1', 'WE0003@3', 'WE0003@5']);
    assert.match(diagnostics[0].message, /a string \("just a string"\)/);
  });

  it('a 10 MB file is refused by size, quickly', () => {
    const big = `# ${'x'.repeat(10 * 1024 * 1024)}\n`;
    const started = Date.now();
    const { resources, diagnostics } = loadConfig([tree({ 'big.yaml': big })]);
    assert.deepEqual(resources, []);
    assert.deepEqual(codes(diagnostics), ['WE0001@-']);
    assert.match(diagnostics[0].message, /more than the limit of 8388608/);
    assert.ok(Date.now() - started < 2000);
  });

  it('deeply nested garbage', () => {
    const depth = 200_000;
    const deep = loadConfig([tree({ 'deep.yaml': `${'['.repeat(depth)}${']'.repeat(depth)}\n` })]);
    assert.deepEqual(deep.resources, []);
    assert.ok(deep.diagnostics.length > 0);
    assert.ok(deep.diagnostics.every((d) => d.code === 'WE0002'));
    let spec = '{}';
    for (let i = 0; i < 5000; i++) spec = `{a: ${spec}}`;
    const nested = loadConfig([
      tree({
        'n.yaml': `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: n}\nspec: ${spec}\n`,
      }),
    ]);
    assert.equal(nested.resources.length, 0);
    assert.ok(nested.diagnostics.length > 0);
    assert.ok(nested.diagnostics.every((d) => d.severity === 'error'));
  });

  it('an alias bomb', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++)
      lines.push(
        `${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(9)
          .fill(`*${'abcdefghij'[i - 1]}`)
          .join(',')}]`,
      );
    const { diagnostics } = loadConfig([tree({ 'bomb.yaml': `${lines.join('\n')}\n` })]);
    assert.deepEqual(codes(diagnostics), ['WE0002@1']);
  });

  it('binary garbage', () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256;
    const { resources, diagnostics } = loadConfig([tree({ 'bin.yaml': bytes })]);
    assert.deepEqual(resources, []);
    assert.ok(diagnostics.length > 0 && diagnostics.every((d) => d.severity === 'error'));
  });

  it('arbitrary text and arbitrary specs (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const r = loadText('p.yaml', text);
        assert.ok(Array.isArray(r.documents));
      }),
      { numRuns: 300, seed: 42 },
    );
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 6 }),
        fc.constantFrom('VirtualService', 'DestinationRule', 'ServiceEntry', 'Sidecar'),
        (spec, kind) => {
          const doc = stringify({
            apiVersion: 'networking.istio.io/v1',
            kind,
            metadata: { name: 'p' },
            spec,
          });
          const r = loadText('p.yaml', doc);
          const [d] = r.documents;
          assert.ok(d.resource !== undefined || d.diagnostics.length > 0);
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});
