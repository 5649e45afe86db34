/** Semantic checks of VirtualServices: references (gateways, hosts, subsets), weights, host conflicts. */
import type { IstioResourceOf } from '../../api/istio/resource.ts';
import type { Destination } from '../../api/istio/networking.ts';
import { Codes } from '../codes.ts';
import type { Diagnostic, PathSegment } from '../diagnostic.ts';
import { MESH_GATEWAY } from '../hosts.ts';
import { fieldDiagnostic } from './context.ts';
import type { AnalysisContext } from './context.ts';

type VirtualServiceResource = IstioResourceOf<'VirtualService'>;

interface DestinationAt {
  destination: Destination;
  path: PathSegment[];
}

interface WeightedRoutes {
  weights: (number | undefined)[];
  path: PathSegment[];
}

function destinationsOf(vs: VirtualServiceResource): DestinationAt[] {
  const out: DestinationAt[] = [];
  for (const protocol of ['http', 'tcp', 'tls'] as const) {
    (vs.spec[protocol] ?? []).forEach((rule, i) => {
      (rule.route ?? []).forEach((r, j) => {
        if (r.destination)
          out.push({ destination: r.destination, path: ['spec', protocol, i, 'route', j, 'destination'] });
      });
    });
  }
  (vs.spec.http ?? []).forEach((rule, i) => {
    if (rule.mirror) out.push({ destination: rule.mirror, path: ['spec', 'http', i, 'mirror'] });
    (rule.mirrors ?? []).forEach((m, k) => {
      if (m.destination)
        out.push({ destination: m.destination, path: ['spec', 'http', i, 'mirrors', k, 'destination'] });
    });
  });
  return out;
}

function routesOf(vs: VirtualServiceResource): WeightedRoutes[] {
  const out: WeightedRoutes[] = [];
  for (const protocol of ['http', 'tcp', 'tls'] as const)
    (vs.spec[protocol] ?? []).forEach((rule, i) => {
      if (rule.route)
        out.push({ weights: rule.route.map((r) => r.weight), path: ['spec', protocol, i, 'route'] });
    });
  return out;
}

function checkGatewayReferences(vs: VirtualServiceResource, ctx: AnalysisContext, out: Diagnostic[]): void {
  const refs: { ref: string; path: PathSegment[] }[] = (vs.spec.gateways ?? []).map((ref, i) => ({
    ref,
    path: ['spec', 'gateways', i],
  }));
  for (const protocol of ['http', 'tcp', 'tls'] as const)
    (vs.spec[protocol] ?? []).forEach((rule, i) =>
      (rule.match ?? []).forEach((m, j) =>
        (m.gateways ?? []).forEach((ref, k) =>
          refs.push({ ref, path: ['spec', protocol, i, 'match', j, 'gateways', k] }),
        ),
      ),
    );
  for (const { ref, path } of refs)
    if (ref !== MESH_GATEWAY && !ctx.hasGateway(ref))
      out.push(
        fieldDiagnostic(Codes.ReferencedResourceNotFound, vs, path, `Referenced gateway not found: "${ref}"`),
      );
}

function checkDestinations(vs: VirtualServiceResource, ctx: AnalysisContext, out: Diagnostic[]): void {
  const reportedHosts = new Set<string>();
  for (const { destination, path } of destinationsOf(vs)) {
    const host = destination.host;
    if (ctx.serviceEntriesFor(host).length === 0 && !reportedHosts.has(host)) {
      reportedHosts.add(host);
      out.push(
        fieldDiagnostic(
          Codes.UnknownHost,
          vs,
          [...path, 'host'],
          `host "${host}" is not defined by any ServiceEntry (it may be a Kubernetes service, which Weft cannot see)`,
        ),
      );
    }
    const subset = destination.subset;
    if (subset === undefined || subset === '') continue;
    const defined = ctx
      .destinationRulesFor(host)
      .some((dr) => (dr.spec.subsets ?? []).some((s) => s.name === subset));
    if (!defined)
      out.push(
        fieldDiagnostic(
          Codes.ReferencedResourceNotFound,
          vs,
          [...path, 'subset'],
          `Referenced host+subset in destinationrule not found: "${host}+${subset}"`,
        ),
      );
  }
}

function checkWeights(vs: VirtualServiceResource, out: Diagnostic[]): void {
  for (const { weights, path } of routesOf(vs)) {
    weights.forEach((w, j) => {
      if (w !== undefined && w < 0)
        out.push(
          fieldDiagnostic(
            Codes.InvalidWeights,
            vs,
            [...path, j, 'weight'],
            `weight must not be negative, got ${w}`,
          ),
        );
    });
    if (weights.length < 2 || weights.some((w) => w !== undefined && w < 0)) continue;
    const sum = weights.reduce<number>((a, w) => a + (w ?? 0), 0);
    const unweighted = weights.filter((w) => w === undefined).length;
    if (sum === 0)
      out.push(
        fieldDiagnostic(
          Codes.InvalidWeights,
          vs,
          path,
          "the destinations' weights add up to 0: no traffic can be routed",
        ),
      );
    else if (sum !== 100)
      out.push(
        fieldDiagnostic(
          Codes.WeightsNot100,
          vs,
          path,
          `weights add up to ${sum}, not 100; traffic is split in proportion to them` +
            (unweighted > 0 ? ` and ${unweighted} destination(s) without a weight get none` : ''),
        ),
      );
  }
}

/** Two VirtualServices that bind the same host to the same gateway: behaviour depends on which one wins. */
function checkHostConflicts(ctx: AnalysisContext, out: Diagnostic[]): void {
  const owners = new Map<string, { vs: VirtualServiceResource; hostIndex: number }[]>();
  for (const vs of ctx.list('VirtualService')) {
    const gateways = vs.spec.gateways && vs.spec.gateways.length > 0 ? vs.spec.gateways : [MESH_GATEWAY];
    (vs.spec.hosts ?? []).forEach((host, hostIndex) => {
      for (const gateway of new Set(gateways)) {
        const key = `${gateway}\n${host}`;
        const list = owners.get(key) ?? [];
        if (!list.some((o) => o.vs === vs)) list.push({ vs, hostIndex });
        owners.set(key, list);
      }
    });
  }
  for (const [key, list] of owners) {
    if (list.length < 2) continue;
    const [gateway, host] = key.split('\n');
    const names = list.map((o) => `${o.vs.metadata.namespace}/${o.vs.metadata.name}`);
    for (const { vs, hostIndex } of list) {
      const others = names.filter((n) => n !== `${vs.metadata.namespace}/${vs.metadata.name}`).join(', ');
      out.push(
        gateway === MESH_GATEWAY
          ? fieldDiagnostic(
              Codes.ConflictingMeshGatewayHosts,
              vs,
              ['spec', 'hosts', hostIndex],
              `host "${host}" is also defined for the mesh by VirtualService ${others}; merge them into one resource`,
            )
          : fieldDiagnostic(
              Codes.ConflictingGatewayHosts,
              vs,
              ['spec', 'hosts', hostIndex],
              `host "${host}" on gateway ${gateway} is also defined by VirtualService ${others}; Istio merges their routes, in an order the configuration does not define`,
            ),
      );
    }
  }
}

export function checkVirtualServices(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const vs of ctx.list('VirtualService')) {
    checkGatewayReferences(vs, ctx, out);
    checkDestinations(vs, ctx, out);
    checkWeights(vs, out);
  }
  checkHostConflicts(ctx, out);
  return out;
}
