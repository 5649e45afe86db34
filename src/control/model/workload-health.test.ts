import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { WorkloadEntry } from '../../api/istio/networking.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import { loadConfig } from '../../config/load.ts';
import { ConfigDiscoverySource, workloadEntryHealthy } from './config-source.ts';

/** WorkloadEntries as a file on disk would hold them, loaded the way the control plane loads them. */
function load(yaml: string): IstioResource<WorkloadEntry>[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-we-health-'));
  try {
    fs.writeFileSync(path.join(dir, 'we.yaml'), yaml);
    const { resources, diagnostics } = loadConfig([dir]);
    assert.deepEqual(
      diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    return resources.filter((r) => r.kind === 'WorkloadEntry') as IstioResource<WorkloadEntry>[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const entry = (name: string, annotated: boolean, status: string): string => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${name}
  ${annotated ? 'annotations: {proxy.istio.io/health-checks-enabled: "true"}' : ''}
spec: {address: 10.0.0.1, labels: {app: a}}
${status}
`;

describe("WorkloadEntry health (Istio's health-checks-enabled annotation and Healthy condition)", () => {
  it('follows the Healthy condition only when the annotation enables health checks', () => {
    const healthyCondition = (s: string): string =>
      `status: {conditions: [{type: Ready, status: "False"}, {type: Healthy, status: "${s}", reason: probe}]}`;
    const entries = load(
      [
        entry('plain', false, ''),
        entry('plain-false', false, healthyCondition('False')),
        entry('checked-true', true, healthyCondition('True')),
        entry('checked-false', true, healthyCondition('False')),
        entry('checked-unknown', true, ''),
        entry('checked-malformed', true, 'status: {conditions: "Healthy"}'),
      ].join(''),
    );
    const health = Object.fromEntries(entries.map((e) => [e.metadata.name, workloadEntryHealthy(e)]));
    assert.deepEqual(health, {
      plain: true,
      'plain-false': true,
      'checked-true': true,
      'checked-false': false,
      'checked-unknown': false,
      'checked-malformed': false,
    });
    assert.deepEqual(entries.find((e) => e.metadata.name === 'checked-false')?.conditions, [
      { type: 'Ready', status: 'False' },
      { type: 'Healthy', status: 'False', reason: 'probe' },
    ]);
  });

  it('reports a changed condition as a workload change, so endpoints are pushed again', () => {
    const source = new ConfigDiscoverySource();
    source.update([], load(entry('w', true, 'status: {conditions: [{type: Healthy, status: "True"}]}')));
    assert.equal(source.workloads()[0]?.healthy, true);
    const next = source.update(
      [],
      load(entry('w', true, 'status: {conditions: [{type: Healthy, status: "False"}]}')),
    );
    assert.deepEqual(next, { servicesChanged: false, workloadsChanged: true });
    assert.equal(source.workloads()[0]?.healthy, false);
  });
});
