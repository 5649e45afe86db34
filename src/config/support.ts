/**
 * What Weft implements of each Istio kind, field by field. The one place to update when the
 * translation learns a field: everything not listed here is reported by `weft analyze` (and by the
 * control plane) as "not supported by Weft, ignored" (WE0200), never silently dropped.
 *
 * A tree per kind: `true` supports a field with everything below it; an object lists the supported
 * fields of that object (for a list, of each of its items). Kinds whose behaviour Weft does not
 * implement yet at all (they are stored and served) are in `notEnforcedKinds` (WE0201).
 */
import type { IstioKind } from '../api/istio/resource.ts';
import { istioSchemas } from '../api/istio/schemas.ts';
import type { SpecSchema } from '../api/istio/schemas.ts';
import type { PathSegment } from './diagnostic.ts';

export type SupportTree = true | { readonly [field: string]: SupportTree };

const stringMatch = true;

const loadBalancer: SupportTree = {
  simple: true,
  consistentHash: {
    httpHeaderName: true,
    httpCookie: true,
    useSourceIp: true,
    httpQueryParameterName: true,
    ringHash: true,
    maglev: true,
    minimumRingSize: true,
  },
  localityLbSetting: true,
};

// Translated into the cluster's circuit breakers and HTTP protocol options; tcp.idleTimeout into the idle_timeout
// of the outbound tcp_proxy chains that send to the rule's host (the top-level policy's only, as Istio reads it).
// http.h2UpgradePolicy makes an outbound cluster HTTP/2 (see clusters.ts); tcp.maxConnectionDuration becomes the
// cluster's max_connection_duration (upstream HTTP connections; not the tcp_proxy's connection length).
// http.http2KeepAlive becomes the HTTP/2 clusters' connection_keepalive (an interval is needed; the timeout
// defaults to it); http.useClientProtocol makes the cluster follow each request's protocol (as a sniffed port's
// does). Not (yet): tcp.tcpKeepalive.
const connectionPool: SupportTree = {
  tcp: { maxConnections: true, connectTimeout: true, idleTimeout: true, maxConnectionDuration: true },
  http: {
    http1MaxPendingRequests: true,
    http2MaxRequests: true,
    maxRequestsPerConnection: true,
    maxRetries: true,
    idleTimeout: true,
    maxConcurrentStreams: true,
    h2UpgradePolicy: true,
    http2KeepAlive: true,
    useClientProtocol: true,
  },
};

// budgetInterval has no Envoy equivalent: Envoy's budget bounds concurrent retries, not retries per interval.
const retryBudget: SupportTree = { percent: true, minRetryConcurrency: true };

// outlierDetectionHttpErrorCodes is not translated: Weft's detector counts 5xx and gateway errors only.
const outlierDetection: SupportTree = {
  consecutive5xxErrors: true,
  consecutiveGatewayErrors: true,
  consecutiveErrors: true,
  splitExternalLocalOriginErrors: true,
  consecutiveLocalOriginFailures: true,
  interval: true,
  baseEjectionTime: true,
  maxEjectionPercent: true,
  minHealthPercent: true,
};

/** DestinationRule tls: ISTIO_MUTUAL (the mesh's certificates), SIMPLE and MUTUAL with files, DISABLE. */
const clientTls: SupportTree = {
  mode: true,
  clientCertificate: true,
  privateKey: true,
  caCertificates: true,
  subjectAltNames: true,
  sni: true,
};

const portTrafficPolicy: SupportTree = {
  port: true,
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
};

const trafficPolicy: SupportTree = {
  loadBalancer,
  connectionPool,
  outlierDetection,
  retryBudget,
  tls: clientTls,
  portLevelSettings: portTrafficPolicy,
};

const workloadEntry: SupportTree = {
  address: true,
  ports: true,
  labels: true,
  locality: true,
  weight: true,
  serviceAccount: true,
};

const sidecarPort: SupportTree = true;

