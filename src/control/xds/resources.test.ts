import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeAny } from '../../api/envoy/wire.ts';
import { HeldResources, ResourceEncoder } from './resources.ts';
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
