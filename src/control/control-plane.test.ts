/**
 * The control plane's change detection: an edited WorkloadEntry becomes an endpoint-only push naming exactly the
 * clusters it touches; a change that alters no endpoint pushes nothing; a DestinationRule change is a full push,
 * which reaches only the proxies whose configuration it changes (real delta xDS streams).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, setLogLevel } from '../core/logger.ts';
import { ControlPlane } from './control-plane.ts';
import { AdsTestClient, sidecarNode } from './xds/testing.ts';
import { TYPE_URL } from './xds/types.ts';
import type { PushRequest } from './xds/types.ts';

setLogLevel('error');

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: api } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: shop }
spec:
  hosts: [web.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: web } }
`;

function rule(lb: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy: { loadBalancer: { simple: ${lb} } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

function workload(name: string, app: string, version: string, address: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop }
spec: { address: ${address}, labels: { app: ${app}, version: ${version} } }
`;
}

describe('control plane change detection', { timeout: 30_000 }, () => {
  let dir: string;
  let cp: ControlPlane;
  let debugPort = 0;
  const pushes: PushRequest[] = [];

  const write = (file: string, text: string): void => {
    const tmp = path.join(dir, `.${file}.tmp`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(dir, file));
  };

  /** Waits for the next push (the watcher debounces 100 ms), or null when none comes within `ms`. */
  async function nextPush(ms = 3000): Promise<PushRequest | null> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (pushes.length > 0) return pushes.shift()!;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return null;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-change-'));
    write('services.yaml', SERVICE);
    write('rule.yaml', rule('ROUND_ROBIN'));
    write('api-1.yaml', workload('api-1', 'api', 'v1', '10.0.0.1'));
    write('api-2.yaml', workload('api-2', 'api', 'v2', '10.0.0.2'));
    write('web-1.yaml', workload('web-1', 'web', 'v1', '10.0.1.1'));
    cp = new ControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0, logger: createLogger('test-cp') });
    const push = cp.ads.push.bind(cp.ads);
    cp.ads.push = (req: PushRequest): void => {
      pushes.push(req);
      push(req);
    };
    ({ debugPort } = await cp.start());
  });

  after(async () => {
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('turns an edited WorkloadEntry into an endpoint push that names exactly its clusters', async () => {
    write('api-2.yaml', workload('api-2', 'api', 'v2', '10.0.0.22'));
    const p = await nextPush();
    assert.ok(p, 'a push');
    assert.equal(p.full, false);
    assert.deepEqual([...(p.endpointClusters ?? [])].sort(), [
      'outbound|8080|v1|api.shop.svc.cluster.local',
      'outbound|8080|v2|api.shop.svc.cluster.local',
      'outbound|8080||api.shop.svc.cluster.local',
    ]);
    write('web-1.yaml', workload('web-1', 'web', 'v1', '10.0.1.11'));
    const q = await nextPush();
    assert.deepEqual([...(q?.endpointClusters ?? [])], ['outbound|80||web.shop.svc.cluster.local']);
  });

  it('pushes nothing when no endpoint changes, and everything when a DestinationRule does', async () => {
    // A file rewritten with the same content, and a workload no service selects.
    write('api-1.yaml', workload('api-1', 'api', 'v1', '10.0.0.1'));
    write('other.yaml', workload('other', 'other', 'v1', '10.0.9.9'));
    assert.equal(await nextPush(800), null);
    write('rule.yaml', rule('RANDOM'));
    const p = await nextPush();
    assert.equal(p?.full, true);
    assert.equal(p?.endpointClusters, undefined);
  });

  it('lists what is wrong with the configuration at /debug/config_diagnostics, and what is kept', async () => {
    const get = async (query = ''): Promise<Response> =>
      fetch(`http://127.0.0.1:${debugPort}/debug/config_diagnostics${query}`);
    const clean = (await (await get()).json()) as { counts: Record<string, number> };
    assert.equal(clean.counts.error, 0);
    // The rule loses its host: it stays served in its last valid version, and the endpoint says so.
    write('rule.yaml', rule('RANDOM').replace('  host: api\n', '  hots: api\n'));
    const deadline = Date.now() + 5000;
    let body: {
      configVersion: number;
      counts: Record<string, number>;
      diagnostics: { code: string; file: string }[];
    };
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      body = (await (await get('?severity=error')).json()) as typeof body;
    } while (body.counts.error === 0 && Date.now() < deadline);
    assert.ok(body.configVersion > 0);
    assert.ok(
      body.diagnostics.some((d) => d.code === 'WE0009' && d.file.endsWith('rule.yaml')),
      JSON.stringify(body),
    );
    assert.ok(body.diagnostics.every((d) => (d as unknown as { severity: string }).severity === 'error'));
    const text = await (await get('?format=text')).text();
    assert.match(text, /rule\.yaml.*WE0009/);
    assert.equal((await get('?severity=fatal')).status, 400);
  });
});

describe('control plane pushes go only to the proxies a change affects', { timeout: 30_000 }, () => {
  const serviceIn = (ns: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ${ns} }
spec:
  hosts: [api.${ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.1 }]
`;
  const ruleIn = (ns: string, lb: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: ${ns} }
spec:
  host: api
  trafficPolicy: { loadBalancer: { simple: ${lb} } }
`;
  // Proxies in ns-b see only their own namespace's services.
  const SIDECAR_B = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: ns-b }
spec:
  egress: [{ hosts: ['./*'] }]
`;

  it('a DestinationRule change in one namespace reaches the proxies that see it, and no other', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-affects-'));
    const write = (file: string, text: string): void => {
      fs.writeFileSync(path.join(dir, `.${file}.tmp`), text);
      fs.renameSync(path.join(dir, `.${file}.tmp`), path.join(dir, file));
    };
    write('a.yaml', serviceIn('ns-a'));
    write('b.yaml', serviceIn('ns-b'));
    write('rule-a.yaml', ruleIn('ns-a', 'ROUND_ROBIN'));
    write('sidecar-b.yaml', SIDECAR_B);
    const cp = new ControlPlane({
      configPaths: [dir],
      xdsPort: 0,
      debugPort: 0,
      logger: createLogger('test-cp'),
    });
    const { xdsPort } = await cp.start();
    const clients: AdsTestClient[] = [];
    try {
      const subscribe = async (ns: string): Promise<AdsTestClient> => {
        const c = new AdsTestClient(xdsPort, 'delta');
        clients.push(c);
        c.send({ node: sidecarNode(`app-${ns}`, '10.0.0.1', ns), type_url: TYPE_URL.cluster });
        const first = await c.next();
        c.send({ type_url: TYPE_URL.cluster, response_nonce: first.nonce });
        return c;
      };
      const a = await subscribe('ns-a');
      const b = await subscribe('ns-b');
      write('rule-a.yaml', ruleIn('ns-a', 'RANDOM'));
      const update = await a.next(5000);
      assert.equal(update.type_url, TYPE_URL.cluster);
      assert.ok(
        JSON.stringify(update.resources).includes('api.ns-a.svc.cluster.local'),
        'the changed cluster reaches the proxy in ns-a',
      );
      a.send({ type_url: TYPE_URL.cluster, response_nonce: update.nonce });
      await b.none(500);
      // The same kind of change in ns-b reaches both: ns-a has no Sidecar, so it sees every namespace.
      write('rule-b.yaml', ruleIn('ns-b', 'RANDOM'));
      assert.equal((await b.next(5000)).type_url, TYPE_URL.cluster);
      assert.equal((await a.next(5000)).type_url, TYPE_URL.cluster);
    } finally {
      for (const c of clients) c.close();
      await cp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
