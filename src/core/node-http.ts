/**
 * node:http, fetched as a CommonJS builtin. An ES `import ... from 'node:http'` builds the module's namespace, which
 * reads every export, including the lazy `WebSocket`/`CloseEvent`/`MessageEvent` getters; those load Node's bundled
 * undici and web streams (measured: about 3 MB of heap and RSS) that the proxy never uses.
 */
export const nodeHttp = process.getBuiltinModule('node:http');
