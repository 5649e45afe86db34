/**
 * The shop's reviews service, in three versions chosen by REVIEWS_VERSION (the canary):
 *   v1  the customers' reviews only;
 *   v2  the reviews plus the product's rating, asked of the ratings service over gRPC;
 *   v3  as v2, and it also draws the rating as stars ("★★★★☆"), so its answers stand out.
 *
 *   GET /reviews/ID
 *
 * The ratings call goes to ratings:50051 (RATINGS_ADDRESS) with a deadline (RATINGS_DEADLINE_MS): a
 * slow ratings service costs the page its stars, not its reviews.
 *
 * Under `weft up`, grpc_proxy names the sidecar's outbound listener. Left to itself grpc-js would open
 * a CONNECT tunnel through it, and the sidecar would see only bytes: no per-call routing, retries or
 * fault injection. So, as an HTTP/2 client talks to an HTTP/2 proxy, reviews sends its calls to the
 * sidecar itself, as h2c, with `:authority ratings:50051`; the sidecar routes each call like any HTTP
 * request. RATINGS_USE_CONNECT=1 restores grpc-js's own CONNECT tunnel.
 */
import { instanceName, logRequest, propagatedHeaders, sendJson, serveHttp } from '../lib/app.mjs';
import { grpc, Ratings } from '../lib/ratings-proto.mjs';

const VERSION = process.env.REVIEWS_VERSION ?? 'v1';
if (!['v1', 'v2', 'v3'].includes(VERSION))
  throw new Error(`REVIEWS_VERSION: expected v1, v2 or v3, got ${VERSION}`);
const NAME = instanceName(`reviews-${VERSION}`);
const RATINGS_ADDRESS = process.env.RATINGS_ADDRESS ?? 'ratings:50051';
const RATINGS_DEADLINE_MS = Number(process.env.RATINGS_DEADLINE_MS ?? 1500);

const REVIEWS = {
  1: [
    { reviewer: 'Ada', text: 'Keeps tea hot for the whole meeting.' },
    { reviewer: 'Grace', text: 'The lid leaks if you tilt it past forty degrees.' },
  ],
  2: [{ reviewer: 'Linus', text: 'Sturdy, and the handle does not wobble.' }],
  3: [
    { reviewer: 'Barbara', text: 'Bright enough to read by, quiet fan.' },
    { reviewer: 'Edsger', text: 'Does one thing and does it well.' },
  ],
  4: [],
};

/** The proxy for a gRPC target, from the standard environment (as grpc-js reads it), or undefined. */
function proxyFor(target) {
  const proxy = process.env.grpc_proxy ?? process.env.https_proxy ?? process.env.http_proxy;
  if (!proxy) return undefined;
  const host = target.replace(/:\d+$/, '');
  const noProxy = (process.env.no_proxy ?? process.env.NO_PROXY ?? '').split(',').map((h) => h.trim());
  if (noProxy.includes(host) || noProxy.includes('*')) return undefined;
  return new URL(proxy).host;
}

function ratingsClient() {
  const credentials = grpc.credentials.createInsecure();
  const proxy = process.env.RATINGS_USE_CONNECT === '1' ? undefined : proxyFor(RATINGS_ADDRESS);
  if (proxy === undefined) return new Ratings(RATINGS_ADDRESS, credentials);
  return new Ratings(proxy, credentials, {
    'grpc.default_authority': RATINGS_ADDRESS,
    'grpc.enable_http_proxy': 0,
  });
}

const ratings = VERSION === 'v1' ? undefined : ratingsClient();

/** "DEADLINE_EXCEEDED: Deadline exceeded after 1.501s": grpc-js appends resolver and LB timings after a comma. */
function describeError(err) {
  return `${grpc.status[err.code] ?? err.code}: ${String(err.details).split(',')[0]}`;
}

function getRating(productId, headers) {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return new Promise((resolve) => {
    ratings.getRating({ productId }, metadata, { deadline: Date.now() + RATINGS_DEADLINE_MS }, (err, reply) =>
      resolve(err ? { error: describeError(err) } : { reply }),
    );
  });
}

const starsOf = (stars) => '★'.repeat(Math.round(stars)) + '☆'.repeat(5 - Math.round(stars));

serveHttp(NAME, 9080, async (req, res) => {
  const m = req.method === 'GET' ? /^\/reviews\/(\d+)$/.exec(req.url ?? '') : null;
  if (!m) return sendJson(res, 404, { error: 'try GET /reviews/ID' });
  const productId = Number(m[1]);
  const reviews = REVIEWS[productId];
  if (reviews === undefined) return sendJson(res, 404, { error: `no product ${productId}` });
  const body = { productId, version: VERSION, servedBy: NAME, reviews };
  if (ratings !== undefined) {
    const r = await getRating(productId, propagatedHeaders(req.headers));
    if (r.error !== undefined) {
      logRequest(NAME, { call: 'ratings.GetRating', error: r.error });
      body.ratingError = r.error;
    } else {
      body.rating = { stars: r.reply.stars, votes: r.reply.votes };
      if (VERSION === 'v3') body.rating.display = starsOf(r.reply.stars);
    }
  }
  return sendJson(res, 200, body);
});
