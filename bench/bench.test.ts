// Tests of the benchmark harness's parsers and arithmetic (no load is generated here).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { Sample } from './aggregate.ts';
import { checkGoals, filterCosts, median, summarize } from './aggregate.ts';
import { caIssuanceLine, parseIssuance, summarizeIssuance } from './ca/section.ts';
import type { BenchPki } from './pki.ts';
import { BENCH_CLIENT_ID, BENCH_SERVER_DNS, BENCH_SERVER_ID, makeBenchPki } from './pki.ts';
import { CpuMeter, parseStat, parseStatus, processTree } from './procstat.ts';
import { parseCpuProfile, topSelfTime } from './profile.ts';
import { filterCostLines } from './report.ts';
import type { TargetName } from './targets.ts';
import {
  TARGET_NAMES,
  findReferenceDir,
  hopsOf,
  isMtlsTarget,
  nginxClientTls,
  nginxCommand,
  nginxConfig,
  nginxServerTls,
  plainCounterpart,
  referenceFor,
  weftClientTls,
  weftServerTls,
} from './targets.ts';
import type { BenchFilterSet } from './weft-bootstrap.ts';
import { benchBootstrap, benchBootstrapYaml } from './weft-bootstrap.ts';
import { compileBootstrap } from '../src/proxy/bootstrap/compile.ts';
import { parseBootstrapText } from '../src/proxy/bootstrap/parse-text.ts';
import type { FixedRateResult, SaturationResult } from './wrk.ts';
import { parseFixedRate, parseSaturation } from './wrk.ts';

