import type { Labels, SeriesDefinition } from './memory-store.js';

// Estimates of the V8 heap the store holds, for the memory budget (--max-store-bytes). The constants were
// measured with a heap experiment (test/bench/aggregator.ts, "store memory" case): heap growth after a GC,
// divided by what was stored, minus the string bytes estimated below.

/** A pod entry beyond its strings: the Pod object, its byName map and value/time columns. */
export const POD_BYTES = 1200;
/** One metric name held by a pod: its index array and entries in the pod's and the namespace's name maps. */
export const NAME_BYTES = 250;
/** One stored series beyond its definition's strings: column slots, index slot, the definition and labels objects. */
export const SERIES_BYTES = 120;
/** One label in a labels object beyond its two strings (property slot, hidden-class share). */
const LABEL_BYTES = 8;
/** A string's header (map, hash, length), rounded. */
const STRING_HEADER_BYTES = 16;

/** Heap bytes of a string: one byte per char for Latin-1 text, two otherwise. */
export function stringBytes(s: string): number {
  if (s.length === 0) return 0;
  return STRING_HEADER_BYTES + (/[^\u0000-\u00ff]/.test(s) ? 2 * s.length : s.length);
}

export function labelsBytes(labels: Labels): number {
  let bytes = 0;
  for (const k in labels) bytes += LABEL_BYTES + stringBytes(k) + stringBytes(labels[k]!);
  return bytes;
}

/** Bytes of a definition's name and labels (shared by every snapshot that references it). */
export function definitionBytes(def: Pick<SeriesDefinition, 'name' | 'labels'>): number {
  return stringBytes(def.name) + labelsBytes(def.labels);
}
