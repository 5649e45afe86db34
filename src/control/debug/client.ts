/** Reads the control plane's debug endpoints (for `weft proxy-status` / `proxy-config`), with errors a person can act on. */
export type DebugResult<T> = { ok: true; value: T } | { ok: false; error: string };

const TIMEOUT_MS = 10_000;

export async function fetchDebugJson<T>(base: string, path: string): Promise<DebugResult<T>> {
  let url: URL;
  try {
    url = new URL(path, base);
  } catch {
    return { ok: false, error: `invalid control plane URL ${JSON.stringify(base)}` };
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return { ok: false, error: `cannot reach the control plane at ${url.origin}: ${why}` };
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {
      ok: false,
      error: `${url.pathname}: expected JSON, got HTTP ${res.status}: ${text.slice(0, 200)}`,
    };
  }
  if (!res.ok) {
    const message = (body as { error?: unknown }).error;
    return {
      ok: false,
      error: typeof message === 'string' ? message : `HTTP ${res.status} from ${url.pathname}`,
    };
  }
  return { ok: true, value: body as T };
}
