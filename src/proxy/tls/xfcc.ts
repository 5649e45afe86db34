/**
 * Envoy's x-forwarded-client-cert (XFCC) header: what the connection manager tells the upstream about the
 * downstream's client certificate, per forward_client_cert_details and set_current_client_cert_details.
 * Element format: `By=<our URI SAN>;Hash=<sha256 of the client cert DER>;Cert="...";Subject="...";URI=...;DNS=...`,
 * elements separated by commas (one per proxy hop).
 */
import { createHash } from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { rfc2253Subject, sansOf } from './san.ts';

export type ForwardClientCertDetails =
  'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

export interface SetCurrentClientCertDetails {
  readonly subject: boolean;
  readonly cert: boolean;
  readonly uri: boolean;
  readonly dns: boolean;
}

export interface XfccConfig {
  readonly forward: ForwardClientCertDetails;
  readonly set: SetCurrentClientCertDetails;
}

export const XFCC_HEADER = 'x-forwarded-client-cert';

interface PeerDetails {
  readonly by: readonly string[];
  readonly hash: string;
  readonly certPem: string;
  readonly subject: string;
  readonly uri: string;
  readonly dns: readonly string[];
}

const DETAILS = Symbol.for('weft.peerCertificateDetails');
type WithDetails = { [DETAILS]?: PeerDetails };

/** Records the verified client certificate of a downstream TLS connection (once per connection). */
export function setPeerCertificateDetails(
  socket: Socket,
  peer: X509Certificate,
  localUriSans: readonly string[],
): void {
  const sans = sansOf(peer);
  (socket as unknown as WithDetails)[DETAILS] = {
    by: localUriSans,
    hash: createHash('sha256').update(peer.raw).digest('hex'),
    certPem: peer.toString(),
    subject: rfc2253Subject(peer),
    uri: sans.uri[0] ?? '',
    dns: sans.dns,
  };
}

/** Reads through HTTP/2's socket proxy too, which forwards property reads to the TLS socket. */
function detailsOf(socket: object | null | undefined): PeerDetails | undefined {
  return socket === null || socket === undefined ? undefined : (socket as WithDetails)[DETAILS];
}

/** The element for the current hop, with the fields set_current_client_cert_details asks for. */
function currentElement(d: PeerDetails, set: SetCurrentClientCertDetails): string {
  const parts = d.by.map((b) => `By=${b}`);
  parts.push(`Hash=${d.hash}`);
  if (set.cert) parts.push(`Cert="${encodeURIComponent(d.certPem)}"`);
  if (set.subject) parts.push(`Subject="${d.subject.replace(/["\\]/g, '\\$&')}"`);
  if (set.uri) parts.push(`URI=${d.uri}`);
  if (set.dns) for (const dns of d.dns) parts.push(`DNS=${dns}`);
  return parts.join(';');
}

/** Applies the policy to a request's headers; `socket` is the request's downstream socket. */
export function applyXfcc(
  headers: Record<string, string | string[] | undefined>,
  config: XfccConfig,
  socket: object | null | undefined,
): void {
  if (config.forward === 'ALWAYS_FORWARD_ONLY') return;
  const details = detailsOf(socket);
  // Every other mode sanitizes unless the client presented a certificate over TLS.
  if (details === undefined || config.forward === 'SANITIZE') {
    delete headers[XFCC_HEADER];
    return;
  }
  if (config.forward === 'FORWARD_ONLY') return;
  const element = currentElement(details, config.set);
  const existing = headers[XFCC_HEADER];
  if (config.forward === 'APPEND_FORWARD' && existing !== undefined && existing !== '') {
    headers[XFCC_HEADER] = `${Array.isArray(existing) ? existing.join(',') : existing},${element}`;
  } else headers[XFCC_HEADER] = element;
}
