import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO, startProxy } from '../support/proxy.ts';
import { closedPort } from '../support/servers.ts';
import { request } from '../support/http.ts';

interface Port {
  socket_address: { port_value: number };
}
interface Doc {
  admin: { address: Port };
  static_resources: {
    listeners: { name: string; address: Port }[];
    clusters: { load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: Port } }[] }[] } }[];
  };
}

describe('the README example bootstrap', { timeout: 30_000 }, () => {
  it('the front proxy serves through its demo backend', async () => {
    const doc = parse(readFileSync(path.join(REPO, 'examples/bootstrap/front-proxy.yaml'), 'utf8')) as Doc;
    // The same file with its fixed ports swapped for free ones, so the test never collides with anything.
    const backendPort = await closedPort();
    doc.admin.address.socket_address.port_value = 0;
    const [front, backend] = doc.static_resources.listeners;
    front.address.socket_address.port_value = 0;
    backend.address.socket_address.port_value = backendPort;
    doc.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value =
      backendPort;
    const p = await startProxy(doc);
    try {
      const r = await request(p.port('front'), { path: '/' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello from the demo backend\n');
      assert.equal(r.headers['x-served-by'], 'weft-front-proxy');
      assert.equal((await request(p.port('front'), { path: '/healthz' })).body, 'ok\n');
      const moved = await request(p.port('front'), { path: '/old/x', headers: { host: 'demo' } });
      assert.equal(moved.status, 301);
      assert.equal(moved.headers.location, 'http://demo/x');
    } finally {
      await p.stop();
    }
  });
});

describe('the README example mesh', { timeout: 30_000 }, () => {
  it('passes `weft analyze` with no diagnostic at all', async () => {
    const { execFile } = await import('node:child_process');
    const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [path.join(REPO, 'src/cli/main.ts'), 'analyze', path.join(REPO, 'examples/mesh')],
        (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }),
      ),
    );
    assert.equal(out.code, 0, out.stdout);
    assert.match(out.stdout, /4 resources analyzed: 0 errors, 0 warnings, 0 infos/);
  });
});
