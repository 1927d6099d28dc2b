import CircuitBreaker from 'opossum';
import { ScrapeError } from './scrape.js';

export type BreakerState = 'closed' | 'half-open' | 'open';

/** A breaker around the scrape. */
export interface ScrapeBreaker<T> {
  /** Runs the scrape, or rejects at once with ScrapeError('breaker_open') while open. Rejects with the scrape's error. */
  fire(): Promise<T>;
  readonly state: BreakerState;
  /** Stops its timers. Idempotent. */
  shutdown(): void;
}

export interface ScrapeBreakerOptions {
  /** Consecutive failed scrapes that open it (--breaker-failures). */
  failures: number;
  /** Time open before one scrape is let through (half-open); success closes it, failure opens it again. */
  resetMs: number;
  /** Called on every state change. */
  onState(state: BreakerState): void;
}

/**
 * An opossum breaker that opens after `failures` CONSECUTIVE failed scrapes. The calls are the caller's to
 * serialize (the scrape loop never overlaps them).
 */
export function createScrapeBreaker<T>(scrape: () => Promise<T>, opts: ScrapeBreakerOptions): ScrapeBreaker<T> {
  // NOTE: opossum opens on an error percentage over a rolling time window, which cannot say "N failures in a row"
  // (a slow app fits fewer scrapes in the window). Its own trip is disabled (no rate is above 100%) and we open it;
  // opossum still runs open → half-open after resetTimeout → closed on success, open again on failure.
  const cb = new CircuitBreaker(scrape, {
    timeout: false,
    resetTimeout: opts.resetMs,
    errorThresholdPercentage: 100,
    rollingCountTimeout: 60_000,
    rollingCountBuckets: 1,
    enableSnapshots: false,
  });
  let consecutive = 0;
  let lastError = '';
  let openedAt = 0;
  cb.on('success', () => {
    consecutive = 0;
  });
  cb.on('failure', (err: Error) => {
    consecutive++;
    lastError = err.message;
    if (consecutive >= opts.failures && cb.closed) cb.open();
  });
  cb.on('open', () => {
    openedAt = Date.now();
    opts.onState('open');
  });
  cb.on('halfOpen', () => opts.onState('half-open'));
  cb.on('close', () => opts.onState('closed'));
  return {
    fire: () =>
      cb.fire().catch((err: unknown) => {
        if (!CircuitBreaker.isOurError(err as Error)) throw err;
        throw new ScrapeError('breaker_open', `not scraped: the scrape breaker is open since ${new Date(openedAt).toISOString()} after ${consecutive} failed scrapes in a row (last: ${lastError}); next try after ${opts.resetMs}ms open`);
      }) as Promise<T>,
    get state(): BreakerState {
      return cb.opened ? 'open' : cb.halfOpen ? 'half-open' : 'closed';
    },
    shutdown: () => cb.shutdown(),
  };
}
