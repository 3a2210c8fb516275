/**
 * Loaded into a daemon by bench/vmmd.ts (`node --expose-gc --require build/bench/heap-probe.js
 * ...`) with BENCH_HEAP_PROBE=<file>: on SIGUSR2 it collects garbage and writes
 * process.memoryUsage() and V8's heap statistics as JSON to <file> (through a temporary
 * file and a rename, so a reader never sees half of it). Without the variable it does
 * nothing, so bench/run.ts can load it like any other module.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';

export interface HeapSample {
  /** process.memoryUsage() after garbage collection. */
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8 heap spaces: used bytes by space name. */
  spaces: Record<string, number>;
  /** V8 native contexts and detached ones (a leak check). */
  nativeContexts: number;
  detachedContexts: number;
}

const file = process.env.BENCH_HEAP_PROBE;
const gc = (globalThis as { gc?: () => void }).gc;

if (file !== undefined && file !== '') {
  process.on('SIGUSR2', () => {
    if (gc === undefined) {
      process.stderr.write('heap-probe: run node with --expose-gc\n');
      return;
    }
    // twice: the first pass may leave objects that only a second one sees as garbage (weak maps)
    gc();
    gc();
    const m = process.memoryUsage();
    const h = v8.getHeapStatistics();
    const spaces: Record<string, number> = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_used_size;
    const sample: HeapSample = {
      rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers,
      spaces, nativeContexts: h.number_of_native_contexts, detachedContexts: h.number_of_detached_contexts,
    };
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(sample));
    fs.renameSync(`${file}.tmp`, file);
  });
}
