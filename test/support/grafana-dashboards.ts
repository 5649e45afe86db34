/**
 * Reads Grafana dashboards (Istio's, Weft's own) as Grafana would for a Prometheus data source: every
 * panel target's PromQL, with template variables resolved the way Grafana resolves them — `query_result(Q)`
 * variables by running Q and applying the variable's regex to each result line, custom variables from their
 * current value, multi-value / All variables formatted as a regex alternation.
 */
import fs from 'node:fs';
import type { PromSample } from './prometheus.ts';

interface Panel {
  readonly title?: string;
  readonly type?: string;
  readonly panels?: readonly Panel[];
  readonly targets?: readonly { readonly expr?: string; readonly refId?: string }[];
}

interface TemplateVariable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
  readonly regex?: string;
  readonly multi?: boolean;
  readonly includeAll?: boolean;
  readonly current?: { readonly value?: string | readonly string[] } | null;
}

export interface Dashboard {
  readonly title: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly TemplateVariable[] };
}

export interface PanelQuery {
  readonly panel: string;
  readonly refId: string;
  /** The target's PromQL as written in the dashboard. */
  readonly raw: string;
}

export function loadDashboard(file: string): Dashboard {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel target with a PromQL expression, rows' nested panels included. */
export function panelQueries(d: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (panels: readonly Panel[]): void => {
    for (const p of panels) {
      if (p.panels) walk(p.panels);
      for (const t of p.targets ?? []) {
        if (t.expr !== undefined && t.expr.trim() !== '')
          out.push({ panel: p.title ?? '', refId: t.refId ?? '', raw: t.expr });
      }
    }
  };
  walk(d.panels);
  return out;
}

/**
 * Grafana's escaping of a value inside a multi-value regex (Prometheus data source): a regex metacharacter gets
 * a backslash, doubled because the regex sits in a PromQL string literal.
 */
function escapeRegexValue(v: string): string {
  return v.replace(/[\\^$*+?.()|{}[\]]/g, '\\\\$&');
}

/** A variable's values as Grafana puts them into a query: one value as is, several as `(a|b)`. */
export function formatVariable(values: readonly string[], multi: boolean): string {
  if (!multi && values.length === 1) return values[0];
  if (values.length === 1) return escapeRegexValue(values[0]);
  return `(${values.map(escapeRegexValue).join('|')})`;
}

/** Substitutes `$name`, `${name}` and `[[name]]`; throws on a variable it was not given. */
export function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g,
    (m, a?: string, b?: string, c?: string) => {
      const name = (a ?? b ?? c)!;
      const v = vars[name];
      if (v === undefined) throw new Error(`no value for template variable ${m} in ${expr}`);
      return v;
    },
  );
}

/** A sample as Grafana's query_result() lists it: `name{l="v",...} value timestamp`. */
function resultLine(s: PromSample): string {
  const { __name__: name = '', ...labels } = s.metric;
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return `${name}{${pairs.join(', ')}} ${s.value} 0`;
}

/**
 * Resolves the dashboard's template variables in order (later ones use earlier ones). `chosen` overrides a
 * variable's value (e.g. the service to look at); `builtins` are Grafana's own ($__rate_interval, ...).
 * Returns the values each variable took, formatted for substitution.
 */
export async function resolveVariables(
  d: Dashboard,
  run: (expr: string) => Promise<PromSample[]>,
  chosen: Readonly<Record<string, readonly string[]>>,
  builtins: Readonly<Record<string, string>>,
): Promise<{ vars: Record<string, string>; values: Record<string, string[]> }> {
  const vars: Record<string, string> = { ...builtins };
  const values: Record<string, string[]> = {};
  for (const v of d.templating.list) {
    if (v.type === 'datasource') {
      vars[v.name] = 'prometheus';
      continue;
    }
    let vs: string[];
    if (chosen[v.name] !== undefined) vs = [...chosen[v.name]];
    else if (v.type === 'custom') {
      const cur = v.current?.value;
      vs = cur === undefined ? [] : typeof cur === 'string' ? [cur] : [...cur];
    } else if (v.type === 'query') {
      const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
      const m = /^\s*query_result\(([\s\S]*)\)\s*$/.exec(q);
      if (m === null) throw new Error(`variable ${v.name}: only query_result() queries are supported here`);
      const samples = await run(substitute(m[1], vars));
      const re = v.regex ? new RegExp(v.regex.replace(/^\/(.*)\/$/, '$1')) : null;
      const found = new Set<string>();
      for (const s of samples) {
        const line = resultLine(s);
        if (re === null) found.add(line);
        else {
          const c = re.exec(line);
          if (c !== null) found.add(c[1] ?? c[0]);
        }
      }
      vs = [...found].sort();
      // Grafana's default selection: the variable's saved current value if it is among the results, else
      // All for an includeAll variable, else the first result.
      const cur = v.current?.value;
      if (!(v.includeAll === true && (cur === '$__all' || cur === undefined))) {
        const keep = typeof cur === 'string' && found.has(cur) ? cur : vs[0];
        vs = keep === undefined ? [] : [keep];
      }
    } else throw new Error(`variable ${v.name}: type ${v.type} not supported here`);
    values[v.name] = vs;
    // An empty selection matches nothing, as in Grafana (which then shows "No data").
    vars[v.name] = vs.length === 0 ? '__none__' : formatVariable(vs, v.multi === true || vs.length > 1);
  }
  return { vars, values };
}
