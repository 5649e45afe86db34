/**
 * Names Istio's control plane and its proxies agree on, shared by Weft's generator, agent and proxy:
 * the SDS secrets of a workload's certificate and of the trust bundle, the SDS cluster that stands for
 * the local agent, and the label of workloads whose sidecar accepts mTLS.
 */
export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';
export const AGENT_SDS_CLUSTER = 'sds-grpc';
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
