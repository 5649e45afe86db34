/**
 * Istio's CA API messages (istio/api security/v1alpha1/ca.proto), small enough to encode by hand with
 * protobufjs' Reader and Writer: IstioCertificateRequest { string csr = 1; int64 validity_duration = 3
 * (seconds); Struct metadata = 4 } and IstioCertificateResponse { repeated string cert_chain = 1 }.
 * Shared by the control plane's CA service and the proxy's certificate agent.
 */
import protobuf from 'protobufjs';

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

export interface CertificateRequest {
  readonly csr: string;
  /** Seconds; 0 when not given. */
  readonly validitySeconds: number;
}

export function decodeCertificateRequest(bytes: Uint8Array): CertificateRequest {
  const r = protobuf.Reader.create(bytes);
  let csr = '';
  let validitySeconds = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        csr = r.string();
        break;
      case 3:
        validitySeconds = Number(r.int64());
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return { csr, validitySeconds };
}

export function encodeCertificateRequest(req: CertificateRequest): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).string(req.csr);
  if (req.validitySeconds !== 0) w.uint32(3 << 3).int64(req.validitySeconds);
  return w.finish();
}

export function encodeCertificateResponse(certChain: readonly string[]): Uint8Array {
  const w = protobuf.Writer.create();
  for (const pem of certChain) w.uint32((1 << 3) | 2).string(pem);
  return w.finish();
}

export function decodeCertificateResponse(bytes: Uint8Array): string[] {
  const r = protobuf.Reader.create(bytes);
  const chain: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) chain.push(r.string());
    else r.skipType(tag & 7);
  }
  return chain;
}