export const supportedFields: Readonly<Partial<Record<IstioKind, SupportTree>>> = {
  VirtualService: {
    exportTo: true,
    hosts: true,
    gateways: true,
    http: {
      name: true,
      match: {
        name: true,
        uri: stringMatch,
        headers: true,
        queryParams: true,
        method: stringMatch,
        authority: stringMatch,
        port: true,
        sourceLabels: true,
        gateways: true,
        withoutHeaders: true,
        ignoreUriCase: true,
        scheme: stringMatch,
      },
      route: true,
      rewrite: true,
      redirect: true,
      directResponse: true,
      headers: true,
      timeout: true,
      retries: {
        attempts: true,
        perTryTimeout: true,
        retryOn: true,
        retryIgnorePreviousHosts: true,
        backoff: true,
        retryRemoteLocalities: true,
      },
      fault: true,
      corsPolicy: {
        allowOrigins: true,
        allowOrigin: true,
        allowMethods: true,
        allowHeaders: true,
        exposeHeaders: true,
        maxAge: true,
        allowCredentials: true,
        unmatchedPreflights: true,
      },
      mirror: true,
      mirrorPercentage: true,
      mirrors: true,
      // The deprecated mirrorPercent / mirror_percent (integer percents) are reported: use mirrorPercentage.
    },
    // tcp routes: Sidecar egress TCP ports and Gateway TCP servers (one service per port-bound listener).
    tcp: {
      match: { port: true, sourceLabels: true, gateways: true, sourceNamespace: true },
      route: true,
    },
    // tls routes (SNI): Gateway PASSTHROUGH servers (a chain per match, selected by sniHosts). Not on sidecars
    // yet: a VirtualService bound only to `mesh` has its tls routes reported (meshOnlyTlsRoutes).
    tls: {
      match: { sniHosts: true, port: true, sourceLabels: true, gateways: true, sourceNamespace: true },
      route: true,
    },
  },
  DestinationRule: {
    exportTo: true,
    host: true,
    trafficPolicy,
    subsets: { name: true, labels: true, trafficPolicy },
  },
  Gateway: {
    selector: true,
    servers: {
      name: true,
      port: true,
      hosts: true,
      // HTTPS/TLS servers: SIMPLE, MUTUAL, OPTIONAL_MUTUAL and ISTIO_MUTUAL terminate with certificate files (or
      // the mesh certificate), PASSTHROUGH routes by SNI. Not: credentialName(s) / caCertCredentialName
      // (Kubernetes secrets), tlsCertificates, caCrl, verifyCertificateSpki/Hash (no validator for them).
      // AUTO_PASSTHROUGH servers get no chain.
      tls: {
        httpsRedirect: true,
        mode: true,
        serverCertificate: true,
        privateKey: true,
        caCertificates: true,
        subjectAltNames: true,
        minProtocolVersion: true,
        maxProtocolVersion: true,
        cipherSuites: true,
        ecdhCurves: true,
      },
    },
  },
  ServiceEntry: {
    exportTo: true,
    hosts: true,
    addresses: true,
    ports: true,
    location: true,
    resolution: true,
    endpoints: workloadEntry,
    workloadSelector: true,
  },
  WorkloadEntry: workloadEntry,
  // WorkloadGroup is stored; auto-registration does not need it yet (any proxy with metadata registers).
  WorkloadGroup: {},
  PeerAuthentication: { selector: true, mtls: true, portLevelMtls: true },
  // targetRef(s) (waypoints and Kubernetes Gateways) and CUSTOM's provider are not implemented: reported.
  AuthorizationPolicy: {
    selector: true,
    action: true,
    rules: {
      from: {
        source: {
          principals: true,
          notPrincipals: true,
          requestPrincipals: true,
          notRequestPrincipals: true,
          namespaces: true,
          notNamespaces: true,
          ipBlocks: true,
          notIpBlocks: true,
          remoteIpBlocks: true,
          notRemoteIpBlocks: true,
        },
      },
      to: {
        operation: {
          hosts: true,
          notHosts: true,
          ports: true,
          notPorts: true,
          methods: true,
          notMethods: true,
          paths: true,
          notPaths: true,
        },
      },
      when: true,
    },
  },
  RequestAuthentication: {
    selector: true,
    jwtRules: {
      issuer: true,
      audiences: true,
      jwksUri: true,
      jwks: true,
      fromHeaders: true,
      fromParams: true,
      fromCookies: true,
      outputPayloadToHeader: true,
      forwardOriginalToken: true,
      outputClaimToHeaders: true,
    },
  },
  // targetRef(s) (waypoints, Kubernetes Gateways) are not applied; tracing's formatter tags,
  // useRequestIdForTraceSampling, enableIstioTags and disableContextPropagation are not implemented.
  Telemetry: {
    selector: true,
    metrics: {
      providers: true,
      reportingInterval: true,
      overrides: {
        match: { metric: true, customMetric: true, mode: true },
        disabled: true,
        tagOverrides: true,
      },
    },
    tracing: {
      match: true,
      providers: true,
      randomSamplingPercentage: true,
      disableSpanReporting: true,
      customTags: true,
    },
    accessLogging: { match: true, providers: true, disabled: true, filter: true },
  },
  Sidecar: {
    workloadSelector: true,
    ingress: { port: sidecarPort, bind: true, defaultEndpoint: true },
    egress: { port: sidecarPort, bind: true, hosts: true },
  },
};

