import type { Logger } from 'pino';
import type { ParsedPage, ParseWarning } from '../parse/index.js';
import type { PodLabels } from '../labels-file.js';
import type { ScrapeBreaker } from './breaker.js';
import { familyList, type Built, type DropReason, type SeriesBuilder, type SeriesLimits } from '../series/builder.js';
import type { ScrapeMetrics } from '../self-metrics.js';
import { NO_SERIES, type Snapshot } from '../stream/snapshot.js';
import { ScrapeError } from './scrape.js';

/** Per drop reason of the builder: the flag that sets its cap, and what happened (for the log line). */
const DROP_LOG = {
  max_series: ['maxSeries', 'more series selected than --max-series allows (series already sent are kept first)'],
  label_name_too_long: ['maxLabelNameBytes', 'series with a label name longer than --max-label-name-bytes'],
  label_value_too_long: ['maxLabelValueBytes', 'series with a label value longer than --max-label-value-bytes'],
  too_many_labels: ['maxLabelsPerSeries', 'series with more labels than --max-labels-per-series'],
} as const satisfies Partial<Record<DropReason, readonly [keyof SeriesLimits, string]>>;

export interface ScrapeLoopOptions {
  intervalMs: number;
  breaker: ScrapeBreaker<ParsedPage>;
  builder: SeriesBuilder;
  /** The pod's labels now (re-read every scrape; same object while unchanged). */
  labels(): PodLabels;
  /** Receives every scrape's snapshot, good or failed. Must not throw. */
  publish(s: Snapshot): void;
  metrics: ScrapeMetrics;
  logger: Logger;
  /** The caps the builder applies, for log lines. */
  limits: SeriesLimits;
  now?: () => number;
}

/** The scrape loop (start/stop) and its liveness. */
export interface ScrapeLoop {
  start(): void;
  /** No scrape starts after this; one in flight is abandoned (its result is not published). Idempotent. */
  stop(): void;
  /** Undefined while scrapes start on time, else why not (for /healthz). */
  notLive(): string | undefined;
}

/**
 * Scrapes every intervalMs on a fixed grid, through the breaker, and publishes each result as a snapshot: status
 * OK with every selected series the builder's caps let through (`error` says what they cut), or FAILED / BREAKER_OPEN (the breaker is open after this scrape) with none —
 * never part of a scrape. Never two scrapes at once: a tick that comes while one runs is skipped (the scrape
 * timeout is below the interval, so that only happens when parsing is slower than the interval).
 */
export function createScrapeLoop(opts: ScrapeLoopOptions): ScrapeLoop {
  const { intervalMs, breaker, builder, metrics, logger } = opts;
  const now = opts.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastStartMs = 0;
  const lastDrops = new Map<DropReason, string>();
  let lastDuplicates = 0;
  const warned = new Set<string>();

  // What the parser let pass is counted on every scrape, and logged once per reason for the process's life (an
  // app that repeats its HELP lines does so on every scrape).
  const countWarnings = (warnings: readonly ParseWarning[]): void => {
    for (const w of warnings) {
      metrics.parseWarnings.inc({ reason: w.reason }, w.count);
      if (warned.has(w.reason)) continue;
      warned.add(w.reason);
      logger.warn({ reason: w.reason, line: w.line, count: w.count }, `the exposition breaks a format rule the sidecar lets pass (logged once per reason): ${w.message}`);
    }
  };

  const scrape = async (): Promise<void> => {
    const started = now();
    lastStartMs = started;
    const podLabels = opts.labels();
    const endTimer = metrics.scrapeDuration.startTimer();
    let snapshot: Snapshot;
    try {
      const page = await breaker.fire();
      countWarnings(page.warnings);
      const built = builder.build(page.families, started, page.cut);
      metrics.seriesSelected.set(built.defs.length);
      const dropped = reportDrops(built);
      if (built.duplicates !== lastDuplicates) {
        if (built.duplicates > 0) logger.warn({ duplicates: built.duplicates }, 'the exposition repeats series; only the first sample of each is sent');
        lastDuplicates = built.duplicates;
      }
      snapshot = { status: 'OK', error: dropped, scrapeTimeMs: started, series: built, podLabels };
    } catch (err) {
      if (!(err instanceof ScrapeError)) throw err;
      metrics.scrapeErrors.inc({ reason: err.reason });
      if (err.reason === 'breaker_open') logger.debug({ reason: err.reason, err: err.message }, 'scrape skipped');
      else logger.error({ reason: err.reason, err: err.message }, 'scrape failed');
      snapshot = { status: breaker.state === 'open' ? 'BREAKER_OPEN' : 'FAILED', error: err.message, scrapeTimeMs: started, series: NO_SERIES, podLabels };
    } finally {
      endTimer();
    }
    if (!stopped) opts.publish(snapshot);
  };

  /**
   * Counts what the builder dropped, logs it when the families cut for a reason change, and returns it for
   * Snapshot.error ('' when nothing was dropped): the aggregator repeats it in its 404 for a series of this pod.
   */
  const reportDrops = (built: Built): string => {
    const said: string[] = [];
    for (const reason of Object.keys(DROP_LOG) as (keyof typeof DROP_LOG)[]) {
      const d = built.drops[reason];
      const [flag, why] = DROP_LOG[reason];
      const families = d ? familyList(d) : '';
      if (d) {
        metrics.seriesDropped.inc({ reason }, d.series);
        said.push(`${d.series} series of families ${families} not sent: ${why} (${opts.limits[flag]})`);
      }
      if (families === (lastDrops.get(reason) ?? '')) continue;
      lastDrops.set(reason, families);
      if (d) logger.warn({ reason, dropped: d.series, families, [flag]: opts.limits[flag], sent: built.defs.length }, `${why}; those series are not sent`);
      else logger.info({ reason, sent: built.defs.length }, `no series dropped for ${reason} any more`);
    }
    return said.join('; ');
  };

  let running = false;
  const tick = (due: number): void => {
    if (stopped) return;
    const next = due + intervalMs * Math.max(1, Math.ceil((now() - due) / intervalMs));
    timer = setTimeout(() => tick(next), next - now());
    if (running) return;
    running = true;
    scrape()
      .catch((err: unknown) => logger.error({ err }, 'unexpected error in the scrape loop; nothing published for this scrape'))
      .finally(() => (running = false));
  };

  return {
    start: () => tick(now()),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    notLive() {
      const late = now() - lastStartMs;
      return late > 3 * intervalMs ? `no scrape started for ${late}ms (interval ${intervalMs}ms)` : undefined;
    },
  };
}
