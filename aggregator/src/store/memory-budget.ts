import { readFileSync } from 'node:fs';

/** The store's share of the container's memory limit: measured RSS is about 2x the estimate (garbage, V8 spaces, buffers). */
export const STORE_SHARE_OF_LIMIT = 0.35;
/** Budget when no container limit is set (cgroup "max" or no cgroup file). */
export const FALLBACK_STORE_BYTES = 512 * 1024 * 1024;

const CGROUP_V2 = '/sys/fs/cgroup/memory.max';
const CGROUP_V1 = '/sys/fs/cgroup/memory/memory.limit_in_bytes';
// cgroup v1 reports "no limit" as a huge page-aligned number (9223372036854771712).
const UNLIMITED_V1 = 2 ** 60;

export interface StoreBudget {
  bytes: number;
  /** Where it came from, for the startup log. */
  source: string;
}

/** The container's memory limit in bytes, read from the cgroup (v2, else v1); undefined when none is set. */
export function containerMemoryLimit(read: (path: string) => string | undefined = readOrUndefined): { bytes: number; path: string } | undefined {
  for (const path of [CGROUP_V2, CGROUP_V1]) {
    const raw = read(path)?.trim();
    if (raw === undefined || raw === '') continue;
    const limit = Number(raw);
    if (raw === 'max' || !Number.isFinite(limit) || limit <= 0 || limit >= UNLIMITED_V1) return undefined;
    return { bytes: limit, path };
  }
  return undefined;
}

/**
 * The default memory budget: a share of the container's memory limit, so the store stops growing well before the
 * OOM killer acts; FALLBACK_STORE_BYTES without a limit.
 */
export function defaultStoreBudget(read: (path: string) => string | undefined = readOrUndefined): StoreBudget {
  const limit = containerMemoryLimit(read);
  if (!limit) return { bytes: FALLBACK_STORE_BYTES, source: 'no container memory limit found: the fixed default' };
  return { bytes: Math.floor(limit.bytes * STORE_SHARE_OF_LIMIT), source: `${STORE_SHARE_OF_LIMIT * 100}% of the container memory limit ${limit.bytes} (${limit.path})` };
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
