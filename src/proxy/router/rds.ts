/**
 * Route configurations delivered by RDS. A connection manager configured with `rds` holds an RdsRouteTable
 * and reads its current table on every request, so an update reaches existing (keep-alive, HTTP/2)
 * connections on their next request; a request in flight keeps the MatchedRoute it started with.
 */
import type { MatchedRoute, RouteRequest, RouteTable } from './types.ts';

export class RdsRouteTable implements RouteTable {
  readonly name: string;
  private current: RouteTable | null = null;

  constructor(name: string) {
    this.name = name;
  }

  /** Until the first RouteConfiguration arrives nothing matches (404 NR), as with Envoy's empty config. */
  match(req: RouteRequest): MatchedRoute | null {
    const table = this.current;
    return table === null ? null : table.match(req);
  }

  /** Whether a RouteConfiguration has arrived (a listener waiting for it is warming until then). */
  get ready(): boolean {
    return this.current !== null;
  }

  update(table: RouteTable): void {
    this.current = table;
  }
}

/** One RdsRouteTable per route configuration name, shared by every connection manager that names it. */
export class RouteConfigProviders {
  private readonly tables = new Map<string, RdsRouteTable>();

  /** The table for `name`, created empty on first use. */
  get(name: string): RdsRouteTable {
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new RdsRouteTable(name);
      this.tables.set(name, table);
    }
    return table;
  }

  peek(name: string): RdsRouteTable | undefined {
    return this.tables.get(name);
  }

  names(): IterableIterator<string> {
    return this.tables.keys();
  }

  /**
   * Forgets the tables no longer named by any listener. Connection managers still draining keep theirs
   * (with its last contents); a listener naming it again later starts from a fresh, empty table.
   */
  retainOnly(names: ReadonlySet<string>): void {
    for (const name of [...this.tables.keys()]) if (!names.has(name)) this.tables.delete(name);
  }
}
