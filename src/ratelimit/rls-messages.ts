/**
 * RateLimitRequest / RateLimitResponse between their canonical JSON (as the wire codec reads and writes
 * them) and the plain objects the service works with.
 */
import type { WireJson } from '../api/envoy/wire.ts';
import { formatDuration } from '../core/duration.ts';
import type { DescriptorEntry, Limit } from './limits.ts';
import type { WireObject } from './rls-definition.ts';

export interface RateLimitQuery {
  domain: string;
  descriptors: DescriptorEntry[][];
  /** hits_addend, with Envoy's rule that 0 (unset) means 1. */
  hits: number;
}

/** A request the service cannot answer as asked: INVALID_ARGUMENT. */
export class InvalidRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRequestError';
  }
}

const isObject = (v: WireJson | undefined): v is WireObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function stringField(obj: WireObject, field: string, path: string): string {
  const v = obj[field];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new InvalidRequestError(`${path}.${field}: expected a string`);
  return v;
}

function listField(obj: WireObject, field: string, path: string): WireJson[] {
  const v = obj[field];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new InvalidRequestError(`${path}.${field}: expected a list`);
  return v;
}

export function parseRateLimitRequest(json: WireObject): RateLimitQuery {
  const domain = stringField(json, 'domain', 'request');
  const hitsAddend = json.hits_addend ?? 0;
  if (typeof hitsAddend !== 'number') throw new InvalidRequestError('request.hits_addend: expected a number');
  const descriptors = listField(json, 'descriptors', 'request').map((d, i) => {
    const path = `request.descriptors[${i}]`;
    if (!isObject(d)) throw new InvalidRequestError(`${path}: expected a message`);
    // Envoy's dynamic per-descriptor limits: the limits here come from RateLimitPolicy resources only.
    if (d.limit !== undefined) throw new InvalidRequestError(`${path}.limit is not supported by Weft`);
    return listField(d, 'entries', path).map((e, j) => {
      const entryPath = `${path}.entries[${j}]`;
      if (!isObject(e)) throw new InvalidRequestError(`${entryPath}: expected a message`);
      return { key: stringField(e, 'key', entryPath), value: stringField(e, 'value', entryPath) };
    });
  });
  return { domain, descriptors, hits: hitsAddend === 0 ? 1 : hitsAddend };
}

export type DescriptorVerdict =
  | { limited: false }
  | { limited: true; overLimit: boolean; limit: Limit; remaining: number; resetMs: number };

/** The response: one status per descriptor, in order; OVER_LIMIT overall if any descriptor is over. */
export function rateLimitResponse(verdicts: readonly DescriptorVerdict[]): WireObject {
  let over = false;
  const statuses = verdicts.map((v): WireObject => {
    if (!v.limited) return { code: 'OK' };
    over ||= v.overLimit;
    return {
      code: v.overLimit ? 'OVER_LIMIT' : 'OK',
      current_limit: { requests_per_unit: v.limit.requestsPerUnit, unit: v.limit.unit },
      limit_remaining: v.remaining,
      duration_until_reset: formatDuration(v.resetMs),
    };
  });
  return { overall_code: over ? 'OVER_LIMIT' : 'OK', statuses };
}
