import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { copyShop, processesOf, REPO, SHOP } from './shop.ts';

// Parsed YAML, walked by the assertions below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Yaml = Record<string, any>;

describe('copyShop', () => {
  it('copies the demo with free control-plane ports and the given gateway port, all else as shipped', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-shop-copy-'));
    try {
      copyShop(dir, 23456);
      const original = parse(fs.readFileSync(path.join(SHOP, 'weft.yaml'), 'utf8')) as Yaml;
      const copy = parse(fs.readFileSync(path.join(dir, 'weft.yaml'), 'utf8')) as Yaml;
      assert.deepEqual(copy.mesh.controlPlane, { xdsPort: 0, debugPort: 0, dashboardPort: 0 });
      assert.deepEqual(copy.gateway.ports, [23456]);
      assert.deepEqual(copy.workloads, original.workloads);
      assert.equal(copy.mesh.name, original.mesh.name);

      const docs = (file: string): Yaml[] =>
        parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS() as Yaml);
      const copied = docs(path.join(dir, 'gateway.yaml'));
      const shipped = docs(path.join(SHOP, 'gateway.yaml'));
      assert.equal(copied.length, shipped.length);
      const [gw, vs] = copied;
      const [gw0, vs0] = shipped;
      assert.equal(gw.spec.servers[0].port.number, 23456);
      gw.spec.servers[0].port.number = gw0.spec.servers[0].port.number;
      assert.deepEqual([gw, vs], [gw0, vs0]);

      // The rest is byte for byte; run state is left behind; the apps find the repo's node_modules.
      assert.equal(
        fs.readFileSync(path.join(dir, 'reviews.yaml'), 'utf8'),
        fs.readFileSync(path.join(SHOP, 'reviews.yaml'), 'utf8'),
      );
      assert.equal(fs.existsSync(path.join(dir, '.weft')), false);
      assert.equal(fs.realpathSync(path.join(dir, 'node_modules')), path.join(REPO, 'node_modules'));
      assert.deepEqual(processesOf(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
