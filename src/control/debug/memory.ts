/**
 * Where the control plane's memory is, in MiB: RSS against what V8 and Node account for. At scale the gap
 * between RSS and heap + external is the first thing to look at (native buffers, allocator retention).
 */
import v8 from 'node:v8';

export interface MemoryReport {
  rssMiB: number;
  heapTotalMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
  /** V8's own malloc'd memory (compiler zones and the like), outside the heap. */
  mallocedMiB: number;
  peakMallocedMiB: number;
  /** RSS minus the heap's committed size and external memory: native memory nothing above explains. */
  unaccountedMiB: number;
  heapSpaces: Record<string, { usedMiB: number; committedMiB: number }>;
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

export function memoryReport(): MemoryReport {
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const heapSpaces: MemoryReport['heapSpaces'] = {};
  for (const space of v8.getHeapSpaceStatistics()) {
    heapSpaces[space.space_name] = {
      usedMiB: mib(space.space_used_size),
      committedMiB: mib(space.physical_space_size),
    };
  }
  return {
    rssMiB: mib(usage.rss),
    heapTotalMiB: mib(usage.heapTotal),
    heapUsedMiB: mib(usage.heapUsed),
    externalMiB: mib(usage.external),
    arrayBuffersMiB: mib(usage.arrayBuffers),
    mallocedMiB: mib(heap.malloced_memory),
    peakMallocedMiB: mib(heap.peak_malloced_memory),
    unaccountedMiB: mib(usage.rss - heap.total_physical_size - usage.external - heap.malloced_memory),
    heapSpaces,
  };
}
