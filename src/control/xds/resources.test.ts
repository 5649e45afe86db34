import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeAny } from '../../api/envoy/wire.ts';
import { HeldResources, HeldSet, ResourceEncoder } from './resources.ts';
import { testCluster } from './testing.ts';

describe('ResourceEncoder', () => {
  it('encodes equal content once, versions it by content, and remembers the last round only', () => {
    const encoder = new ResourceEncoder();
    const a = encoder.encode('c1', testCluster('c1'));
    const b = encoder.encode('c1', testCluster('c1'));
    assert.equal(b, a);
    assert.match(a.version, /^[0-9a-f]{16}$/);
    assert.deepEqual(decodeAny(a.any.typeUrl, a.any.value).name, 'c1');
    const changed = encoder.encode('c1', testCluster('c1', { connect_timeout: '2s' }));
    assert.notEqual(changed.version, a.version);
    assert.equal(encoder.encodedCount, 2);
    // Used in this round: kept over the next round start; unused for a whole round: forgotten.
    encoder.startRound();
    encoder.encode('c1', testCluster('c1'));
    assert.equal(encoder.encodedCount, 2);
    encoder.startRound();
    encoder.startRound();
    encoder.encode('c1', testCluster('c1'));
    assert.equal(encoder.encodedCount, 3);
  });
});

describe('HeldResources', () => {
  it('versions a set independently of the order it was built in', () => {
    const x = new HeldResources();
    const y = new HeldResources();
    assert.equal(x.version, 'empty');
    x.set('a', '1');
    x.set('b', '2');
    x.set('c', '3');
    y.set('c', '3');
    y.set('a', '1');
    y.set('b', '2');
    assert.equal(x.version, y.version);
    assert.match(x.version, /^[0-9a-f]{16}$/);
    const before = x.version;
    x.set('b', '9');
    assert.notEqual(x.version, before);
    x.set('b', '2');
    assert.equal(x.version, before);
    x.delete('c');
    assert.notEqual(x.version, before);
    x.set('c', '3');
    assert.equal(x.version, before);
    assert.equal(x.size, 3);
    // Swapping versions between names is a different set.
    const z = new HeldResources();
    z.set('a', '2');
    z.set('b', '1');
    z.set('c', '3');
    assert.notEqual(z.version, before);
  });
});

