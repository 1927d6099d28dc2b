// Original file: proto/metricsrelay/v1/ingest.proto


export interface PodLabels {
  'labels'?: ({[key: string]: string});
}

export interface PodLabels__Output {
  'labels': ({[key: string]: string});
}
