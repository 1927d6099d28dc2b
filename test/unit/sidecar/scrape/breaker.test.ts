import { afterEach, describe, expect, it, vi } from 'vitest';
import { createScrapeBreaker, type BreakerState, type ScrapeBreaker } from '../../../../sidecar/src/scrape/breaker.js';
import { ScrapeError } from '../../../../sidecar/src/scrape/scrape.js';

let breaker: ScrapeBreaker<string> | undefined;
afterEach(() => {
  breaker?.shutdown();
  vi.useRealTimers();
});

function setup(failures = 3, resetMs = 3000) {
  let fail = true;
  const states: BreakerState[] = [];
  let calls = 0;
  breaker = createScrapeBreaker(
    async () => {
      calls++;
      if (fail) throw new ScrapeError('http_status', 'GET x: answered HTTP 500');
      return 'ok';
    },
    { failures, resetMs, onState: (s) => states.push(s) },
  );
  return { b: breaker, states, set: (f: boolean) => (fail = f), calls: () => calls };
}

describe('scrape breaker', () => {
  it('opens after N consecutive failures, not N failures spread out', async () => {
    const { b, states, set } = setup(3);
    for (let round = 0; round < 5; round++) {
      set(true);
      await expect(b.fire()).rejects.toMatchObject({ reason: 'http_status' });
      await expect(b.fire()).rejects.toMatchObject({ reason: 'http_status' });
      set(false);
      await expect(b.fire()).resolves.toBe('ok');
    }
    expect(b.state).toBe('closed');
    set(true);
    for (let i = 0; i < 2; i++) await expect(b.fire()).rejects.toMatchObject({ reason: 'http_status' });
    expect(b.state).toBe('closed');
    await expect(b.fire()).rejects.toMatchObject({ reason: 'http_status' });
    expect(b.state).toBe('open');
    expect(states).toEqual(['open']);
  });

  it('rejects without scraping while open, saying why', async () => {
    const { b, calls } = setup(1);
    await expect(b.fire()).rejects.toBeInstanceOf(ScrapeError);
    const err = (await b.fire().catch((e: unknown) => e)) as ScrapeError;
    expect(err).toMatchObject({ reason: 'breaker_open' });
    expect(err.message).toContain('after 1 failed scrapes in a row (last: GET x: answered HTTP 500)');
    expect(calls()).toBe(1);
  });

  it('half-opens after the reset time; a success closes it, a failure opens it again', async () => {
    vi.useFakeTimers();
    const { b, states, set } = setup(2, 3000);
    await b.fire().catch(() => undefined);
    await b.fire().catch(() => undefined);
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(3000);
    expect(b.state).toBe('half-open');
    await expect(b.fire()).rejects.toMatchObject({ reason: 'http_status' });
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(3000);
    set(false);
    await expect(b.fire()).resolves.toBe('ok');
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
    // Closed again: it takes N new consecutive failures to open.
    set(true);
    await b.fire().catch(() => undefined);
    expect(b.state).toBe('closed');
  });
});
