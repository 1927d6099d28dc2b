// Original file: proto/metricsrelay/v1/ingest.proto


export interface Goodbye {
}

export interface Goodbye__Output {
}
