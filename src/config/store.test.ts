import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IstioKind, IstioResource } from '../api/istio/resource.ts';
import { ConfigSnapshot } from './store.ts';

function resource(kind: IstioKind, namespace: string, name: string, spec: unknown = {}): IstioResource {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace, labels: {}, annotations: {} },
    spec,
    source: { file: 'f.yaml', line: 1, column: 1 },
  };
}

describe('ConfigSnapshot', () => {
  const vs1 = resource('VirtualService', 'default', 'a', { hosts: ['a.example.com'] });
  const vs2 = resource('VirtualService', 'prod', 'a');
  const dr = resource('DestinationRule', 'default', 'a', { host: 'a.example.com' });
  const snap = new ConfigSnapshot([vs1, dr, vs2], 7);

  it('lists by kind in load order and finds by kind, namespace and name', () => {
    assert.equal(snap.version, 7);
    assert.equal(snap.size, 3);
    assert.deepEqual(snap.list('VirtualService'), [vs1, vs2]);
    assert.deepEqual(snap.list('DestinationRule'), [dr]);
    assert.deepEqual(snap.list('Gateway'), []);
    assert.equal(snap.get('VirtualService', 'prod', 'a'), vs2);
    assert.equal(snap.get('DestinationRule', 'default', 'a')?.spec.host, 'a.example.com');
    assert.equal(snap.get('DestinationRule', 'prod', 'a'), undefined);
  });

  it('is immutable', () => {
    assert.ok(Object.isFrozen(snap));
    assert.ok(Object.isFrozen(snap.resources));
    assert.ok(Object.isFrozen(snap.list('VirtualService')));
    assert.throws(() => (snap.resources as IstioResource[]).push(vs1), TypeError);
    assert.throws(() => {
      (snap as { version: number }).version = 8;
    }, TypeError);
  });

  it('refuses duplicates', () => {
    assert.throws(
      () => new ConfigSnapshot([vs1, resource('VirtualService', 'default', 'a')], 1),
      /duplicate resource VirtualService\/default\/a/,
    );
  });

  it('has an empty version 0', () => {
    assert.equal(ConfigSnapshot.empty.version, 0);
    assert.equal(ConfigSnapshot.empty.size, 0);
  });
});