/** Stored and served, but their behaviour is not implemented yet (none at present). */
export const notEnforcedKinds: ReadonlySet<IstioKind> = new Set<IstioKind>();

/**
 * VirtualService `tls` routes are translated for gateways only: on a VirtualService bound to no gateway but
 * `mesh` (sidecars), they are reported whole.
 */
function meshOnlyTlsRoutes(kind: IstioKind, spec: unknown): boolean {
  if (kind !== 'VirtualService' || typeof spec !== 'object' || spec === null) return false;
  const { tls, gateways } = spec as { tls?: unknown; gateways?: unknown };
  if (tls === undefined || tls === null) return false;
  return !Array.isArray(gateways) || gateways.every((g) => g === 'mesh');
}

/** The paths (below `spec`) of the fields present in `spec` that Weft does not support. */
export function unsupportedFieldPaths(kind: IstioKind, spec: unknown): PathSegment[][] {
  const tree = supportedFields[kind];
  if (tree === undefined || tree === true) return [];
  const found: PathSegment[][] = [];
  if (meshOnlyTlsRoutes(kind, spec)) {
    const { tls: _tls, ...rest } = spec as Record<string, unknown>;
    found.push(['tls']);
    spec = rest;
  }
  const walk = (value: unknown, node: SupportTree, path: PathSegment[]): void => {
    if (node === true) return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, node, [...path, i]));
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (const [field, child] of Object.entries(value)) {
      if (child === undefined || child === null) continue;
      const sub = Object.hasOwn(node, field) ? node[field] : undefined;
      if (sub === undefined) found.push([...path, field]);
      else walk(child, sub, [...path, field]);
    }
  };
  walk(spec, tree, []);
  return found;
}

/** Walks a kind's schema beside its support tree; `[]` in paths marks list items. */
function compareWithSchema(kind: IstioKind): { unsupported: string[]; notInSchema: string[] } {
  const root = istioSchemas.schemas[kind];
  const tree = supportedFields[kind];
  const result = { unsupported: [] as string[], notInSchema: [] as string[] };
  if (!root || tree === undefined || tree === true) return result;
  const defs = (root.$defs ?? {}) as Record<string, SpecSchema>;
  const resolve = (s: SpecSchema): SpecSchema =>
    typeof s.$ref === 'string' ? resolve(defs[s.$ref.slice('#/$defs/'.length)] ?? {}) : s;
  const walk = (schema: SpecSchema, node: SupportTree, prefix: string): void => {
    if (node === true) return;
    let s = resolve(schema);
    let suffix = '';
    if (s.type === 'array' && typeof s.items === 'object' && s.items !== null) {
      s = resolve(s.items as SpecSchema);
      suffix = '[]';
    }
    const properties = (s.properties ?? {}) as Record<string, SpecSchema>;
    const join = (field: string): string => `${prefix}${suffix}${prefix || suffix ? '.' : ''}${field}`;
    for (const [field, child] of Object.entries(properties)) {
      const sub = Object.hasOwn(node, field) ? node[field] : undefined;
      if (sub === undefined) result.unsupported.push(join(field));
      else walk(child, sub, join(field));
    }
    for (const field of Object.keys(node))
      if (!Object.hasOwn(properties, field)) result.notInSchema.push(join(field));
  };
  walk(root, tree, '');
  return result;
}

/**
 * Every field path of a kind's schema that Weft does not support, derived from the CRD schema and the
 * table above: the explicit list behind WE0200.
 */
export function unsupportedSchemaPaths(kind: IstioKind): string[] {
  return compareWithSchema(kind).unsupported;
}

/** Fields the table names that the kind's schema does not have: typos in the table (a test keeps this empty). */
export function supportTableTypos(kind: IstioKind): string[] {
  return compareWithSchema(kind).notInSchema;
}
