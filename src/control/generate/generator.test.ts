/**
 * Golden tests: Istio YAML in (testdata/<case>/config.yaml, and MeshConfig in mesh.yaml), xDS out for each proxy in proxies.yaml,
 * compared with testdata/<case>/golden/<proxy>.json. `UPDATE_GOLDEN=1` rewrites the golden files; review
 * the diff. Every generated resource must also pass the proxy's own validation (Envoy's protos).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { IstioResource } from '../../api/istio/resource.ts';
import { loadConfig } from '../../config/load.ts';
import { normalize } from '../../proxy/config-proto/normalize.ts';
import { ConfigDiscoverySource } from '../model/config-source.ts';
import { loadMeshConfigFile } from '../model/mesh-config-file.ts';
import { aggregate } from '../model/discovery.ts';
import { buildSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { MeshGenerator } from './generator.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const cases = fs.readdirSync(path.join(here, 'testdata'));

interface ProxySpec extends Partial<ProxyNode> {
  id: string;
  subscribe?: { listeners?: string[]; routes?: string[]; clusters?: string[]; endpoints?: string[] };
}

function proxyNode(spec: ProxySpec): ProxyNode {
  return {
    id: spec.id,
    type: spec.type ?? 'sidecar',
    name: spec.name ?? spec.id,
    namespace: spec.namespace ?? 'default',
    dnsDomain: `${spec.namespace ?? 'default'}.svc.cluster.local`,
    ipAddresses: spec.ipAddresses ?? [],
    labels: spec.labels ?? {},
    serviceAccount: spec.serviceAccount ?? 'default',
    workloadName: spec.workloadName ?? spec.name ?? spec.id,
    locality: spec.locality ?? { region: '', zone: '', subZone: '' },
    cluster: spec.cluster ?? '',
    metadata: spec.metadata ?? {},
  };
}

function of<K extends string>(resources: readonly IstioResource[], kind: K): IstioResource<never>[] {
  return resources.filter((r) => r.kind === kind) as IstioResource<never>[];
}

function generateAll(dir: string): Record<string, unknown> {
  const { resources, diagnostics } = loadConfig([path.join(dir, 'config.yaml')]);
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === 'error'),
    [],
    'the test configuration itself must be valid',
  );
  const source = new ConfigDiscoverySource();
  source.update(of(resources, 'ServiceEntry'), of(resources, 'WorkloadEntry'));
  const snap = buildSnapshot({
    version: 1,
    virtualServices: of(resources, 'VirtualService'),
    destinationRules: of(resources, 'DestinationRule'),
    gateways: of(resources, 'Gateway'),
    sidecars: of(resources, 'Sidecar'),
    telemetries: of(resources, 'Telemetry'),
    // A case's MeshConfig (mesh.yaml), if it has one.
    ...(fs.existsSync(path.join(dir, 'mesh.yaml'))
      ? { meshConfig: loadMeshConfigFile(path.join(dir, 'mesh.yaml')) }
      : {}),
    discovery: aggregate([source]),
  });
  const generator = new MeshGenerator(() => snap);
  const out: Record<string, unknown> = {};
  for (const spec of parse(fs.readFileSync(path.join(dir, 'proxies.yaml'), 'utf8')) as ProxySpec[]) {
    const proxy = proxyNode(spec);
    const names = (list: string[] | undefined): Set<string> | null => (list ? new Set(list) : null);
    const listeners = generator.generate(proxy, TYPE_URL.listener, names(spec.subscribe?.listeners));
    const routeNames =
      spec.subscribe?.routes ??
      [...listeners.values()].flatMap(
        (l) =>
          JSON.stringify(l)
            .match(/"route_config_name":"[^"]+"/g)
            ?.map((m) => m.slice(21, -1)) ?? [],
      );
    const clusters = generator.generate(proxy, TYPE_URL.cluster, names(spec.subscribe?.clusters));
    const edsNames =
      spec.subscribe?.endpoints ??
      [...clusters.values()].filter((c) => c.type === 'EDS').map((c) => c.name as string);
    out[spec.name ?? spec.id] = {
      listeners: [...listeners.values()],
      routes: [...generator.generate(proxy, TYPE_URL.route, new Set(routeNames)).values()],
      clusters: [...clusters.values()],
      endpoints: [...generator.generate(proxy, TYPE_URL.endpoint, new Set(edsNames)).values()],
    };
  }
  return out;
}

describe('xDS generation (golden)', () => {
  for (const name of cases) {
    const dir = path.join(here, 'testdata', name);
    it(`${name}: matches the golden files`, () => {
      const generated = generateAll(dir);
      for (const [proxy, resources] of Object.entries(generated)) {
        const file = path.join(dir, 'golden', `${proxy}.json`);
        const text = `${JSON.stringify(resources, null, 2)}\n`;
        if (process.env.UPDATE_GOLDEN === '1') {
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, text);
        }
        assert.equal(text, fs.readFileSync(file, 'utf8'), `${file} differs (UPDATE_GOLDEN=1 rewrites it)`);
      }
    });

    it(`${name}: every resource passes Envoy's schema as the proxy checks it`, () => {
      for (const [proxy, resources] of Object.entries(generateAll(dir))) {
        for (const [kind, list] of Object.entries(resources as Record<string, unknown[]>)) {
          list.forEach((r, i) => {
            assert.doesNotThrow(() => normalize('google.protobuf.Any', r, `${proxy}.${kind}[${i}]`));
          });
        }
      }
    });

    it(`${name}: is deterministic`, () => {
      assert.deepEqual(generateAll(dir), generateAll(dir));
    });
  }
});
