import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, setLogLevel } from '../../core/logger.ts';
import { createCluster } from './cluster.ts';
import type { DnsAnswer, DnsResolve } from './dns.ts';
import { systemDnsResolve } from './dns.ts';
import { seededRandom, testClusterConfig } from './testing.ts';
import type { ClusterConfig, EndpointConfig, Host, LocalityEndpoints } from './types.ts';

// Resolution failures are expected here; keep their warnings out of the test output.
setLogLevel('error');
const logger = createLogger('test');

function locality(endpoints: EndpointConfig[], priority = 0): LocalityEndpoints {
  return { locality: { region: 'r', zone: 'z', subZone: '' }, priority, weight: undefined, endpoints };
}

function named(hostname: string, port = 80, weight = 1): EndpointConfig {
  return { address: hostname, port, weight, health: 'HEALTHY', hostname };
}

/** A resolver that answers from per-name scripts; the last entry of a script repeats. */
function scriptedResolver(
  scripts: Record<string, (string[] | Error | DnsAnswer)[]>,
): DnsResolve & { calls: string[] } {
  const position = new Map<string, number>();
  const calls: string[] = [];
  const resolve = (hostname: string): Promise<DnsAnswer> => {
    calls.push(hostname);
    const script = scripts[hostname] ?? [new Error(`ENOTFOUND ${hostname}`)];
    const at = position.get(hostname) ?? 0;
    position.set(hostname, at + 1);
    const step = script[Math.min(at, script.length - 1)];
    if (step instanceof Error) return Promise.reject(step);
    if (Array.isArray(step)) return Promise.resolve({ addresses: step, ttlSeconds: undefined });
    return Promise.resolve(step);
  };
  return Object.assign(resolve, { calls });
}

function dnsConfig(overrides: Partial<ClusterConfig>): ClusterConfig {
  // A long refresh rate: these tests drive rounds with refreshDns() unless they test the timer.
  return testClusterConfig({ type: 'STRICT_DNS', dnsRefreshRateMs: 60_000, ...overrides });
}

const keys = (hosts: readonly Host[]): string[] => hosts.map((h) => h.key).sort();

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('STATIC cluster', () => {
  it('has its hosts from the start and balances over them', async () => {
    const cluster = createCluster(
      testClusterConfig({
        localityEndpoints: [
          locality([
            { address: '10.0.0.1', port: 80, weight: 1, health: 'HEALTHY' },
            { address: '::1', port: 81, weight: 2, health: 'HEALTHY' },
          ]),
        ],
      }),
      { random: seededRandom(1), logger },
    );
    await cluster.start();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.1:80', '[::1]:81']);
    const [v4, v6] = cluster.hosts();
    assert.equal(v6.weight, 2);
    assert.deepEqual(v4.locality, { region: 'r', zone: 'z', subZone: '' });
    const picked = new Set(
      Array.from({ length: 10 }, () => cluster.loadBalancer.chooseHost({ hash: undefined })),
    );
    assert.deepEqual(picked, new Set([v4, v6]));
    cluster.stop();
  });

  it('rebuilds its load balancer when told host health changed', () => {
    const cluster = createCluster(
      testClusterConfig({
        localityEndpoints: [
          locality([
            { address: '10.0.0.1', port: 80, weight: 1, health: 'HEALTHY' },
            { address: '10.0.0.2', port: 80, weight: 1, health: 'HEALTHY' },
          ]),
        ],
      }),
      { logger },
    );
    const [a, b] = cluster.hosts();
    const before = cluster.loadBalancer;
    a.health = 'UNHEALTHY';
    cluster.healthChanged();
    assert.notEqual(cluster.loadBalancer, before);
    for (let i = 0; i < 20; i++) assert.equal(cluster.loadBalancer.chooseHost({ hash: undefined }), b);
  });
});

