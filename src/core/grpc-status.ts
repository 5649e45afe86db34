/** gRPC status code names indexed by code (0 OK … 16 UNAUTHENTICATED), spelled as gRPC and Istio spell them. */
export const GRPC_STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** Envoy's gRPC → HTTP status mapping (Grpc::Utility::grpcToHttpStatus), indexed by code. */
const HTTP_STATUS_BY_GRPC: readonly number[] = [
  200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
];

/** The HTTP status a grpc-status value stands for; 500 for an unknown or unreadable code, as in Envoy. */
export function httpStatusForGrpc(grpcStatus: string): number {
  const text = grpcStatus.trim();
  return (/^\d{1,2}$/.test(text) ? HTTP_STATUS_BY_GRPC[Number(text)] : undefined) ?? 500;
}