void describe('procstat', () => {
  void it('counts stat fields after the last parenthesis, whatever the command name holds', () => {
    const line =
      '4242 (we) ird (name)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 99 1000 200';
    assert.deepEqual(parseStat(line), { pid: 4242, ppid: 17, cpuTicks: 325 });
  });

  void it('reads VmRSS and VmHWM in kB, and 0 when absent', () => {
    const status = 'Name:\tnode\nVmHWM:\t   51234 kB\nVmRSS:\t   48000 kB\nThreads:\t7\n';
    assert.deepEqual(parseStatus(status), { rssKb: 48000, hwmKb: 51234 });
    assert.deepEqual(parseStatus('Name:\tkthreadd\n'), { rssKb: 0, hwmKb: 0 });
  });

  void it('finds a child process and measures the CPU it burns', { timeout: 20_000 }, async () => {
    // A parent that forks a busy child: the child's CPU must be charged to the parent's tree.
    const code =
      "const c = require('node:child_process').spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 600);'], { stdio: 'inherit' });" +
      "console.log('ready'); c.on('exit', () => process.exit(0));";
    const parent = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(parent.stdout, 'data');
      const tree = processTree(parent.pid!);
      assert.equal(tree[0], parent.pid);
      assert.ok(tree.length >= 2, `expected the child in the tree, got ${tree.join(',')}`);
      const meter = new CpuMeter([parent.pid!]);
      meter.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const cpu = meter.stop();
      // 300 ms of wall time with one busy process: at least a third of it must show.
      assert.ok(cpu >= 0.1 && cpu <= 0.8, `cpu ${cpu} s`);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

void describe('wrk output', () => {
  void it('reads the fixed-rate script JSON line among other stderr output', () => {
    const stderr =
      'some warning\nJSON {"requests":2990,"duration_us":3001234,"rps":996.3,"errors":1,"non2xx":2,' +
      '"p50":180,"p90":260,"p99":900,"p999":2100,"max":3000,"mean":201.5}\n';
    const r = parseFixedRate(stderr);
    assert.equal(r.requests, 2990);
    assert.equal(r.p99Us, 900);
    assert.equal(r.non2xx, 2);
    assert.equal(r.meanUs, 201.5);
  });

  void it('fails clearly when the JSON line is missing', () => {
    assert.throws(() => parseFixedRate('nothing here'), /no "JSON \{\.\.\.\}" line/);
  });

  void it('reads totals, rate, latency and errors from the plain summary', () => {
    const stdout = [
      'Running 3s test @ http://127.0.0.1:40000/',
      '  1 threads and 64 connections',
      '  Thread Stats   Avg      Stdev     Max   +/- Stdev',
      '    Latency     1.16ms  326.52us  10.27ms   92.60%',
      '    Req/Sec    55.35k     2.87k   58.93k    80.00%',
      '  165219 requests in 3.00s, 193.18MB read',
      '  Socket errors: connect 0, read 12, write 0, timeout 3',
      '  Non-2xx or 3xx responses: 7',
      'Requests/sec:  55065.27',
      'Transfer/sec:     64.38MB',
    ].join('\n');
    const r = parseSaturation(stdout);
    assert.equal(r.requests, 165219);
    assert.equal(r.durationS, 3);
    assert.equal(r.rps, 55065.27);
    assert.equal(r.latencyAvgMs, 1.16);
    assert.deepEqual(r.errors, { connect: 0, read: 12, write: 0, timeout: 3 });
    assert.equal(r.non2xx, 7);
  });

  void it('converts microsecond latencies and defaults absent error lines to zero', () => {
    const r = parseSaturation(
      '    Latency   850.00us\n  1000 requests in 1.00m, 1MB read\nRequests/sec:     16.67\n',
    );
    assert.equal(r.latencyAvgMs, 0.85);
    assert.equal(r.durationS, 60);
    assert.equal(r.non2xx, 0);
  });
});

function fixed(p50Us: number, p99Us: number, requests = 10_000): FixedRateResult {
  return {
    requests,
    durationUs: 10e6,
    rps: requests / 10,
    errors: 0,
    non2xx: 0,
    p50Us,
    p90Us: p50Us * 2,
    p99Us,
    p999Us: p99Us * 2,
    maxUs: p99Us * 3,
    meanUs: p50Us,
  };
}

function saturation(requests: number): SaturationResult {
  return {
    requests,
    durationS: 10,
    rps: requests / 10,
    latencyAvgMs: 1,
    errors: { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: 0,
  };
}

function sample(
  rep: number,
  target: TargetName,
  p50Us: number,
  cpuFixed: number | null,
  cpuSat: number | null,
  rssKb: number,
): Sample {
  const proxied = cpuFixed !== null;
  const measured = (cpu: number | null) => ({
    proxyCpuS: cpu,
    upstreamCpuS: 1,
    rssPeakKb: proxied ? rssKb : null,
    rssPeakPerProxyKb: proxied ? [rssKb] : [],
    hwmKb: proxied ? rssKb : null,
    rssSamples: 40,
  });
  return {
    rep,
    position: 0,
    target,
    hops: target === 'direct' ? 0 : 1,
    fixed: { wrk: fixed(p50Us, p50Us * 5), measured: measured(cpuFixed) },
    saturation: { wrk: saturation(500_000), measured: measured(cpuSat) },
  };
}

void describe('aggregation', () => {
  void it('takes medians of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  void it('subtracts direct within the same repetition and takes ratios to nginx', () => {
    const samples = [
      // Repetition 0 is slow for everyone: per-repetition subtraction must cancel it.
      sample(0, 'direct', 1100, null, null, 0),
      sample(0, 'nginx', 1200, 0.6, 10, 13 * 1024),
      sample(0, 'weft', 1400, 1.5, 50, 50 * 1024),
      sample(1, 'direct', 100, null, null, 0),
      sample(1, 'nginx', 200, 0.6, 10, 13 * 1024),
      sample(1, 'weft', 400, 1.5, 50, 70 * 1024),
      sample(2, 'direct', 100, null, null, 0),
      sample(2, 'nginx', 200, 0.6, 10, 13 * 1024),
      sample(2, 'weft', 400, 1.5, 50, 55 * 1024),
    ];
    const s = summarize(samples, ['direct', 'nginx', 'weft']);
    assert.equal(s.direct.addedMs, null);
    assert.equal(s.nginx.addedMs?.p50?.median, 0.1);
    assert.equal(s.weft.addedMs?.p50?.median, 0.3);
    assert.ok(Math.abs(s.weft.ratioToReference!.addedP50! - 3) < 1e-9);
    // 0.6 CPU-s over 10 000 requests = 0.06 vCPU per 1000 rps.
    assert.ok(Math.abs(s.nginx.vcpuPer1000Rps!.median - 0.06) < 1e-12);
    assert.ok(Math.abs(s.weft.ratioToReference!.vcpuPer1000Rps! - 2.5) < 1e-9);
    assert.equal(s.nginx.rpsPerCore?.median, 50_000);
    assert.ok(Math.abs(s.weft.ratioToReference!.rpsPerCore! - 0.2) < 1e-9);
    assert.equal(s.weft.rssPerProxyMb?.max, 70);

    assert.deepEqual(
      checkGoals(s).map((g) => [g.target, g.goal, g.met]),
      [
        ['weft', 'vCPU per 1000 rps ≤ 3× nginx', true],
        ['weft', 'rps per proxy core ≥ 0.35× nginx', false],
        ['weft', 'added p50 per hop ≤ 2× nginx', false],
        ['weft', 'RSS under load ≤ 60 MB per proxy (worst repetition)', false],
      ],
    );
  });

  void it('takes the filter targets against plain weft, outside the nginx targets', () => {
    const samples = [0, 1, 2].flatMap((rep) => [
      sample(rep, 'direct', 100, null, null, 0),
      sample(rep, 'nginx', 200, 0.6, 10, 13 * 1024),
      // 1.0 CPU-s for 10 000 requests at the fixed rate; 500 000 requests per 25 CPU-s at saturation.
      sample(rep, 'weft', 400, 1.0, 25, 50 * 1024),
      sample(rep, 'weft-ratelimit', 420, 1.1, 27.5, 50 * 1024),
      sample(rep, 'weft-resilience', 500 + rep, 1.5, 40, 52 * 1024),
    ]);
    const targets: TargetName[] = ['direct', 'nginx', 'weft', 'weft-ratelimit', 'weft-resilience'];
    const s = summarize(samples, targets);
    assert.equal(s['weft-ratelimit'].ratioToReference, null);
    assert.deepEqual(
      [...new Set(checkGoals(s).map((g) => g.target))],
      ['weft'],
      'no nginx target is checked for a filter target',
    );
    const costs = filterCosts(s, targets);
    assert.deepEqual(
      costs.map((c) => [c.target, c.costOf, c.baseline]),
      [
        ['weft-ratelimit', 'local rate limiting', 'weft'],
        ['weft-resilience', 'the resilience filter set', 'weft'],
      ],
    );
    const [rl, res] = costs;
    assert.ok(Math.abs(rl.cpuRatio! - 1.1) < 1e-9, `cpu ratio ${rl.cpuRatio}`);
    assert.ok(Math.abs(rl.rpsPerCoreRatio! - 1 / 1.1) < 1e-9, `rps per core ratio ${rl.rpsPerCoreRatio}`);
    assert.ok(Math.abs(rl.extraP50Ms! - 0.02) < 1e-9);
    assert.ok(Math.abs(res.cpuRatio! - 1.5) < 1e-9);
    assert.ok(Math.abs(res.addedP50Ms! - 0.401) < 1e-9, 'median over the repetitions');
    assert.ok(Math.abs(res.extraP99Ms! - (2.005 - 1.5)) < 1e-9, 'p99 is 5× p50 here, less direct');
    const lines = filterCostLines(costs);
    assert.match(
      lines[0],
      /^- cost of local rate limiting \(weft-ratelimit\): 1\.10× the plain proxy's CPU per request/,
    );
    assert.match(lines[1], /^- cost of the resilience filter set \(weft-resilience\): 1\.50×/);
  });

  void it("checks full telemetry against the issue's 25% bound, at the fixed rate and at saturation", () => {
    const run = (cpu: number, saturationCpu: number): string => {
      const samples = [0, 1, 2].flatMap((rep) => [
        sample(rep, 'direct', 100, null, null, 0),
        sample(rep, 'weft', 300, 1.0, 25, 50 * 1024),
        sample(rep, 'weft-telemetry', 320, cpu, saturationCpu, 60 * 1024),
      ]);
      const targets: TargetName[] = ['direct', 'weft', 'weft-telemetry'];
      const [cost] = filterCosts(summarize(samples, targets), targets);
      assert.equal(cost.maxCpuRatio, 1.25);
      return filterCostLines([cost])[0];
    };
    assert.match(run(1.2, 30), /target ≤ 1\.25× CPU per request at the fixed rate and at saturation: met$/);
    assert.match(run(1.3, 30), /: NOT met$/, 'over the bound at the fixed rate');
    assert.match(run(1.2, 32.5), /: NOT met$/, '1.3× the CPU per request at saturation');
  });

  void it('says a filter cost is not evaluated when plain weft has no figures', () => {
    const samples = [sample(0, 'direct', 100, null, null, 0), sample(0, 'weft-ratelimit', 300, 1, 25, 1024)];
    const costs = filterCosts(summarize(samples, ['direct', 'weft-ratelimit']), ['direct', 'weft-ratelimit']);
    assert.equal(costs[0].cpuRatio, null);
    assert.match(filterCostLines(costs)[0], /not evaluated/);
  });
});

void describe('cpuprofile', () => {
  void it('charges each sample the time until the next one and ranks by self time, idle excluded', () => {
    const frame = (functionName: string, url = '', lineNumber = -1) => ({
      functionName,
      url,
      lineNumber,
      columnNumber: 0,
    });
    const profile = parseCpuProfile(
      JSON.stringify({
        nodes: [
          { id: 1, callFrame: frame('(root)') },
          { id: 2, callFrame: frame('hot', 'file:///repo/dist/a.js', 9) },
          { id: 3, callFrame: frame('hot', 'file:///repo/dist/a.js', 9) },
          { id: 4, callFrame: frame('(idle)') },
          { id: 5, callFrame: frame('', 'node:http', 0) },
        ],
        samples: [2, 3, 4, 5, 2],
        timeDeltas: [0, 1000, 3000, 5000, 1000],
      }),
    );
    const top = topSelfTime(profile, 10, 'file:///repo/');
    assert.deepEqual(
      top.map((t) => [t.functionName, t.location, t.selfMs]),
      [
        ['hot', 'dist/a.js:10', 4],
        ['(anonymous)', 'node:http:1', 1],
      ],
    );
    assert.equal(top[0].share, 0.8);
  });
});

void describe('weft bootstrap', () => {
  void it('describes one listener routing everything to one static cluster, with admin', () => {
    const options = {
      nodeId: 'bench-1',
      listen: { host: '127.0.0.1', port: 10001 },
      admin: { host: '127.0.0.1', port: 10002 },
      upstream: { host: '127.0.0.1', port: 10003 },
    };
    const parsed = parseYaml(benchBootstrapYaml(options));
    assert.deepEqual(parsed, JSON.parse(JSON.stringify(benchBootstrap(options))));
    assert.equal(parsed.admin.address.socket_address.port_value, 10002);
    const listener = parsed.static_resources.listeners[0];
    assert.equal(listener.address.socket_address.port_value, 10001);
    const hcm = listener.filter_chains[0].filters[0].typed_config;
    assert.equal(hcm.codec_type, 'AUTO');
    assert.equal(hcm.stat_prefix, 'bench');
    assert.deepEqual(hcm.route_config.virtual_hosts[0].routes, [
      { match: { prefix: '/' }, route: { cluster: 'upstream' } },
    ]);
    const cluster = parsed.static_resources.clusters[0];
    assert.equal(cluster.name, 'upstream');
    assert.equal(cluster.type, 'STATIC');
    assert.equal(
      cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value,
      10003,
    );
  });
});

void describe('weft bootstrap variants', () => {
  const options = (filters: BenchFilterSet) => ({
    nodeId: `bench-${filters}`,
    listen: { host: '127.0.0.1', port: 10001 },
    admin: { host: '127.0.0.1', port: 10002 },
    upstream: { host: '127.0.0.1', port: 10003 },
    filters,
    ...(filters === 'telemetry' || filters === 'tracing'
      ? {
          telemetry: {
            accessLogPath: '/tmp/bench.access.log',
            collector: { host: '127.0.0.1', port: 10004 },
          },
        }
      : {}),
  });
  // The proxy's own validator: what `weft proxy --bootstrap` runs before it starts.
  const compiled = (filters: BenchFilterSet) =>
    compileBootstrap(parseBootstrapText(benchBootstrapYaml(options(filters)), 'bench.yaml'), 'bench.yaml');
  const filterNames = (filters: BenchFilterSet): string[] => {
    const hcm = compiled(filters).listeners[0].filterChains[0].filters[0];
    assert.equal(hcm.kind, 'http_connection_manager');
    return hcm.kind === 'http_connection_manager' ? hcm.hcm.httpFilters.map((f) => f.name) : [];
  };

  void it('keeps the plain bootstrap as it was: the router alone', () => {
    assert.deepEqual(
      benchBootstrap(options('plain')),
      benchBootstrap({ ...options('plain'), filters: undefined }),
    );
    assert.deepEqual(filterNames('plain'), ['envoy.filters.http.router']);
  });

  void it('has the proxy accept the rate limit variant, a bucket that never denies', () => {
    assert.deepEqual(filterNames('ratelimit'), [
      'envoy.filters.http.local_ratelimit',
      'envoy.filters.http.router',
    ]);
    const parsed = parseYaml(benchBootstrapYaml(options('ratelimit')));
    const rl =
      parsed.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]
        .typed_config;
    assert.equal(rl.enable_x_ratelimit_headers, 'DRAFT_VERSION_03');
    assert.ok(rl.token_bucket.tokens_per_fill >= 1e9 && rl.token_bucket.fill_interval === '1s');
  });

  void it('has the proxy accept the resilience variant with its route and cluster policies', () => {
    assert.deepEqual(filterNames('resilience'), [
      'envoy.filters.http.cors',
      'envoy.filters.http.fault',
      'envoy.filters.http.local_ratelimit',
      'envoy.filters.http.router',
    ]);
    const config = compiled('resilience');
    const cluster = config.clusters[0];
    assert.equal(cluster.lbPolicy, 'ROUND_ROBIN');
    assert.equal(cluster.outlierDetection?.consecutive5xx, 5);
    assert.ok((cluster.circuitBreakers?.maxRequests ?? 0) >= 1e6);
    const text = benchBootstrapYaml(options('resilience'));
    assert.doesNotMatch(text, /[&*]a\d/, 'no YAML anchors or aliases');
    const route =
      parseYaml(text).static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config
        .virtual_hosts[0].routes[0];
    assert.deepEqual(route.route.retry_policy.retriable_status_codes, [503]);
    assert.equal(route.route.timeout, '15s');
    assert.equal(route.typed_per_filter_config['envoy.filters.http.fault'].abort.percentage.numerator, 0);
  });

  void it('has the proxy accept the telemetry variants: Istio metrics, access log, tracing at 1% or 100%', () => {
    for (const [filters, sampling] of [
      ['telemetry', 1],
      ['tracing', 100],
    ] as const) {
      assert.deepEqual(filterNames(filters), [
        'istio.metadata_exchange',
        'istio.stats',
        'envoy.filters.http.router',
      ]);
      const config = compiled(filters);
      const hcm = config.listeners[0].filterChains[0].filters[0];
      assert.ok(hcm.kind === 'http_connection_manager');
      assert.equal(hcm.hcm.accessLog.length, 1);
      assert.ok(hcm.hcm.tracing !== undefined);
      assert.equal(config.listeners[0].trafficDirection, 'OUTBOUND');
      assert.deepEqual(
        config.clusters.map((c) => c.name),
        ['upstream', 'zipkin'],
      );
      const text = parseYaml(benchBootstrapYaml(options(filters)));
      const tracing = text.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.tracing;
      assert.equal(tracing.random_sampling.value, sampling);
    }
    assert.throws(() => benchBootstrap({ ...options('telemetry'), telemetry: undefined }), /needs telemetry/);
  });

  void it('names the filter targets as one-hop Weft targets with no nginx reference', () => {
    for (const name of ['weft-ratelimit', 'weft-resilience', 'weft-telemetry', 'weft-tracing'] as const) {
      assert.ok(TARGET_NAMES.includes(name));
      assert.equal(hopsOf(name), 1);
      assert.equal(referenceFor(name), undefined);
    }
    assert.equal(referenceFor('weft'), 'nginx');
  });
});

void describe('mTLS two-hop chains', () => {
  const pkiDir = mkdtempSync(path.join(tmpdir(), 'weft-bench-pki-'));
  after(() => rmSync(pkiDir, { recursive: true, force: true }));
  let pki: BenchPki | undefined;
  const benchPki = (): BenchPki => (pki ??= makeBenchPki(pkiDir));
  const hop = (port: number) => ({
    nodeId: `bench-${port}`,
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: port + 1 },
    upstream: { host: '127.0.0.1', port: port + 2 },
  });
  const compiled = (text: string) => compileBootstrap(parseBootstrapText(text, 'bench.yaml'), 'bench.yaml');

  void it('names the mTLS chains as two-hop targets compared with nginx doing mTLS', () => {
    for (const name of ['nginx-mtls-2hop', 'weft-mtls-2hop', 'weft-mtls-h2-2hop'] as const) {
      assert.ok(TARGET_NAMES.includes(name));
      assert.ok(isMtlsTarget(name));
      assert.equal(hopsOf(name), 2);
      assert.equal(referenceFor(name), 'nginx-mtls-2hop');
    }
    assert.equal(plainCounterpart('weft-mtls-h2-2hop'), 'weft-2hop');
    assert.equal(plainCounterpart('nginx-mtls-2hop'), 'nginx-2hop');
    assert.equal(referenceFor('weft-2hop'), 'nginx-2hop', 'the plain chain keeps its reference');
    assert.ok(!isMtlsTarget('weft-2hop'));
  });

  void it('makes SPIFFE certificates chained to one root', () => {
    const p = benchPki();
    const root = new X509Certificate(readFileSync(p.caFile));
    const server = new X509Certificate(readFileSync(p.server.certFile));
    const client = new X509Certificate(readFileSync(p.client.certFile));
    assert.ok(server.verify(root.publicKey) && client.verify(root.publicKey));
    assert.match(server.subjectAltName ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/bench\/sa\/server/);
    assert.match(server.subjectAltName ?? '', new RegExp(`DNS:${BENCH_SERVER_DNS.replaceAll('.', '\\.')}`));
    assert.equal(client.subjectAltName, `URI:${BENCH_CLIENT_ID}`);
    assert.equal(root.ca, true);
  });

  void it('has the proxy accept the server side: a listener requiring a client certificate', () => {
    const text = benchBootstrapYaml({ ...hop(10001), downstreamTls: weftServerTls(benchPki()) });
    const chain = compiled(text).listeners[0].filterChains[0];
    assert.equal(chain.tls?.requireClientCertificate, true);
    assert.deepEqual(chain.tls?.alpnProtocols, ['h2', 'http/1.1']);
    assert.equal(chain.tls?.validation?.trust.kind, 'static');
    const cluster = compiled(text).clusters[0];
    assert.equal(cluster.tls, undefined, 'plain HTTP to the upstream');
  });

  for (const protocol of ['http/1.1', 'h2'] as const) {
    void it(`has the proxy accept the client side with ALPN ${protocol}`, () => {
      const text = benchBootstrapYaml({ ...hop(10001), upstreamTls: weftClientTls(benchPki(), protocol) });
      const config = compiled(text);
      assert.equal(config.listeners[0].filterChains[0].tls, undefined, 'plain HTTP from the client');
      const cluster = config.clusters[0];
      assert.equal(cluster.tls?.maxSessionKeys, 1);
      assert.deepEqual(cluster.tls?.alpnProtocols, [protocol]);
      assert.deepEqual(
        cluster.tls?.validation?.sanMatchers.length,
        1,
        'the server is checked by its SPIFFE ID',
      );
      assert.match(text, new RegExp(`exact: ${BENCH_SERVER_ID.replaceAll('/', '\\/')}`));
      assert.equal(cluster.http2 !== undefined, protocol === 'h2');
    });
  }

  void it('writes nginx configs for both sides that nginx -t accepts', { timeout: 30_000 }, (t) => {
    if (spawnSync(nginxCommand(), ['-v']).error) {
      t.skip('nginx is not installed');
      return;
    }
    const template = readFileSync(
      path.join(
        findReferenceDir(path.resolve(import.meta.dirname, '..')),
        'nginx-reverse-proxy.conf.template',
      ),
      'utf8',
    );
    const p = benchPki();
    for (const [side, tls] of [
      ['server', nginxServerTls(p)],
      ['client', nginxClientTls(p)],
    ] as const) {
      const run = mkdtempSync(path.join(pkiDir, `nginx-${side}-`));
      const conf = nginxConfig(template, {
        run,
        listen: { host: '127.0.0.1', port: 10001 },
        upstream: { host: '127.0.0.1', port: 10002 },
        tls,
      });
      if (side === 'server') {
        assert.match(conf, /listen 127\.0\.0\.1:10001 ssl;/);
        assert.match(conf, /ssl_verify_client on;/);
        assert.match(conf, /proxy_pass http:\/\/up;/);
      } else {
        assert.match(conf, /listen 127\.0\.0\.1:10001;/);
        assert.match(conf, /proxy_pass https:\/\/up;/);
        for (const d of ['proxy_ssl_verify on;', 'proxy_ssl_session_reuse on;', 'proxy_ssl_certificate ']) {
          assert.ok(conf.includes(d), d);
        }
      }
      assert.match(conf, /keepalive 128;/, 'the keep-alive pool to the next hop stays');
      writeFileSync(path.join(run, 'nginx.conf'), conf);
      const r = spawnSync(
        nginxCommand(),
        ['-t', '-q', '-p', run, '-e', path.join(run, 'error.log'), '-c', path.join(run, 'nginx.conf')],
        { encoding: 'utf8', timeout: 10_000 },
      );
      assert.equal(r.status, 0, `nginx -t (${side}): ${r.stderr}`);
    }
  });

  void it('checks issue #5 for the Weft mTLS chain: added p99 against nginx with mTLS', () => {
    const s2 = (rep: number, target: TargetName, p50Us: number): Sample => ({
      ...sample(rep, target, p50Us, target === 'direct' ? null : 1, target === 'direct' ? null : 25, 1024),
      hops: target === 'direct' ? 0 : 2,
    });
    const targets: TargetName[] = ['direct', 'nginx-mtls-2hop', 'weft-mtls-2hop'];
    const samples = [0, 1, 2].flatMap((rep) => [
      s2(rep, 'direct', 100),
      s2(rep, 'nginx-mtls-2hop', 300),
      s2(rep, 'weft-mtls-2hop', 600),
    ]);
    const s = summarize(samples, targets);
    // p99 is 5× p50 here: (3000 - 500) / (1500 - 500) = 2.5.
    assert.ok(Math.abs(s['weft-mtls-2hop'].ratioToReference!.addedP99! - 2.5) < 1e-9);
    const goal = checkGoals(s).find((g) => g.goal.includes('issue #5'));
    assert.deepEqual(
      [goal?.target, goal?.goal, goal?.met],
      ['weft-mtls-2hop', 'added p99 ≤ 2× nginx-mtls-2hop (issue #5)', false],
    );
  });

  void it('does not evaluate a ratio to a reference whose added latency came out at or below zero', () => {
    const s2 = (rep: number, target: TargetName, p50Us: number): Sample => ({
      ...sample(rep, target, p50Us, target === 'direct' ? null : 1, target === 'direct' ? null : 25, 1024),
      hops: target === 'direct' ? 0 : 2,
    });
    const targets: TargetName[] = ['direct', 'nginx-mtls-2hop', 'weft-mtls-2hop'];
    // The direct run's tail was the slowest: nginx's added latency is negative.
    const samples = [0, 1, 2].flatMap((rep) => [
      s2(rep, 'direct', 400),
      s2(rep, 'nginx-mtls-2hop', 300),
      s2(rep, 'weft-mtls-2hop', 600),
    ]);
    const s = summarize(samples, targets);
    assert.equal(s['weft-mtls-2hop'].ratioToReference!.addedP99, null);
    const goal = checkGoals(s).find((g) => g.goal.includes('issue #5'));
    assert.equal(goal?.met, null);
  });
});

void describe('CA issuance section', () => {
  void it('reads the issuance line and checks the rate against 200 certificates/s', () => {
    const run = parseIssuance('1000 certificates in 0.50 s: 2000/s (8 in flight), 486 µs CPU each\n');
    assert.deepEqual(run, { count: 1000, seconds: 0.5, certsPerS: 2000, cpuUsPerCert: 486 });
    assert.throws(() => parseIssuance('oops'), /no result line/);
    const options = { count: 1000, inFlight: 8, reps: 3 };
    const fast = summarizeIssuance(options, [run, { ...run, certsPerS: 1500 }, { ...run, certsPerS: 2500 }]);
    assert.equal(fast.met, true);
    assert.equal(fast.certsPerS?.median, 2000);
    assert.match(
      caIssuanceLine(fast),
      /≥ 200 certificates\/s: 2000\/s \[1500, 2500\], 486 µs CPU per certificate — met$/,
    );
    assert.equal(summarizeIssuance(options, [{ ...run, certsPerS: 150 }]).met, false);
  });
});