describe('STRICT_DNS cluster', () => {
  it('makes a host per resolved address and tracks additions and removals', async () => {
    const resolve = scriptedResolver({
      'a.test': [
        ['10.0.0.1', '10.0.0.2'],
        ['10.0.0.2', '10.0.0.3'],
        new Error('ETIMEOUT'),
        ['10.0.0.3', '10.0.0.2'],
      ],
      'b.test': [new Error('ENOTFOUND'), ['10.0.1.1']],
    });
    const cluster = createCluster(
      dnsConfig({
        localityEndpoints: [locality([named('a.test', 8080, 3)]), locality([named('b.test')], 1)],
      }),
      { resolve, logger },
    );
    const changes: [string[], string[]][] = [];
    cluster.onHostsChanged((added, removed) => changes.push([keys(added), keys(removed)]));

    await cluster.start();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.1:8080', '10.0.0.2:8080']);
    assert.deepEqual(changes, [[['10.0.0.1:8080', '10.0.0.2:8080'], []]]);
    const [first, second] = cluster.hosts();
    assert.equal(second.hostname, 'a.test');
    assert.equal(second.weight, 3);
    second.activeRequests = 4;

    // Round 2: .1 goes, .3 comes; .2 stays the same object, with its in-flight count.
    // b.test now resolves too (priority 1).
    const lbBefore = cluster.loadBalancer;
    await cluster.refreshDns();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.2:8080', '10.0.0.3:8080', '10.0.1.1:80']);
    assert.deepEqual(changes[1], [['10.0.0.3:8080', '10.0.1.1:80'], ['10.0.0.1:8080']]);
    assert.ok(cluster.hosts().includes(second));
    assert.equal(second.activeRequests, 4);
    assert.ok(!cluster.hosts().includes(first));
    assert.notEqual(cluster.loadBalancer, lbBefore);
    assert.equal(cluster.hosts().find((h) => h.address === '10.0.1.1')!.priority, 1);

    // Round 3: a.test fails: its last good addresses stay, nothing changes.
    const lbStable = cluster.loadBalancer;
    await cluster.refreshDns();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.2:8080', '10.0.0.3:8080', '10.0.1.1:80']);
    assert.equal(changes.length, 2);
    assert.equal(cluster.loadBalancer, lbStable);

    // Round 4: the same addresses in another order are no change either.
    await cluster.refreshDns();
    assert.equal(changes.length, 2);
    assert.equal(cluster.loadBalancer, lbStable);
    cluster.stop();
  });

  it('starts with no hosts when the first resolution fails, and picks none', async () => {
    const resolve = scriptedResolver({});
    const cluster = createCluster(
      dnsConfig({ localityEndpoints: [locality([named('no-such-host.invalid')])] }),
      {
        resolve,
        logger,
      },
    );
    await cluster.start();
    assert.deepEqual(cluster.hosts(), []);
    assert.equal(cluster.loadBalancer.chooseHost({ hash: undefined }), null);
    assert.deepEqual(resolve.calls, ['no-such-host.invalid']);
    cluster.stop();
  });

  it('merges endpoints that resolve to the same address into one host', async () => {
    const resolve = scriptedResolver({ 'a.test': [['10.0.0.1']], 'alias.test': [['10.0.0.1']] });
    const cluster = createCluster(
      dnsConfig({ localityEndpoints: [locality([named('a.test'), named('alias.test')])] }),
      {
        resolve,
        logger,
      },
    );
    await cluster.start();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.1:80']);
    assert.equal(cluster.hosts()[0].hostname, 'a.test');
    cluster.stop();
  });

  it('re-resolves every dns_refresh_rate until stopped', async () => {
    const resolve = scriptedResolver({ 'a.test': [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3']] });
    const cluster = createCluster(
      dnsConfig({ dnsRefreshRateMs: 20, localityEndpoints: [locality([named('a.test')])] }),
      { resolve, logger },
    );
    const seen: string[] = [];
    cluster.onHostsChanged((added) => seen.push(...added.map((h) => h.address)));
    await cluster.start();
    await waitFor(() => seen.includes('10.0.0.3'));
    assert.deepEqual(seen, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    cluster.stop();
    const calls = resolve.calls.length;
    await sleep(80);
    assert.equal(resolve.calls.length, calls, 'resolved again after stop()');
  });

  it('refreshes at the record TTL when respect_dns_ttl is set, and ignores it otherwise', async () => {
    const answer: DnsAnswer = { addresses: ['10.0.0.1'], ttlSeconds: 0.02 };
    const respecting = scriptedResolver({ 'a.test': [answer] });
    const ttlCluster = createCluster(
      dnsConfig({ respectDnsTtl: true, localityEndpoints: [locality([named('a.test')])] }),
      { resolve: respecting, logger },
    );
    const ignoring = scriptedResolver({ 'a.test': [answer] });
    const rateCluster = createCluster(dnsConfig({ localityEndpoints: [locality([named('a.test')])] }), {
      resolve: ignoring,
      logger,
    });
    await Promise.all([ttlCluster.start(), rateCluster.start()]);
    await waitFor(() => respecting.calls.length >= 3);
    ttlCluster.stop();
    assert.equal(ignoring.calls.length, 1, 'the 60 s refresh rate applies without respect_dns_ttl');
    rateCluster.stop();
  });

  it('unregisters listeners and survives one that throws', async () => {
    const resolve = scriptedResolver({ 'a.test': [['10.0.0.1'], ['10.0.0.2']] });
    const cluster = createCluster(dnsConfig({ localityEndpoints: [locality([named('a.test')])] }), {
      resolve,
      logger,
    });
    let calls = 0;
    cluster.onHostsChanged(() => {
      throw new Error('listener bug');
    });
    const off = cluster.onHostsChanged(() => calls++);
    await cluster.start();
    off();
    await cluster.refreshDns();
    assert.equal(calls, 1);
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.2:80']);
    cluster.stop();
  });
});

describe('LOGICAL_DNS cluster', () => {
  it('has one host at the first resolved address, replaced when the address changes', async () => {
    const resolve = scriptedResolver({
      'api.test': [['10.0.0.5', '10.0.0.6'], ['10.0.0.5'], ['10.0.0.7', '10.0.0.5'], new Error('ESERVFAIL')],
    });
    const cluster = createCluster(
      dnsConfig({ type: 'LOGICAL_DNS', localityEndpoints: [locality([named('api.test', 443)])] }),
      { resolve, logger },
    );
    await cluster.start();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.5:443']);
    const host = cluster.hosts()[0];
    assert.equal(host.hostname, 'api.test');
    await cluster.refreshDns();
    assert.equal(cluster.hosts()[0], host);
    await cluster.refreshDns();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.7:443']);
    assert.equal(cluster.hosts()[0].hostname, 'api.test');
    await cluster.refreshDns();
    assert.deepEqual(keys(cluster.hosts()), ['10.0.0.7:443']);
    cluster.stop();
  });
});

describe('the system resolver', () => {
  it('resolves localhost for a STRICT_DNS cluster whose host accepts connections', async (t) => {
    const server = createServer((socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;

    const cluster = createCluster(
      dnsConfig({ dnsLookupFamily: 'V4_ONLY', localityEndpoints: [locality([named('localhost', port)])] }),
      { logger },
    );
    await cluster.start();
    t.after(() => cluster.stop());
    assert.deepEqual(keys(cluster.hosts()), [`127.0.0.1:${port}`]);
    const host = cluster.loadBalancer.chooseHost({ hash: undefined })!;
    assert.equal(host.hostname, 'localhost');

    const socket = connect(host.port, host.address);
    socket.setEncoding('utf8');
    const [data] = (await once(socket, 'data', { signal: AbortSignal.timeout(2000) })) as string[];
    socket.destroy();
    assert.equal(data, 'hello');
  });

  it('answers IP literals without a lookup, and finds a loopback address for localhost in AUTO', async () => {
    assert.deepEqual(await systemDnsResolve('10.1.2.3', 'V6_ONLY', true), {
      addresses: ['10.1.2.3'],
      ttlSeconds: undefined,
    });
    const auto = await systemDnsResolve('localhost', 'AUTO', false);
    assert.ok(auto.addresses.length > 0);
    for (const address of auto.addresses) assert.match(address, /^(127\.\d+\.\d+\.\d+|::1)$/);
  });
});

describe('EDS cluster', () => {
  const eds = (): ClusterConfig => testClusterConfig({ name: 'web', type: 'EDS', edsServiceName: 'web' });
  const ep = (
    address: string,
    port: number,
    health: EndpointConfig['health'] = 'HEALTHY',
  ): EndpointConfig => ({
    address,
    port,
    weight: 1,
    health,
  });

  it('starts without hosts; each assignment replaces them, keeping the Host objects that stay', () => {
    const cluster = createCluster(eds(), { logger });
    assert.deepEqual(cluster.hosts(), []);
    assert.equal(cluster.loadBalancer.chooseHost({ hash: undefined }), null);
    const changes: [string[], string[]][] = [];
    cluster.onHostsChanged((added, removed) => changes.push([keys(added), keys(removed)]));
    cluster.setLoadAssignment({
      localityEndpoints: [locality([ep('10.0.0.1', 80), ep('10.0.0.2', 80)])],
      overprovisioningFactor: 140,
    });
    const [a] = cluster.hosts();
    cluster.setLoadAssignment({
      localityEndpoints: [locality([ep('10.0.0.1', 80), ep('10.0.0.3', 80)])],
      overprovisioningFactor: 140,
    });
    assert.equal(
      cluster.hosts()[0],
      a,
      'a host that stays is the same object (its pool and counters carry over)',
    );
    assert.deepEqual(changes, [
      [['10.0.0.1:80', '10.0.0.2:80'], []],
      [['10.0.0.3:80'], ['10.0.0.2:80']],
    ]);
  });

  it('applies health from the assignment to hosts in place, and rebuilds the load balancer', () => {
    const cluster = createCluster(eds(), { logger, random: seededRandom(1) });
    cluster.setLoadAssignment({
      localityEndpoints: [locality([ep('10.0.0.1', 80), ep('10.0.0.2', 80)])],
      overprovisioningFactor: 140,
    });
    const [a, b] = cluster.hosts();
    const lb = cluster.loadBalancer;
    cluster.setLoadAssignment({
      localityEndpoints: [locality([ep('10.0.0.1', 80), ep('10.0.0.2', 80, 'UNHEALTHY')])],
      overprovisioningFactor: 140,
    });
    assert.equal(cluster.hosts()[1], b);
    assert.equal(b.health, 'UNHEALTHY');
    assert.notEqual(cluster.loadBalancer, lb);
    for (let i = 0; i < 50; i++) assert.equal(cluster.loadBalancer.chooseHost({ hash: undefined }), a);
    const same = cluster.loadBalancer;
    cluster.setLoadAssignment({
      localityEndpoints: [locality([ep('10.0.0.1', 80), ep('10.0.0.2', 80, 'UNHEALTHY')])],
      overprovisioningFactor: 140,
    });
    assert.equal(cluster.loadBalancer, same, 'an identical assignment changes nothing');
  });

  it('takes the overprovisioning factor from the assignment', () => {
    const cluster = createCluster(eds(), { logger, random: seededRandom(2) });
    const levels = (factor: number): void =>
      cluster.setLoadAssignment({
        localityEndpoints: [
          locality([ep('10.0.0.1', 80), ep('10.0.0.2', 80, 'UNHEALTHY')], 0),
          locality([ep('10.0.1.1', 80)], 1),
        ],
        overprovisioningFactor: factor,
      });
    const share = (): number => {
      let p0 = 0;
      for (let i = 0; i < 2000; i++)
        if (cluster.loadBalancer.chooseHost({ hash: undefined })?.priority === 0) p0++;
      return p0 / 2000;
    };
    // Half of priority 0 is healthy: 140 × 1/2 = 70% stays there; at 200, 100% does.
    levels(140);
    assert.ok(Math.abs(share() - 0.7) < 0.05, `expected ~70% at priority 0, got ${share()}`);
    levels(200);
    assert.equal(share(), 1);
  });

  it('refuses an assignment for a cluster that is not EDS', () => {
    const cluster = createCluster(testClusterConfig({ name: 's' }), { logger });
    assert.throws(
      () => cluster.setLoadAssignment({ localityEndpoints: [], overprovisioningFactor: 140 }),
      /not an EDS cluster/,
    );
  });
});
