// Original file: proto/metricsrelay/v1/ingest.proto

export const ScrapeStatus = {
  OK: 'OK',
  FAILED: 'FAILED',
  BREAKER_OPEN: 'BREAKER_OPEN',
} as const;

export type ScrapeStatus =
  | 'OK'
  | 0
  | 'FAILED'
  | 1
  | 'BREAKER_OPEN'
  | 2

export type ScrapeStatus__Output = typeof ScrapeStatus[keyof typeof ScrapeStatus]
