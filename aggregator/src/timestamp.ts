/** metav1.Time on the wire: RFC 3339 in UTC, whole seconds, years 0001-9999 (what Go's time decoder accepts). */

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in ms since the epoch. */
export const MIN_TIMESTAMP_MS = -62135596800000;
export const MAX_TIMESTAMP_MS = 253402300799999;

export function servableTime(ms: number): boolean {
  return ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS;
}

let lastSecond = NaN;
let lastStamp = '';
/** The RFC 3339 form of a servable time (callers check servableTime first). */
export function rfc3339(ms: number): string {
  if (!servableTime(ms)) throw new RangeError(`${ms} ms since the epoch is outside the years 0001-9999`);
  const sec = Math.floor(ms / 1000);
  // Most values of one answer share their scrape second: format each second once.
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastStamp = new Date(sec * 1000).toISOString().replace('.000Z', 'Z');
  }
  return lastStamp;
}

/** Any sample time for a message: ISO 8601 when a Date can hold it, else the raw number. Never throws. */
export function describeTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms since the epoch`;
}
