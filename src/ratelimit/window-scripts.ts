/**
 * The Lua scripts that count hits in Redis. Each check is one script, so it is atomic, and it reads Redis'
 * own clock (TIME), so every service replica agrees on where a window starts whatever its host's clock says.
 *
 * Both take KEYS[1] = the counter's key prefix (a window's counter is `<prefix>:<window start in ms>`) and
 * ARGV = window length in ms, limit, hits; both return { over (0|1), remaining, ms until the window resets }.
 * The window keys are derived inside the script from Redis' clock, so they cannot be declared up front: the
 * scripts suit a single Redis (or a cluster only with all of one prefix's keys on one node).
 */

/**
 * Fixed window: hits in the current window, over-limit ones included (as Envoy's reference service counts),
 * so a client over its limit stays over it until the window ends.
 */
export const FIXED_WINDOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hits = tonumber(ARGV[3])
local start = now - (now % window)
local key = KEYS[1] .. ':' .. start
local count = redis.call('INCRBY', key, hits)
if count == hits then
  redis.call('PEXPIRE', key, window)
end
local over = 0
if count > limit then over = 1 end
return { over, math.max(0, limit - count), start + window - now }
`;

/**
 * Sliding window counter: the previous window's count, weighted by the share of it still inside the sliding
 * window that ends now, plus the current window's count. Only admitted hits are counted, so a client that
 * keeps sending over its limit regains capacity as the window slides instead of locking itself out.
 * A window's counter lives two windows, because the next window reads it as its previous one.
 */
export const SLIDING_WINDOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hits = tonumber(ARGV[3])
local start = now - (now % window)
local key = KEYS[1] .. ':' .. start
local current = tonumber(redis.call('GET', key) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (start - window)) or '0')
local used = previous * (window - (now - start)) / window + current
if used + hits > limit then
  return { 1, math.max(0, math.floor(limit - used)), start + window - now }
end
if redis.call('INCRBY', key, hits) == hits then
  redis.call('PEXPIRE', key, 2 * window)
end
return { 0, math.max(0, math.floor(limit - used - hits)), start + window - now }
`;
