import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessLogFilter, CelSubsetError } from './access-log-filter.ts';

const status = (op: string, value: number): object => ({
  status_code_filter: {
    comparison: { op, value: { default_value: value, runtime_key: 'access_log.status_code' } },
  },
});

describe('access log filter CEL → Envoy access log filters', () => {
  it('translates response.code comparisons (Envoy has EQ, GE and LE only)', () => {
    assert.deepEqual(accessLogFilter('response.code >= 400'), status('GE', 400));
    assert.deepEqual(accessLogFilter('response.code > 499'), status('GE', 500));
    assert.deepEqual(accessLogFilter('response.code < 200'), status('LE', 199));
    assert.deepEqual(accessLogFilter('response.code <= 299'), status('LE', 299));
    assert.deepEqual(accessLogFilter('response.code == 503'), status('EQ', 503));
    assert.deepEqual(accessLogFilter('response.code != 200'), {
      or_filter: { filters: [status('LE', 199), status('GE', 201)] },
    });
  });

  it('translates headers, response flags, && / || with CEL precedence and parentheses', () => {
    assert.deepEqual(accessLogFilter(`request.headers['X-Debug'] == "on"`), {
      header_filter: { header: { name: 'x-debug', string_match: { exact: 'on' } } },
    });
    assert.deepEqual(accessLogFilter(`request.headers['x'] != 'y'`), {
      header_filter: { header: { name: 'x', string_match: { exact: 'y' }, invert_match: true } },
    });
    assert.deepEqual(accessLogFilter(`response.flags != '-'`), { response_flag_filter: {} });
    assert.deepEqual(
      accessLogFilter(`response.code >= 500 || response.code == 429 && request.headers['a'] == 'b'`),
      {
        or_filter: {
          filters: [
            status('GE', 500),
            {
              and_filter: {
                filters: [
                  status('EQ', 429),
                  { header_filter: { header: { name: 'a', string_match: { exact: 'b' } } } },
                ],
              },
            },
          ],
        },
      },
    );
    assert.deepEqual(
      accessLogFilter(`(response.code >= 500 || response.code == 429) && response.flags != '-'`),
      {
        and_filter: {
          filters: [
            { or_filter: { filters: [status('GE', 500), status('EQ', 429)] } },
            { response_flag_filter: {} },
          ],
        },
      },
    );
  });

  it('refuses what it cannot express, saying what', () => {
    const refused: [string, RegExp][] = [
      ['', /empty expression/],
      ['response.duration > 1000', /"response.duration" is not supported by Weft/],
      ['response.code >= "400"', /compared with a status code/],
      [`response.flags == '-'`, /expected one of !=/],
      [`request.headers['a'] > 'b'`, /expected one of == !=/],
      ['response.code >= 400 ||', /unexpected end of expression/],
      ['(response.code >= 400', /expected "\)"/],
      ['response.code >= 400 $', /unexpected "\$"/],
    ];
    for (const [expr, message] of refused)
      assert.throws(
        () => accessLogFilter(expr),
        (e: unknown) => e instanceof CelSubsetError && message.test(e.message),
        expr,
      );
  });
});