describe('shared sets', () => {
  it('encodes a generator result once per subscription, versions it like a held set, and shares it', () => {
    const encoder = new ResourceEncoder();
    const set = new Map([
      ['c1', testCluster('c1')],
      ['c2', testCluster('c2')],
    ]);
    const all = encoder.encodeSet(set, null);
    assert.equal(encoder.encodeSet(set, null), all);
    const names = new Set(['c2']);
    const some = encoder.encodeSet(set, names);
    assert.equal(encoder.encodeSet(set, names), some);
    assert.deepEqual([...some.resources.keys()], ['c2']);
    const held = new HeldResources();
    for (const [name, r] of all.resources) held.set(name, r.version);
    assert.equal(all.version, held.version);
  });

  it('holds a shared set without copying it, with per-proxy changes on top, and flattens many changes', () => {
    const encoder = new ResourceEncoder();
    const all = encoder.encodeSet(
      new Map([
        ['a', testCluster('a')],
        ['b', testCluster('b')],
      ]),
      null,
    );
    const held = new HeldResources();
    held.adopt(all);
    assert.equal(held.state, HeldSet.of(all), 'one held state per set');
    assert.ok(held.holdsExactly(all));
    assert.equal(held.version, all.version);
    const before = held.version;
    held.apply([
      ['b', 'changed'],
      ['a', null],
      ['c', '3'],
    ]);
    assert.deepEqual(held.keys().sort(), ['b', 'c']);
    assert.equal(held.size, 2);
    assert.equal(held.get('a'), undefined);
    assert.ok(!held.holdsExactly(all));
    // The same content built entry by entry has the same version.
    const plain = new HeldResources();
    plain.set('b', 'changed');
    plain.set('c', '3');
    assert.equal(held.version, plain.version);
    held.set('b', all.resources.get('b')!.version);
    held.delete('c');
    held.set('a', all.resources.get('a')!.version);
    assert.equal(held.version, before);
    assert.ok(held.holdsExactly(all));
    // Hundreds of changes: a flat map of its own, same content and version.
    const many = Array.from({ length: 600 }, (_, i) => [`n${i}`, String(i)] as const);
    held.apply(many);
    assert.equal(held.state.own.size, 0);
    assert.equal(held.size, 602);
    const rebuilt = new HeldResources();
    for (const [name, version] of [...many, ['a', held.get('a')!] as const, ['b', held.get('b')!] as const])
      rebuilt.set(name, version);
    assert.equal(held.version, rebuilt.version);
  });

  it('computes a transition once for every proxy in the same state', () => {
    const encoder = new ResourceEncoder();
    const v1 = encoder.encodeSet(
      new Map([
        ['a', testCluster('a')],
        ['b', testCluster('b')],
      ]),
      null,
    );
    const p = new HeldResources();
    const q = new HeldResources();
    p.adopt(v1);
    q.adopt(v1);
    // An endpoint push naming `b` (and `gone`, which no longer exists).
    const names = new Set(['b', 'gone']);
    const update = encoder.encodeSet(new Map([['b', testCluster('b', { connect_timeout: '3s' })]]), names);
    const tp = p.state.withUpdate(update, names);
    assert.equal(q.state.withUpdate(update, names), tp, 'shared');
    assert.deepEqual([...tp.changed.resources.keys()], ['b']);
    p.move(tp);
    q.move(tp);
    assert.equal(p.state, q.state);
    assert.equal(p.get('b'), update.resources.get('b')!.version);
    // A regenerated whole set: only what differs goes out; then the proxy holds that set.
    const v2 = encoder.encodeSet(
      new Map([
        ['a', testCluster('a', { connect_timeout: '4s' })],
        ['b', testCluster('b', { connect_timeout: '3s' })],
      ]),
      null,
    );
    const t2 = p.state.toSet(v2);
    assert.deepEqual([...t2.changed.resources.keys()], ['a']);
    assert.equal(t2.next, HeldSet.of(v2));
    assert.equal(q.state.toSet(v2), t2);
  });

  it('lets proxies that reached the current set by different pushes share its state again', () => {
    const encoder = new ResourceEncoder();
    const map = (timeouts: Record<string, string>): Map<string, ReturnType<typeof testCluster>> =>
      new Map(Object.entries(timeouts).map(([n, t]) => [n, testCluster(n, { connect_timeout: t })]));
    const v1 = encoder.encodeSet(map({ a: '1s', b: '1s', c: '1s' }), null);
    const v3 = encoder.encodeSet(map({ a: '2s', b: '3s', c: '1s' }), null);
    const p = new HeldResources();
    const q = new HeldResources();
    p.adopt(v1);
    q.adopt(v1);
    // p gets a's change, then b's; q gets both in one coalesced push: different states, same content.
    const onlyA = new Set(['a']);
    const onlyB = new Set(['b']);
    const both = new Set(['a', 'b']);
    p.move(p.state.withUpdate(encoder.encodeSet(map({ a: '2s' }), onlyA), onlyA));
    p.move(p.state.withUpdate(encoder.encodeSet(map({ b: '3s' }), onlyB), onlyB));
    q.move(q.state.withUpdate(encoder.encodeSet(map({ a: '2s', b: '3s' }), both), both));
    assert.notEqual(p.state, q.state);
    assert.equal(p.version, v3.version);
    p.rejoin(v3, 8);
    q.rejoin(v3, 8);
    assert.equal(p.state, HeldSet.of(v3));
    assert.equal(q.state, p.state);
    assert.equal(p.state.own.size, 0);
    // A proxy behind the current set: the current set's entries plus what differs (same content and version)...
    const r = new HeldResources();
    r.adopt(v1);
    r.move(r.state.withUpdate(encoder.encodeSet(map({ a: '2s' }), onlyA), onlyA));
    r.set('extra', 'x');
    const before = r.state;
    r.rejoin(v3, 8);
    assert.equal(r.state.base, v3.resources);
    assert.deepEqual([...r.state.own].sort(), [
      ['b', v1.resources.get('b')!.version],
      ['extra', 'x'],
    ]);
    assert.equal(r.version, before.version);
    assert.deepEqual(r.keys().sort(), before.keys().sort());
    for (const name of before.keys()) assert.equal(r.get(name), before.get(name));
    // ...unless more than the limit differ: then it keeps its state.
    const s2 = new HeldResources();
    s2.adopt(v1);
    const kept = s2.state;
    s2.rejoin(v3, 1);
    assert.equal(s2.state, kept);
    assert.ok(!s2.holdsExactly(v3));
  });
});
