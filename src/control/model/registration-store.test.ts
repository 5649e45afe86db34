import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ProxyNode } from '../xds/types.ts';
import { loadRegistrations, REGISTRATIONS_FILE, saveRegistrations } from './registration-store.ts';
import { RegistrySource, workloadOfNode } from './registry-source.ts';

function node(name: string, ip: string): ProxyNode {
  return {
    id: `sidecar~${ip}~${name}.shop~shop.svc.cluster.local`,
    type: 'sidecar',
    name,
    namespace: 'shop',
    dnsDomain: 'shop.svc.cluster.local',
    ipAddresses: [ip],
    labels: { app: name },
    serviceAccount: name,
    workloadName: name,
    locality: { region: 'r', zone: 'z', subZone: '' },
    cluster: '',
    metadata: {},
  };
}

describe('registered workloads across control-plane restarts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-registrations-'));
  const file = path.join(dir, REGISTRATIONS_FILE);

  it('are saved and read back as they were', () => {
    const before = new RegistrySource();
    before.connected(node('api', '10.0.0.1'));
    before.connected(node('web', '10.0.0.2'));
    saveRegistrations(file, before.registered());
    before.close();
    const errors: string[] = [];
    const entries = loadRegistrations(file, (m) => errors.push(m));
    assert.deepEqual(errors, []);
    assert.deepEqual(
      entries.map((e) => [e.id, e.workload]),
      [node('api', '10.0.0.1'), node('web', '10.0.0.2')].map((n) => [n.id, workloadOfNode(n)]),
    );
  });

  it('serve until their proxies reconnect, and go after the grace period if they do not', async () => {
    const entries = loadRegistrations(file, () => undefined);
    const after = new RegistrySource();
    after.restore(entries, 150);
    assert.deepEqual(
      after
        .workloads()
        .map((w) => w.name)
        .sort(),
      ['api', 'web'],
    );
    after.connected(node('api', '10.0.0.1'));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      after.workloads().map((w) => w.name),
      ['api'],
    );
    after.close();
  });

  it('a file that is not a registrations file is ignored with a reason; a missing one silently', () => {
    const errors: string[] = [];
    fs.writeFileSync(file, '{"registrations": 7}');
    assert.deepEqual(
      loadRegistrations(file, (m) => errors.push(m)),
      [],
    );
    fs.writeFileSync(file, 'not json');
    assert.deepEqual(
      loadRegistrations(file, (m) => errors.push(m)),
      [],
    );
    assert.equal(errors.length, 2);
    assert.match(errors[0], /no "registrations" list/);
    assert.deepEqual(
      loadRegistrations(path.join(dir, 'missing.json'), (m) => errors.push(m)),
      [],
    );
    assert.equal(errors.length, 2);
  });
});
