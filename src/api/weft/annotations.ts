/**
 * Weft's own annotations on Istio resources, for choices Istio's schemas cannot express. Shared by
 * the generator (which acts on them) and `weft analyze` (which reports values it does not know).
 */

/**
 * On a DestinationRule: the load balancer of its clusters, for policies Istio's
 * trafficPolicy.loadBalancer enum has no value for. `peak-ewma` selects Weft's PEAK_EWMA policy.
 */
export const LOAD_BALANCER_ANNOTATION = 'weft.dev/load-balancer';

export const LOAD_BALANCER_VALUES: readonly string[] = ['peak-ewma'];
