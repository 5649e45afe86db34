/**
 * What a proxy knows about the workload at the other end of a request (Istio's peer metadata): learnt from
 * the control plane's endpoint metadata, the mTLS peer identity, or the metadata header Weft proxies
 * exchange. Every field is optional: what is unknown is reported as `unknown`, as in Istio.
 */
export interface PeerMetadata {
  /** The workload (Istio's WORKLOAD_NAME, e.g. the Deployment name). */
  readonly workload?: string;
  readonly namespace?: string;
  /** The workload's labels (app, version, service.istio.io/canonical-name, ...). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Istio's CLUSTER_ID. */
  readonly cluster?: string;
  /** The SPIFFE identity, when known (from the peer certificate or the exchanged metadata). */
  readonly principal?: string;
}
