/** HTTP connection manager counters with Envoy's names (`http.<stat_prefix>.*`). */
import type { Counter, Gauge, Histogram, StatsStore } from '../stats/store.ts';

export class HcmStats {
  readonly rqTotal: Counter;
  readonly rqActive: Gauge;
  readonly rqHttp1Total: Counter;
  readonly rqHttp2Total: Counter;
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly cxHttp1Total: Counter;
  readonly cxHttp2Total: Counter;
  readonly cxProtocolError: Counter;
  /** Streams ended by a stream or route idle timeout (Envoy's name; request_timeout is Node's 408). */
  readonly rqIdleTimeout: Counter;
  readonly rqNoRoute: Counter;
  readonly rqDirectResponse: Counter;
  readonly rqRedirect: Counter;
  readonly rqTime: Histogram;
  private readonly classes: Counter[];

  constructor(store: StatsStore, statPrefix: string) {
    const p = `http.${statPrefix}.`;
    this.rqTotal = store.counter(p + 'downstream_rq_total');
    this.rqActive = store.gauge(p + 'downstream_rq_active');
    this.rqHttp1Total = store.counter(p + 'downstream_rq_http1_total');
    this.rqHttp2Total = store.counter(p + 'downstream_rq_http2_total');
    this.cxTotal = store.counter(p + 'downstream_cx_total');
    this.cxActive = store.gauge(p + 'downstream_cx_active');
    this.cxHttp1Total = store.counter(p + 'downstream_cx_http1_total');
    this.cxHttp2Total = store.counter(p + 'downstream_cx_http2_total');
    this.cxProtocolError = store.counter(p + 'downstream_cx_protocol_error');
    this.rqIdleTimeout = store.counter(p + 'downstream_rq_idle_timeout');
    this.rqNoRoute = store.counter(p + 'no_route');
    this.rqDirectResponse = store.counter(p + 'rq_direct_response');
    this.rqRedirect = store.counter(p + 'rq_redirect');
    this.rqTime = store.histogram(p + 'downstream_rq_time');
    this.classes = [1, 2, 3, 4, 5].map((c) => store.counter(`${p}downstream_rq_${c}xx`));
  }

  responseClass(status: number): void {
    const cls = (status / 100) | 0;
    if (cls >= 1 && cls <= 5) this.classes[cls - 1].inc();
  }
}
