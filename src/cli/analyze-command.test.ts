import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const mainTs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-analyze-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let count = 0;

function dirWith(files: Record<string, string>): string {
  const dir = path.join(tmpRoot, `c${count++}`);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function weftAnalyze(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [mainTs, 'analyze', ...args],
      { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
`;

const virtualService = (route: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
${route}`;

describe('weft analyze', () => {
  it('a valid directory: exit 0 and a summary', async () => {
    const dir = dirWith({
      'services.yaml': serviceEntry,
      'routes/vs.yaml': virtualService('    - destination: {host: reviews, subset: v1}\n'),
    });
    const { code, stdout, stderr } = await weftAnalyze(dir);
    assert.equal(stderr, '');
    assert.equal(stdout, '3 resources analyzed: 0 errors, 0 warnings, 0 infos\n');
    assert.equal(code, 0);
  });

  it('bad files: exit 1, each problem named by file, line, resource, field and code', async () => {
    const dir = dirWith({
      'services.yaml': serviceEntry,
      'field-name.yaml': virtualService(
        '    - destination: {host: reviews, subset: v1}\n      wieght: 100\n',
      ).replace('name: reviews\n', 'name: field-name\n'),
      'type.yaml': virtualService(
        '    - destination: {host: reviews, subset: v1}\n      weight: "all"\n',
      ).replace('name: reviews\n', 'name: wrong-type\n'),
      'weight.yaml': virtualService(
        '    - destination: {host: reviews, subset: v1}\n      weight: 120\n    - destination: {host: reviews, subset: v1}\n      weight: -20\n',
      )
        .replace('name: reviews\n', 'name: weights\n')
        .replace('hosts: [reviews]', 'hosts: [weights.example.com]'),
      'subset.yaml': virtualService(
        '    - destination:\n        host: reviews\n        subset: v9\n',
      ).replace('hosts: [reviews]', 'hosts: [subset.example.com]'),
    });
    const { code, stdout } = await weftAnalyze(dir);
    assert.equal(code, 1);
    const lines = stdout.trimEnd().split('\n');
    const f = (name: string): string => path.join(dir, name);
    assert.deepEqual(lines, [
      `${f('field-name.yaml')}:11: error IST0106 VirtualService shop/field-name: spec.http[0].route[0].wieght: unknown field (did you mean "weight"?)`,
      `${f('subset.yaml')}:12: error IST0101 VirtualService shop/reviews: spec.http[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "reviews.shop.svc.cluster.local+v9"`,
      `${f('type.yaml')}:11: error IST0106 VirtualService shop/wrong-type: spec.http[0].route[0].weight: must be integer, got string "all"`,
      `${f('weight.yaml')}:13: error WE0103 VirtualService shop/weights: spec.http[0].route[1].weight: weight must not be negative, got -20`,
      '4 resources analyzed: 4 errors, 0 warnings, 0 infos',
    ]);
  });

  it('warnings only: exit 0; --output json gives the same diagnostics as data', async () => {
    const dir = dirWith({
      'vs.yaml': virtualService(
        '    - destination: {host: reviews}\n      weight: 60\n    - destination: {host: reviews}\n      weight: 30\n',
      ),
    });
    const text = await weftAnalyze(dir);
    assert.equal(text.code, 0);
    const json = await weftAnalyze('--output', 'json', dir);
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout) as {
      diagnostics: Record<string, unknown>[];
      summary: Record<string, number>;
    };
    assert.deepEqual(parsed.summary, { resources: 1, errors: 0, warnings: 2, infos: 0 });
    assert.deepEqual(parsed.diagnostics, [
      {
        code: 'WE0104',
        severity: 'warning',
        message: 'weights add up to 90, not 100; traffic is split in proportion to them',
        file: path.join(dir, 'vs.yaml'),
        line: 9,
        resource: 'VirtualService shop/reviews',
        field: 'spec.http[0].route',
      },
      {
        code: 'WE0101',
        severity: 'warning',
        message:
          'host "reviews.shop.svc.cluster.local" is not defined by any ServiceEntry (it may be a Kubernetes service, which Weft cannot see)',
        file: path.join(dir, 'vs.yaml'),
        line: 10,
        resource: 'VirtualService shop/reviews',
        field: 'spec.http[0].route[0].destination.host',
      },
    ]);
  });

  it('--context resolves references without analyzing the context', async () => {
    const context = dirWith({ 'services.yaml': serviceEntry });
    const dir = dirWith({ 'vs.yaml': virtualService('    - destination: {host: reviews, subset: v1}\n') });
    const alone = await weftAnalyze(dir);
    assert.equal(alone.code, 1);
    const withContext = await weftAnalyze(dir, '--context', context);
    assert.equal(withContext.stdout, '1 resource analyzed: 0 errors, 0 warnings, 0 infos\n');
    assert.equal(withContext.code, 0);
  });

  it('a missing path is an error, not a crash', async () => {
    const { code, stdout, stderr } = await weftAnalyze(path.join(tmpRoot, 'nope'));
    assert.equal(code, 1);
    assert.equal(stderr, '');
    assert.match(stdout, /nope: error WE0001 cannot read: no such file or directory/);
  });
});
