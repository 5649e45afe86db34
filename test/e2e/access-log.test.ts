/**
 * Access logs from a real `weft proxy` process: an HTTP listener logging Istio's text format and a JSON
 * dictionary, TCP listeners logging to a file shared with the HTTP listener's JSON log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootstrapDoc, httpListener, staticCluster, tcpListener } from '../support/bootstrap.ts';
import { curl, request } from '../support/http.ts';
import { launcherNodeFlags, REPO, waitFor, writeBootstrap } from '../support/proxy.ts';
import { closedPort, startHttpUpstream, startTcpUpstream } from '../support/servers.ts';
import type { Upstream } from '../support/servers.ts';

const ISTIO_TEXT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% ' +
  '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

const HTTP_JSON = {
  kind: 'http',
  start_time: '%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  route_name: '%ROUTE_NAME%',
  user_agent: '%REQ(USER-AGENT)%',
};

const TCP_JSON = {
  kind: 'tcp',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  response_flags: '%RESPONSE_FLAGS%',
  protocol: '%PROTOCOL%',
};

const TCP_TEXT =
  '[%START_TIME%] %PROTOCOL% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%UPSTREAM_HOST%" ' +
  '%UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS% %REQ(:AUTHORITY)%\n';

function fileLog(file: string, logFormat: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: file,
      log_format: logFormat,
    },
  };
}

function withTcpAccessLog(listener: Record<string, unknown>, logs: unknown[]): Record<string, unknown> {
  const chains = listener.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[];
  chains[0].filters[0].typed_config.access_log = logs;
  return listener;
}

function lines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('access logs from a weft proxy process', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-access-log-'));
  const textLog = path.join(dir, 'http.log');
  const jsonLog = path.join(dir, 'all.json');
  const tcpTextLog = path.join(dir, 'tcp.log');
  let httpUp: Upstream;
  let tcpUp: Upstream;
  let child: ChildProcess;
  let output = '';
  const ports: Record<string, number> = {};

  before(async () => {
    httpUp = await startHttpUpstream();
    tcpUp = await startTcpUpstream((s) => s.on('data', (d: Buffer) => s.end(d)));
    const refused = await closedPort();
    const doc = bootstrapDoc(
      [
        httpListener({
          name: 'http',
          virtualHosts: [
            {
              name: 'all',
              domains: ['*'],
              routes: [
                { name: 'app-route', match: { prefix: '/app' }, route: { cluster: 'backend' } },
                { name: 'refused-route', match: { prefix: '/refused' }, route: { cluster: 'refused' } },
              ],
            },
          ],
          hcm: {
            access_log: [
              fileLog(textLog, { text_format_source: { inline_string: ISTIO_TEXT } }),
              fileLog(jsonLog, { json_format: HTTP_JSON }),
            ],
          },
        }),
        withTcpAccessLog(tcpListener({ name: 'tcp', cluster: 'tcp' }), [
          fileLog(jsonLog, { json_format: TCP_JSON }),
          fileLog(tcpTextLog, { text_format_source: { inline_string: TCP_TEXT } }),
        ]),
        withTcpAccessLog(tcpListener({ name: 'tcp-refused', cluster: 'refused' }), [
          fileLog(jsonLog, { json_format: TCP_JSON }),
        ]),
      ],
      [
        staticCluster('backend', [{ port: httpUp.port }]),
        staticCluster('refused', [{ port: refused }]),
        staticCluster('tcp', [{ port: tcpUp.port }]),
      ],
    );
    // From source, as `weft proxy` runs once built: the process is real, the code is this tree's.
    child = spawn(
      process.execPath,
      [
        ...launcherNodeFlags(),
        path.join(REPO, 'src/cli/main.ts'),
        'proxy',
        '--bootstrap',
        writeBootstrap(doc),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const ready = (await waitFor(() => /proxy ready (\{.*\})/.exec(output), 20_000, 'proxy ready'))!;
    const info = JSON.parse(ready[1]) as { listeners: string[] };
    for (const l of info.listeners) {
      const [name, addr] = l.split('@');
      ports[name] = Number(addr.split(':').pop());
    }
  });

  after(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await httpUp.close();
    await tcpUp.close();
  });

  it('logs HTTP exchanges in Istio text format and as JSON', async () => {
    const got = await curl(['-A', 'curl-access-log-test', `http://127.0.0.1:${ports.http}/app/one`]);
    assert.equal(got.code, 0, got.stderr);
    const post = await request(ports.http, {
      method: 'POST',
      path: '/app/post',
      body: 'hello',
      headers: { 'user-agent': 'node-test', 'x-request-id': 'rid-1' },
    });
    assert.equal(post.status, 200);
    const nr = await request(ports.http, { path: '/nothing' });
    assert.equal(nr.status, 404);
    const uf = await request(ports.http, { path: '/refused' });
    assert.equal(uf.status, 503);

    const text = (await waitFor(
      () => (lines(textLog).length >= 4 ? lines(textLog) : null),
      5000,
      'text lines',
    ))!;
    const upstream = `127.0.0.1:${httpUp.port}`;
    const curlLine = text.find((l) => l.includes('curl-access-log-test'))!;
    assert.match(
      curlLine,
      new RegExp(
        String.raw`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /app/one HTTP/1\.1" 200 - via_upstream - "-" 0 (\d+) (\d+) - "-" "curl-access-log-test" "[^"]+" "127\.0\.0\.1:${ports.http}" "${upstream}" backend - 127\.0\.0\.1:${ports.http} 127\.0\.0\.1:\d+ - app-route$`,
      ),
    );
    const postLine = text.find((l) => l.includes('"POST /app/post'))!;
    assert.match(postLine, / 200 - via_upstream - "-" 5 \d+ \d+ - "-" "node-test" "rid-1" /);
    const nrLine = text.find((l) => l.includes('/nothing'))!;
    assert.match(nrLine, /"GET \/nothing HTTP\/1\.1" 404 NR route_not_found - "-" 0 0 \d+ /);
    assert.match(nrLine, / "-" - - 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - -$/);
    const ufLine = text.find((l) => l.includes('/refused'))!;
    assert.match(ufLine, /" 503 UF upstream_reset_before_response_started\{connection_failure\} /);
    assert.match(ufLine, / refused - 127\.0\.0\.1/);

    const json = (await waitFor(
      () => {
        const http = lines(jsonLog)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((o) => o.kind === 'http');
        return http.length >= 4 ? http : null;
      },
      5000,
      'json lines',
    ))!;
    const one = json.find((o) => o.path === '/app/one')!;
    assert.deepEqual(Object.keys(one), Object.keys(HTTP_JSON));
    assert.match(one.start_time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(one.method, 'GET');
    assert.equal(one.protocol, 'HTTP/1.1');
    assert.equal(one.response_code, 200);
    assert.equal(one.response_flags, null);
    assert.equal(one.bytes_received, 0);
    assert.equal(typeof one.bytes_sent, 'number');
    assert.ok((one.bytes_sent as number) > 0);
    assert.equal(typeof one.duration, 'number');
    assert.equal(one.upstream_host, upstream);
    assert.equal(one.upstream_cluster, 'backend');
    assert.equal(one.route_name, 'app-route');
    assert.equal(one.user_agent, 'curl-access-log-test');
    const posted = json.find((o) => o.path === '/app/post')!;
    assert.equal(posted.bytes_received, 5);
    const noRoute = json.find((o) => o.path === '/nothing')!;
    assert.deepEqual(
      [noRoute.response_code, noRoute.response_flags, noRoute.upstream_host, noRoute.route_name],
      [404, 'NR', null, null],
    );
    const failed = json.find((o) => o.path === '/refused')!;
    assert.equal(failed.response_code, 503);
    assert.equal(failed.response_flags, 'UF');
    assert.equal(failed.upstream_cluster, 'refused');
  });

  it('logs TCP sessions to the file the HTTP listener shares, with UF for a refused upstream', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = net.connect(ports.tcp, '127.0.0.1', () => s.write('ping!'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', reject);
      s.setTimeout(5000, () => s.destroy(new Error('tcp timeout')));
    });
    assert.equal(echoed, 'ping!');
    await new Promise<void>((resolve) => {
      const s = net.connect(ports['tcp-refused'], '127.0.0.1');
      s.on('close', () => resolve());
      s.on('error', () => undefined);
      s.setTimeout(5000, () => s.destroy());
    });

    const tcp = (await waitFor(
      () => {
        const found = lines(jsonLog)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((o) => o.kind === 'tcp');
        return found.length >= 2 ? found : null;
      },
      5000,
      'tcp lines',
    ))!;
    const ok = tcp.find((o) => o.upstream_host === `127.0.0.1:${tcpUp.port}`)!;
    assert.ok(ok, JSON.stringify(tcp));
    assert.equal(ok.bytes_received, 5);
    assert.equal(ok.bytes_sent, 5);
    assert.equal(typeof ok.duration, 'number');
    assert.equal(ok.response_flags, null);
    assert.equal(ok.protocol, null);
    assert.match(ok.upstream_local_address as string, /^127\.0\.0\.1:\d+$/);
    assert.match(ok.downstream_remote_address as string, /^127\.0\.0\.1:\d+$/);
    const text = await waitFor(() => lines(tcpTextLog)[0], 5000, 'tcp text line');
    assert.match(
      text,
      new RegExp(
        String.raw`^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] - - 5 5 \d+ "127\.0\.0\.1:${tcpUp.port}" tcp 127\.0\.0\.1:\d+ -$`,
      ),
    );
    const refused = tcp.find((o) => o.response_flags !== null)!;
    assert.ok(refused, JSON.stringify(tcp));
    assert.equal(refused.response_flags, 'UF');
    assert.equal(refused.bytes_received, 0);
    assert.equal(refused.bytes_sent, 0);
  });
});
