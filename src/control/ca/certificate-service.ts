/**
 * Istio's CA API, `istio.v1.auth.IstioCertificateService/CreateCertificate`, so the wire format is a known
 * one: a workload sends a CSR (its key never leaves it) with a bearer credential in the `authorization`
 * metadata; the credential, not the CSR, decides the identity. Messages (istio/api security/v1alpha1/ca.proto):
 * IstioCertificateRequest { string csr = 1; int64 validity_duration = 3 (seconds); Struct metadata = 4 },
 * IstioCertificateResponse { repeated string cert_chain = 1 } — small enough to encode by hand with
 * protobufjs' Reader and Writer, no proto-loader.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Metadata, ServerUnaryCall, sendUnaryData, ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { Logger } from '../../core/logger.ts';
import { CertificateRequestError } from './authority.ts';
import type { CertificateAuthority, WorkloadIdentity } from './authority.ts';

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

/**
 * Bootstrap credentials of local mode: a token per registered workload, saying which identity it may ask
 * for. (Kubernetes service-account tokens come with the Kubernetes issue.)
 */
export class WorkloadTokens {
  readonly #byToken = new Map<string, WorkloadIdentity>();

  issue(identity: WorkloadIdentity): string {
    const token = randomBytes(32).toString('base64url');
    this.#byToken.set(token, { namespace: identity.namespace, serviceAccount: identity.serviceAccount });
    return token;
  }

  revoke(token: string): void {
    this.#byToken.delete(token);
  }

  identityOf(token: string): WorkloadIdentity | undefined {
    return this.#byToken.get(token);
  }
}

type Decoded = { request: CertificateRequest } | { error: string };

export const certificateServiceDefinition: ServiceDefinition = {
  CreateCertificate: {
    path: CREATE_CERTIFICATE_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (req: CertificateRequest) => Buffer.from(encodeCertificateRequest(req)),
    // A malformed message becomes an INVALID_ARGUMENT answer rather than grpc-js' generic INTERNAL.
    requestDeserialize: (bytes: Buffer): Decoded => {
      try {
        return { request: decodeCertificateRequest(bytes) };
      } catch (err) {
        return { error: `malformed IstioCertificateRequest: ${(err as Error).message}` };
      }
    },
    responseSerialize: (chain: readonly string[]) => Buffer.from(encodeCertificateResponse(chain)),
    responseDeserialize: (bytes: Buffer) => decodeCertificateResponse(bytes),
  },
};

function bearer(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(value);
  return m?.[1];
}

export interface CertificateServiceOptions {
  readonly authority: CertificateAuthority;
  readonly tokens: WorkloadTokens;
  /** Longest lifetime a workload may ask for (default: the authority's default). */
  readonly maxTtlMs?: number;
  readonly logger: Logger;
}

/** The CreateCertificate handler, for a grpc-js Server's addService with certificateServiceDefinition. */
export function certificateServiceHandlers(opts: CertificateServiceOptions) {
  return {
    CreateCertificate: (call: ServerUnaryCall<Decoded, string[]>, done: sendUnaryData<string[]>): void => {
      const decoded = call.request;
      if ('error' in decoded) {
        done({ code: status.INVALID_ARGUMENT, details: decoded.error });
        return;
      }
      const token = bearer(call.metadata);
      const identity = token === undefined ? undefined : opts.tokens.identityOf(token);
      if (identity === undefined) {
        done({
          code: status.UNAUTHENTICATED,
          details: token === undefined ? 'no bearer credential' : 'unknown credential',
        });
        return;
      }
      const requested = decoded.request.validitySeconds * 1000;
      const ttl = requested > 0 ? Math.min(requested, opts.maxTtlMs ?? requested) : undefined;
      opts.authority.sign(decoded.request.csr, identity, ttl).then(
        (issued) => {
          opts.logger.info('certificate issued', {
            identity: opts.authority.spiffeId(identity),
            serial: issued.serialNumber,
            notAfter: issued.notAfter.toISOString(),
          });
          done(null, [...issued.certChain]);
        },
        (err: unknown) => {
          if (err instanceof CertificateRequestError) {
            opts.logger.warn('certificate refused', {
              identity: opts.authority.spiffeId(identity),
              error: err.message,
            });
            done({
              code: err.kind === 'forbidden' ? status.PERMISSION_DENIED : status.INVALID_ARGUMENT,
              details: err.message,
            });
          } else done({ code: status.INTERNAL, details: `signing failed: ${String(err)}` });
        },
      );
    },
  };
}
