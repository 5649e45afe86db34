/**
 * Gives freed malloc memory back to the system once a second, through the optional malloc_trim addon
 * (native/malloc-trim/). V8's optimizing compiler takes its working memory from malloc on background
 * threads; freed, it stays in the arenas as holes that glibc only returns from the top of a heap, so
 * a proxy under load carried 10-20 MB of freed but resident memory. The trim runs on the libuv thread
 * pool (~0.1-0.2 ms each after the first), never on the event loop; at most one is in flight.
 *
 * Weft's own stats (Envoy has none: its tcmalloc releases memory by itself):
 * `server.memory_trim.runs` trims completed and `server.memory_trim.released` those that gave memory back.
 */
import { createLogger } from '../core/logger.ts';
import { loadNativeAddon } from '../core/native-addon.ts';
import type { AddonSupport, LoadedAddon } from '../core/native-addon.ts';
import type { StatsStore } from './stats/store.ts';

const log = createLogger('memory');

export const MALLOC_TRIM_INTERVAL_MS = 1000;

interface Addon {
  mallocTrim(done: (released: boolean) => void): void;
}

let loaded: LoadedAddon<Addon> | undefined;

function load(): LoadedAddon<Addon> {
  loaded ??= loadNativeAddon<Addon>('malloc_trim');
  return loaded;
}

export class MallocTrimmer {
  private readonly stats: StatsStore;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(stats: StatsStore, intervalMs = MALLOC_TRIM_INTERVAL_MS) {
    this.stats = stats;
    this.intervalMs = intervalMs;
  }

  /** Starts the periodic trim when the addon is there; says whether it is. */
  start(): AddonSupport {
    const { addon, support } = load();
    const runs = this.stats.counter('server.memory_trim.runs');
    const released = this.stats.counter('server.memory_trim.released');
    if (addon === undefined) {
      log.debug('freed malloc memory is not returned to the system', { support });
      return support;
    }
    const done = (gaveBack: boolean): void => {
      this.inFlight = false;
      runs.inc();
      if (gaveBack) released.inc();
    };
    this.timer ??= setInterval(() => {
      if (this.inFlight) return;
      this.inFlight = true;
      addon.mallocTrim(done);
    }, this.intervalMs).unref();
    return support;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
