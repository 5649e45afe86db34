/**
 * The shop's frontend: one JSON page per product, assembled from the catalog (the product) and the
 * reviews service (what customers said, and, from reviews v2/v3, the stars). Both calls are plain
 * HTTP to mesh service names (catalog:9080, reviews:9080); under `weft up` they leave through the
 * sidecar because node:http honours HTTP_PROXY when NODE_USE_ENV_PROXY=1.
 *
 *   GET /                the page for product 1
 *   GET /products/ID     the page for product ID
 *   GET /products        the catalog's product list
 */
import http from 'node:http';
import { instanceName, propagatedHeaders, sendJson, serveHttp } from '../lib/app.mjs';

const NAME = instanceName('frontend');
const CATALOG_URL = process.env.CATALOG_URL ?? 'http://catalog:9080';
const REVIEWS_URL = process.env.REVIEWS_URL ?? 'http://reviews:9080';
const TIMEOUT_MS = Number(process.env.UPSTREAM_TIMEOUT_MS ?? 5000);

/**
 * GET a JSON document; resolves to {status, body, text} or {status: 0, error} when nothing came back.
 * node:http rather than fetch: with NODE_USE_ENV_PROXY=1 node:http sends plain-HTTP calls to the proxy
 * in absolute form (GET http://catalog:9080/...), which the sidecar routes request by request, while
 * Node's fetch opens a CONNECT tunnel even for http:// URLs, hiding each request from the sidecar.
 */
function getJson(url, headers) {
  return new Promise((resolve) => {
    const req = http.get(url, { headers, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
      res.on('end', () => {
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode, body, text });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message }));
  });
}

/** Why an upstream answer is not usable, in a few words for the page. */
function failure(r) {
  if (r.status === 0) return r.error;
  const reason = r.body?.error ?? r.text?.trim().slice(0, 120);
  return reason ? `${r.status}: ${reason}` : String(r.status);
}

async function productPage(id, headers, res) {
  // The two calls are independent: make them together.
  const [product, reviews] = await Promise.all([
    getJson(`${CATALOG_URL}/products/${id}`, headers),
    getJson(`${REVIEWS_URL}/reviews/${id}`, headers),
  ]);
  if (product.status === 404) return sendJson(res, 404, { error: `no product ${id}` });
  // Without the product there is no page; without reviews there is one, saying so.
  if (product.status !== 200 || product.body === undefined)
    return sendJson(res, 503, { error: 'the catalog is unavailable', catalog: failure(product) });
  const page = { product: product.body, frontend: NAME };
  if (reviews.status === 200 && reviews.body !== undefined) page.reviews = reviews.body;
  else page.reviewsError = failure(reviews);
  return sendJson(res, 200, page);
}

serveHttp(NAME, 8080, async (req, res) => {
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'only GET' });
  const path = new URL(req.url ?? '/', 'http://frontend').pathname;
  const headers = propagatedHeaders(req.headers);
  if (path === '/') return productPage(1, headers, res);
  const m = /^\/products\/(\d+)$/.exec(path);
  if (m) return productPage(Number(m[1]), headers, res);
  if (path === '/products') {
    const list = await getJson(`${CATALOG_URL}/products`, headers);
    if (list.status === 200 && list.body !== undefined) return sendJson(res, 200, list.body);
    return sendJson(res, 503, { error: 'the catalog is unavailable', catalog: failure(list) });
  }
  return sendJson(res, 404, { error: `no page ${path}` });
});
