import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FAIL_CLOSED_JWKS, JwksResolver } from './jwks-resolver.ts';

const KEYS_A = { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'a', kid: 'a' }] };
const KEYS_B = { keys: [{ kty: 'EC', crv: 'P-256', x: 'b', y: 'b', kid: 'b' }] };

/** A JWKS and OpenID discovery server whose answers the test changes as it goes. */
async function startKeyServer() {
  const state = { keys: KEYS_A as unknown, status: 200, hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/issuer/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: `${base}/issuer`, jwks_uri: `${base}/keys` }));
      return;
    }
    if (req.url !== '/keys') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(state.status, { 'content-type': 'application/json' });
    res.end(state.status === 200 ? JSON.stringify(state.keys) : 'broken');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    base,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Resolves once `onChange` has been called `n` times in total, or fails after 5 s. */
function changeCounter() {
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    onChange: () => {
      count++;
      for (const w of waiters.filter((w) => count >= w.n)) w.resolve();
    },
    get count() {
      return count;
    },
    reach: (n: number) =>
      count >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const t = setTimeout(
              () => reject(new Error(`onChange called ${count} times, wanted ${n}`)),
              5000,
            );
            waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
          }),
  };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('JwksResolver', { timeout: 30_000 }, () => {
  let srv: Awaited<ReturnType<typeof startKeyServer>>;
  before(async () => (srv = await startKeyServer()));
  after(async () => srv?.close());

  it('fails closed on first use, then serves the fetched keys and calls onChange', async () => {
    srv.state.keys = KEYS_A;
    srv.state.status = 200;
    const changes = changeCounter();
    const r = new JwksResolver({ onChange: changes.onChange });
    try {
      assert.equal(r.lookup(`${srv.base}/keys`), FAIL_CLOSED_JWKS);
      await changes.reach(1);
      assert.deepEqual(JSON.parse(r.lookup(`${srv.base}/keys`)), KEYS_A);
      assert.equal(r.version, 1);
    } finally {
      r.close();
    }
  });

  it('keeps the last good keys when a refresh fails, and sees rotated keys after the next refresh', async () => {
    srv.state.keys = KEYS_A;
    srv.state.status = 200;
    const changes = changeCounter();
    const r = new JwksResolver({ onChange: changes.onChange, refreshMs: 100 });
    try {
      r.lookup(`${srv.base}/keys`);
      await changes.reach(1);
      srv.state.status = 500;
      const hits = srv.state.hits;
      while (srv.state.hits < hits + 2) await settle(20);
      assert.deepEqual(JSON.parse(r.lookup(`${srv.base}/keys`)), KEYS_A);
      assert.equal(changes.count, 1);
      srv.state.status = 200;
      srv.state.keys = KEYS_B;
      await changes.reach(2);
      assert.deepEqual(JSON.parse(r.lookup(`${srv.base}/keys`)), KEYS_B);
      // Unchanged keys on later refreshes do not trigger pushes.
      const after = srv.state.hits;
      while (srv.state.hits < after + 2) await settle(20);
      assert.equal(changes.count, 2);
    } finally {
      r.close();
    }
  });

  it('retries a URI that never answered, staying fail-closed until it does', async () => {
    srv.state.status = 500;
    const changes = changeCounter();
    const r = new JwksResolver({ onChange: changes.onChange, retryMs: 50 });
    try {
      const hits = srv.state.hits;
      r.lookup(`${srv.base}/keys`);
      while (srv.state.hits < hits + 2) await settle(20);
      assert.equal(r.lookup(`${srv.base}/keys`), FAIL_CLOSED_JWKS);
      assert.equal(changes.count, 0);
      srv.state.keys = KEYS_B;
      srv.state.status = 200;
      await changes.reach(1);
      assert.deepEqual(JSON.parse(r.lookup(`${srv.base}/keys`)), KEYS_B);
    } finally {
      r.close();
    }
  });

  it('refuses a body that is not a key set', async () => {
    srv.state.keys = { hello: 'world' };
    srv.state.status = 200;
    const changes = changeCounter();
    const r = new JwksResolver({ onChange: changes.onChange, retryMs: 10_000 });
    try {
      const hits = srv.state.hits;
      r.lookup(`${srv.base}/keys`);
      while (srv.state.hits < hits + 1) await settle(20);
      await settle(50);
      assert.equal(r.lookup(`${srv.base}/keys`), FAIL_CLOSED_JWKS);
      assert.equal(changes.count, 0);
    } finally {
      r.close();
    }
  });

  it('finds an issuer’s keys through OpenID discovery', async () => {
    srv.state.keys = KEYS_A;
    srv.state.status = 200;
    const changes = changeCounter();
    const r = new JwksResolver({ onChange: changes.onChange });
    try {
      assert.equal(r.lookupIssuer(`${srv.base}/issuer`), FAIL_CLOSED_JWKS);
      await changes.reach(1);
      assert.deepEqual(JSON.parse(r.lookupIssuer(`${srv.base}/issuer`)), KEYS_A);
    } finally {
      r.close();
    }
  });
});
