// What a process costs, read from /proc: resident and anonymous memory, and CPU time.
import { existsSync, readFileSync } from 'node:fs';

// NOTE: USER_HZ, the unit of utime/stime in /proc/<pid>/stat, is 100 on every Linux architecture Node runs on.
export const CLOCK_TICKS = 100;

/** utime + stime of pid in clock ticks; NaN once the process is gone. */
export function cpuTicks(pid: number): number {
  if (!existsSync(`/proc/${pid}/stat`)) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Resident memory of pid and its anonymous part (RssAnon: heap, stacks, malloc; not the binary's file pages, which
 * processes of the same binary share), in MiB.
 */
export function memoryMib(pid: number): { rssMib: number; anonMib: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)![1]);
  return { rssMib: kib('VmRSS') / 1024, anonMib: kib('RssAnon') / 1024 };
}

/** A process over a window: peak RSS and peak anonymous memory in MiB, CPU as a share of one core (0.05 = 5%). */
export interface Footprint {
  peakRssMib: number;
  peakAnonMib: number;
  cpuShare: number;
}

/**
 * The footprint of each of pids over the same window of durationMs, memory sampled every everyMs. Throws when a
 * process is gone before the end (its figures would be wrong).
 */
export async function measureFootprints(pids: readonly number[], durationMs: number, everyMs = 500): Promise<Footprint[]> {
  const t0 = performance.now();
  const ticks0 = pids.map(cpuTicks);
  const peaks = pids.map(() => ({ peakRssMib: 0, peakAnonMib: 0 }));
  while (performance.now() - t0 < durationMs) {
    pids.forEach((pid, i) => {
      const m = memoryMib(pid);
      peaks[i]!.peakRssMib = Math.max(peaks[i]!.peakRssMib, m.rssMib);
      peaks[i]!.peakAnonMib = Math.max(peaks[i]!.peakAnonMib, m.anonMib);
    });
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const seconds = (performance.now() - t0) / 1000;
  return pids.map((pid, i) => {
    const used = cpuTicks(pid) - ticks0[i]!;
    if (Number.isNaN(used)) throw new Error(`process ${pid} ended during the measurement`);
    return { ...peaks[i]!, cpuShare: used / CLOCK_TICKS / seconds };
  });
}
