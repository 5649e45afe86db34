import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineFiles, loadText } from '../load.ts';
import { analyze } from './index.ts';

function diagnose(annotation: string) {
  const { resources, diagnostics } = combineFiles([
    loadText(
      't.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  annotations:
    weft.dev/load-balancer: ${annotation}
spec:
  host: reviews
`,
    ),
  ]);
  assert.deepEqual(diagnostics, []);
  return analyze(resources).filter((d) => d.code === 'WE0108');
}

describe('analyze: Weft annotations', () => {
  it('reports an unknown weft.dev/load-balancer value on its line', () => {
    const [d, ...rest] = diagnose('fastest');
    assert.equal(rest.length, 0);
    assert.equal(d.severity, 'warning');
    assert.equal(d.line, 6);
    assert.match(d.message, /unknown value "fastest" for weft\.dev\/load-balancer \(known: peak-ewma\)/);
  });

  it('accepts peak-ewma', () => {
    assert.deepEqual(diagnose('peak-ewma'), []);
  });
});
