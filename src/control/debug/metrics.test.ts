/**
 * The control plane's /metrics, scraped from the monitoring port of a real ControlPlane with its CA, while a
 * real `weft proxy` sidecar is connected and holds a workload certificate; promtool reads the output.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setLogLevel } from '../../core/logger.ts';
import { ControlPlane } from '../control-plane.ts';
import { meshService, startSidecar } from '../../../test/support/mesh.ts';
import type { MeshSidecar } from '../../../test/support/mesh.ts';
import { waitFor } from '../../../test/support/proxy.ts';
import { closedPort } from '../../../test/support/servers.ts';

setLogLevel('error');

/** The value of one sample (name plus its exact label text, `{}` for none); undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(series)) continue;
    const rest = line.slice(series.length);
    if (rest.startsWith(' ')) return Number(rest.trim());
  }
  return undefined;
}

describe('control plane metrics with a connected sidecar and its certificate', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-metrics-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  let cp: ControlPlane;
  let sidecar: MeshSidecar;
  let base = '';
  let config = '';
  const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();

  before(async () => {
    fs.mkdirSync(configDir);
    const port = await closedPort();
    config = meshService({ name: 'api', host: 'api.default.svc.cluster.local', port, appPort: 1 });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), config);
    cp = new ControlPlane({ configPaths: [configDir], xdsPort: 0, debugPort: 0, debounceMs: 20, stateDir });
    const ports = await cp.start();
    base = `http://127.0.0.1:${ports.debugPort}`;
    sidecar = await startSidecar({
      name: 'api',
      serviceAccount: 'api',
      ip: '127.0.0.2',
      labels: 'app=api',
      xdsPort: ports.xdsPort,
      stateDir,
      workDir: dir,
    });
    await waitFor(
      async () => {
        const text = await scrape();
        return sample(text, 'citadel_server_success_cert_issuance_count') === 1 && /^pilot_xds\{/m.test(text);
      },
      30_000,
      'the sidecar connected with its certificate',
    );
  });

  after(async () => {
    sidecar?.kill('SIGKILL');
    await sidecar?.exited;
    await cp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts the connected proxy by its Istio version, in Weft and istiod names', async () => {
    const text = await scrape();
    assert.equal(sample(text, 'weft_xds_connected_proxies'), 1);
    const versions = [...text.matchAll(/^pilot_xds\{version="([^"]+)"\} (\d+)$/gm)];
    assert.equal(versions.length, 1);
    assert.notEqual(versions[0][1], 'unknown'); // weft proxy reports ISTIO_VERSION
    assert.equal(Number(versions[0][2]), 1);
    for (const type of ['cds', 'lds'])
      assert.ok(sample(text, `pilot_xds_pushes{type="${type}"}`)! >= 1, `${type} sent`);
    assert.equal(sample(text, 'pilot_total_xds_rejects{type="lds"}'), 0);
  });

  it('reports the CA: requests, issuance, the valid certificate and its expiry, the root expiry', async () => {
    const text = await scrape();
    const ca = cp.authority!;
    assert.equal(sample(text, 'citadel_server_csr_count'), 1);
    assert.equal(sample(text, 'citadel_server_authentication_failure_count'), 0);
    assert.equal(sample(text, 'citadel_server_csr_parsing_err_count'), 0);
    assert.equal(sample(text, 'weft_ca_certificate_requests_total{result="issued"}'), 1);
    assert.equal(sample(text, 'weft_ca_certificate_requests_total{result="forbidden"}'), 0);
    assert.equal(sample(text, 'weft_ca_workload_certificates_valid'), 1);
    // The sidecar's certificate: Istio's default lifetime (24 h) from about now.
    const expiry = sample(text, 'weft_ca_workload_certificate_earliest_expiry_timestamp_seconds')!;
    const left = expiry - Date.now() / 1000;
    assert.ok(left > 86_400 - 120 && left <= 86_400, `expires in ${left} s`);
    const root = ca.rootNotAfter.getTime() / 1000;
    assert.equal(sample(text, 'citadel_server_root_cert_expiry_timestamp'), root);
    assert.equal(sample(text, 'weft_ca_root_certificate_expiry_timestamp_seconds'), root);
    const rootLeft = sample(text, 'citadel_server_root_cert_expiry_seconds')!;
    assert.ok(Math.abs(rootLeft - (root - Date.now() / 1000)) < 60, `root expires in ${rootLeft} s`);
    // A self-made root signs workload certificates itself.
    assert.equal(sample(text, 'citadel_server_cert_chain_expiry_timestamp'), root);
  });

  it('observes the convergence of a config change to the proxy', async () => {
    const before = sample(await scrape(), 'pilot_proxy_convergence_time_count') ?? 0;
    const other = meshService({
      name: 'web',
      host: 'web.default.svc.cluster.local',
      port: 18080,
      appPort: 1,
    });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), `${config}\n---\n${other}`);
    const text = (await waitFor(
      async () => {
        const t = await scrape();
        return (sample(t, 'pilot_proxy_convergence_time_count') ?? 0) > before ? t : null;
      },
      15_000,
      'a push after the change',
    ))!;
    // Every observation is below istiod's largest bucket: a local push takes well under 30 s.
    assert.equal(
      sample(text, 'pilot_proxy_convergence_time_bucket{le="30"}'),
      sample(text, 'pilot_proxy_convergence_time_count'),
    );
    assert.ok(sample(text, 'weft_xds_push_duration_seconds_count{type="cds"}')! >= 1);
  });

  it('is valid Prometheus exposition (promtool check metrics)', async () => {
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: await scrape(),
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(check.error, undefined, 'promtool must be installed (scripts/install-test-deps.sh)');
    // promtool parses everything; its only remarks are naming lint on names Weft keeps on purpose: istiod's
    // counters (no _total, some ending in _count) and prom-client's nodejs_*_total gauges.
    const remarks = (check.stdout + check.stderr).split('\n').filter(Boolean);
    for (const line of remarks)
      assert.match(
        line,
        /^(citadel_server_\w+|pilot_\w+|nodejs_\w+) (counter|non-counter|non-histogram and non-summary) metrics should (not )?have "_(total|count)" suffix$/,
      );
  });
});
