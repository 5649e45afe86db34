/**
 * Reading a request header the way Envoy's header map answers: pseudo-headers (`:authority`, `:path`,
 * `:method`, `:scheme`) come from the request line, repeated headers are joined with ",", and `host` is
 * absent because Envoy stores the HTTP/1 Host header as `:authority`.
 */
import type { RouteRequest } from './types.ts';

const PLAIN = 0;
const AUTHORITY = 1;
const PATH = 2;
const METHOD = 3;
const SCHEME = 4;
const ABSENT = 5;

export class RequestHeader {
  /** Lower-case header name. */
  readonly name: string;
  private readonly source: number;

  constructor(name: string) {
    this.name = name.toLowerCase();
    switch (this.name) {
      case ':authority':
        this.source = AUTHORITY;
        break;
      case ':path':
        this.source = PATH;
        break;
      case ':method':
        this.source = METHOD;
        break;
      case ':scheme':
        this.source = SCHEME;
        break;
      case 'host':
        this.source = ABSENT;
        break;
      default:
        this.source = PLAIN;
    }
  }

  /** The header's value, or undefined when the request does not carry it. */
  get(req: RouteRequest): string | undefined {
    switch (this.source) {
      case PLAIN: {
        const v = req.headers[this.name];
        if (v === undefined) return undefined;
        if (typeof v === 'string') return v;
        return v.length === 0 ? undefined : v.length === 1 ? v[0] : v.join(',');
      }
      case AUTHORITY:
        return req.authority === '' ? undefined : req.authority;
      case PATH:
        return req.path;
      case METHOD:
        return req.method;
      case SCHEME:
        return req.scheme;
      default:
        return undefined;
    }
  }

  /** Every value of the header separately (for hashing, which is order-independent in Envoy). */
  getAll(req: RouteRequest): readonly string[] | undefined {
    if (this.source === PLAIN) {
      const v = req.headers[this.name];
      if (v === undefined) return undefined;
      if (typeof v === 'string') return [v];
      return v.length === 0 ? undefined : v;
    }
    const one = this.get(req);
    return one === undefined ? undefined : [one];
  }
}
