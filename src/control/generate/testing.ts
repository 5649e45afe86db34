/** Test helpers: a generator over a configuration written inline, and sidecar nodes. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IstioResource } from '../../api/istio/resource.ts';
import { loadConfig } from '../../config/load.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { MeshSecurity, MeshSnapshot } from '../model/snapshot.ts';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';
import type { ProxyNode } from '../xds/types.ts';
import { MeshGenerator } from './generator.ts';

export interface FromYamlOptions {
  /** Stands for a running CA (mTLS is generated only with one). */
  security?: MeshSecurity;
  meshConfig?: MeshConfig;
}

/** A generator over `yaml` (multi-document Istio resources), which must load without any diagnostic. */
export function generatorFromYaml(yaml: string, opts: FromYamlOptions = {}): MeshGenerator {
  const snap = snapshotFromYaml(yaml, opts);
  return new MeshGenerator(() => snap);
}

/** The snapshot of `yaml` (multi-document Istio resources), which must load without any diagnostic. */
export function snapshotFromYaml(yaml: string, opts: FromYamlOptions = {}): MeshSnapshot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-generate-'));
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, yaml);
  const { resources, diagnostics } = loadConfig([file]);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(diagnostics, [], 'the test configuration loads without diagnostics');
  const of = (kind: string): IstioResource<never>[] =>
    resources.filter((r) => r.kind === kind) as IstioResource<never>[];
  const source = new ConfigDiscoverySource();
  source.update(of('ServiceEntry'), of('WorkloadEntry'));
  return buildSnapshot({
    version: 1,
    virtualServices: of('VirtualService'),
    destinationRules: of('DestinationRule'),
    gateways: of('Gateway'),
    sidecars: of('Sidecar'),
    peerAuthentications: of('PeerAuthentication'),
    authorizationPolicies: of('AuthorizationPolicy'),
    requestAuthentications: of('RequestAuthentication'),
    telemetries: of('Telemetry'),
    ...(opts.security ? { security: opts.security } : {}),
    ...(opts.meshConfig ? { meshConfig: opts.meshConfig } : {}),
    discovery: aggregate([source]),
  });
}

export function sidecarNode(name: string, namespace: string, labels: Record<string, string> = {}): ProxyNode {
  return {
    id: `sidecar~10.9.0.1~${name}.${namespace}~${namespace}.svc.cluster.local`,
    type: 'sidecar',
    name,
    namespace,
    dnsDomain: `${namespace}.svc.cluster.local`,
    ipAddresses: ['10.9.0.1'],
    labels: { app: name, ...labels },
    serviceAccount: 'default',
    workloadName: name,
    locality: { region: '', zone: '', subZone: '' },
    cluster: '',
    metadata: {},
  };
}
