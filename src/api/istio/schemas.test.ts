import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  generateIstioSchemas,
  istioReferenceDir,
  outputFile,
  shareRepeatedSubschemas,
  translateCelRule,
} from '../../../scripts/gen-istio-schemas.ts';
import { groupOfKind, versionsOfGroup } from './kinds.ts';
import { istioSchemas, schemaKeyFor } from './schemas.ts';

const crdFile = path.join(istioReferenceDir(), 'crds', 'crd-all.gen.yaml');
const haveCrds = fs.existsSync(crdFile);

describe('schemas.gen.json', () => {
  it(
    'is exactly what the generator makes from the CRD file (regenerate with node scripts/gen-istio-schemas.ts)',
    {
      skip: !haveCrds && `no CRD file at ${crdFile}`,
    },
    () => {
      const generated = generateIstioSchemas(fs.readFileSync(crdFile, 'utf8'));
      assert.deepEqual(JSON.parse(fs.readFileSync(outputFile, 'utf8')), generated);
    },
  );

  it('has every CEL rule of the CRDs translated', () => {
    assert.deepEqual(istioSchemas.untranslatedRules, []);
  });

  it('has a schema for every kind and version Weft accepts, and none other', () => {
    const expected = Object.entries(groupOfKind)
      .flatMap(([kind, group]) => versionsOfGroup[group].map((v) => `${group}/${v}/${kind}`))
      .sort();
    assert.deepEqual(Object.keys(istioSchemas.kinds).sort(), expected);
    assert.equal(schemaKeyFor('networking.istio.io/v1alpha3', 'VirtualService'), 'VirtualService');
    assert.equal(schemaKeyFor('networking.istio.io/v2', 'VirtualService'), undefined);
    assert.equal(schemaKeyFor('security.istio.io/v1alpha3', 'PeerAuthentication'), undefined);
  });

  it('carries no descriptions and no Kubernetes extensions', () => {
    const text = JSON.stringify(istioSchemas.schemas);
    assert.doesNotMatch(text, /"description"/);
    assert.doesNotMatch(text, /"x-kubernetes-/);
  });
});

describe('translateCelRule', () => {
  it('translates the rule shapes Istio uses', () => {
    assert.deepEqual(translateCelRule("duration(self) >= duration('1ms')"), { check: 'minDuration', ms: 1 });
    assert.deepEqual(
      translateCelRule('(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) + (has(self.c) ? 1 : 0) <= 1'),
      {
        check: 'atMostOne',
        fields: ['a', 'b', 'c'],
      },
    );
    assert.deepEqual(translateCelRule('has(self.address) || has(self.network)'), {
      check: 'anyOf',
      fields: ['address', 'network'],
    });
    assert.deepEqual(
      translateCelRule('(has(self.x) || has(self.notX)) ? (!has(self.y) &&\n!has(self.z)) : true'),
      { check: 'excludes', ifAny: ['x', 'notX'], forbids: ['y', 'z'] },
    );
    assert.deepEqual(translateCelRule('self in ["", "HTTP", "HTTPS"]'), {
      check: 'oneOfValues',
      values: ['', 'HTTP', 'HTTPS'],
    });
    assert.deepEqual(translateCelRule('self.all(l1, self.exists_one(l2, l1.number == l2.number))'), {
      check: 'uniqueBy',
      keys: ['number'],
    });
    assert.deepEqual(translateCelRule('self != "*"'), { check: 'notEqual', value: '*' });
  });

  it('returns undefined for a rule it does not know', () => {
    assert.equal(translateCelRule('self.size() > 3'), undefined);
    assert.equal(translateCelRule('self.all(l1, self.exists_one(l2, l1.a == l2.b))'), undefined);
  });
});

describe('shareRepeatedSubschemas', () => {
  it('stores a repeated large subschema once under $defs and leaves small ones inline', () => {
    const big = {
      type: 'object',
      properties: Object.fromEntries([...Array(20).keys()].map((i) => [`field${i}`, { type: 'string' }])),
    };
    const small = { type: 'string' };
    const shared = shareRepeatedSubschemas({
      type: 'object',
      properties: { a: big, b: { type: 'array', items: big }, c: small, d: small },
    });
    assert.deepEqual(shared, {
      type: 'object',
      properties: {
        a: { $ref: '#/$defs/a' },
        b: { type: 'array', items: { $ref: '#/$defs/a' } },
        c: small,
        d: small,
      },
      $defs: { a: big },
    });
  });
});
