/**
 * Istio's CA API, `istio.v1.auth.IstioCertificateService/CreateCertificate`, so the wire format is a known
 * one: a workload sends a CSR (its key never leaves it) with a bearer credential in the `authorization`
 * metadata; the credential, not the CSR, decides the identity. The messages are in src/api/istio/ca-messages.ts.
 */
import { status } from '@grpc/grpc-js';
import type { Metadata, ServerUnaryCall, sendUnaryData, ServiceDefinition } from '@grpc/grpc-js';
import type { Logger } from '../../core/logger.ts';
import { CertificateRequestError } from './authority.ts';
import type { CertificateAuthority } from './authority.ts';
import type { WorkloadTokens } from './workload-tokens.ts';
import {
  CREATE_CERTIFICATE_PATH,
  decodeCertificateRequest,
  decodeCertificateResponse,
  encodeCertificateRequest,
  encodeCertificateResponse,
} from '../../api/istio/ca-messages.ts';
import type { CertificateRequest } from '../../api/istio/ca-messages.ts';

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
  /** The CA that signs: an instance, or a getter when it can be replaced at runtime (a root rotation). */
  readonly authority: CertificateAuthority | (() => CertificateAuthority);
  readonly tokens: WorkloadTokens;
  /** Longest lifetime a workload may ask for (default: the authority's default). */
  readonly maxTtlMs?: number;
  readonly logger: Logger;
}

/** The CreateCertificate handler, for a grpc-js Server's addService with certificateServiceDefinition. */
export function certificateServiceHandlers(opts: CertificateServiceOptions) {
  return {
    CreateCertificate: (call: ServerUnaryCall<Decoded, string[]>, done: sendUnaryData<string[]>): void => {
      const authority = typeof opts.authority === 'function' ? opts.authority() : opts.authority;
      const stats = authority.issuance;
      stats.csrReceived += 1;
      const decoded = call.request;
      if ('error' in decoded) {
        stats.recordRefused('invalid');
        done({ code: status.INVALID_ARGUMENT, details: decoded.error });
        return;
      }
      const token = bearer(call.metadata);
      const identity = token === undefined ? undefined : opts.tokens.identityOf(token);
      if (identity === undefined) {
        stats.recordRefused('unauthenticated');
        done({
          code: status.UNAUTHENTICATED,
          details: token === undefined ? 'no bearer credential' : 'unknown credential',
        });
        return;
      }
      const requested = decoded.request.validitySeconds * 1000;
      const ttl = requested > 0 ? Math.min(requested, opts.maxTtlMs ?? requested) : undefined;
      authority.sign(decoded.request.csr, identity, ttl).then(
        (issued) => {
          stats.recordIssued(issued.serialNumber, issued.notAfter);
          opts.logger.info('certificate issued', {
            identity: authority.spiffeId(identity),
            serial: issued.serialNumber,
            notAfter: issued.notAfter.toISOString(),
          });
          done(null, [...issued.certChain]);
        },
        (err: unknown) => {
          stats.recordRefused(err instanceof CertificateRequestError ? err.kind : 'error');
          if (err instanceof CertificateRequestError) {
            opts.logger.warn('certificate refused', {
              identity: authority.spiffeId(identity),
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
