import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareDiagnostics, formatDiagnostic, formatFieldPath } from './diagnostic.ts';
import type { Diagnostic } from './diagnostic.ts';

describe('formatFieldPath', () => {
  it('writes indexes in brackets and quotes keys that are not plain names', () => {
    assert.equal(formatFieldPath(['spec', 'http', 0, 'route', 1, 'weight']), 'spec.http[0].route[1].weight');
    assert.equal(
      formatFieldPath(['metadata', 'labels', 'app.kubernetes.io/name']),
      'metadata.labels["app.kubernetes.io/name"]',
    );
    assert.equal(formatFieldPath(['spec', 'portLevelMtls', '8080']), 'spec.portLevelMtls["8080"]');
    assert.equal(formatFieldPath(['spec', 'headers', 'end-user']), 'spec.headers.end-user');
    assert.equal(formatFieldPath([]), '');
  });
});

describe('formatDiagnostic', () => {
  it('gives one line: file:line: severity code resource: field: message', () => {
    assert.equal(
      formatDiagnostic({
        code: 'WE0002',
        severity: 'error',
        message: 'must be <= 100',
        file: 'samples/x.yaml',
        line: 12,
        resource: 'VirtualService default/reviews',
        field: 'spec.http[0].route[0].weight',
      }),
      'samples/x.yaml:12: error WE0002 VirtualService default/reviews: spec.http[0].route[0].weight: must be <= 100',
    );
  });
  it('leaves out what is not known', () => {
    assert.equal(
      formatDiagnostic({ code: 'WE0001', severity: 'error', message: 'cannot read', file: 'a.yaml' }),
      'a.yaml: error WE0001 cannot read',
    );
    assert.equal(formatDiagnostic({ code: 'X', severity: 'info', message: 'm' }), 'info X m');
  });
});

describe('compareDiagnostics', () => {
  it('orders by file, line, then severity', () => {
    const d = (file: string, line: number, severity: Diagnostic['severity']): Diagnostic => ({
      code: 'C',
      severity,
      message: '',
      file,
      line,
    });
    const sorted = [d('b', 1, 'error'), d('a', 5, 'info'), d('a', 5, 'error'), d('a', 2, 'warning')].sort(
      compareDiagnostics,
    );
    assert.deepEqual(
      sorted.map((x) => `${x.file}:${x.line}:${x.severity}`),
      ['a:2:warning', 'a:5:error', 'a:5:info', 'b:1:error'],
    );
  });
});
