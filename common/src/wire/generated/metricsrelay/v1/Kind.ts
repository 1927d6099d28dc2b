// Original file: proto/metricsrelay/v1/ingest.proto

export const Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  GAUGE: 'GAUGE',
  COUNTER: 'COUNTER',
  RATE: 'RATE',
  UNTYPED: 'UNTYPED',
} as const;

export type Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  | 'GAUGE'
  | 1
  | 'COUNTER'
  | 2
  | 'RATE'
  | 3
  | 'UNTYPED'
  | 4

export type Kind__Output = typeof Kind[keyof typeof Kind]
