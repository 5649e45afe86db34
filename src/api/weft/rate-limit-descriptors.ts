/**
 * The contract between the proxies and `weft ratelimit` for global limits, in Envoy's RLS terms. For a
 * RateLimitPolicy `ns/name`, a proxy sends (domain = the policy's `global.domain`, default "weft"):
 * - `[(weft.policy, ns/name)]` for the policy's `default` limit;
 * - `[(weft.policy, ns/name), (client | remote_address, <client value>)]` for its `perClient` limit
 *   (no descriptor when the request has no client value, e.g. the header is missing).
 * The service finds the limit from the same RateLimitPolicy resources.
 */
export const DEFAULT_RLS_DOMAIN = 'weft';
/** First entry of every descriptor: which policy. */
export const POLICY_DESCRIPTOR_KEY = 'weft.policy';
/** Second entry's key for header, path, method and principal client keys. */
export const CLIENT_DESCRIPTOR_KEY = 'client';
/** Second entry's key for the remote address (Envoy's remote_address action fixes it). */
export const REMOTE_ADDRESS_DESCRIPTOR_KEY = 'remote_address';
/** The route rate_limits stage of global descriptors (local limits use stage 0). */
export const GLOBAL_RATE_LIMIT_STAGE = 1;
