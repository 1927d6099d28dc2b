// Original file: proto/metricsrelay/v1/ingest.proto


export interface PodIdentity {
  'namespace'?: (string);
  'name'?: (string);
  'uid'?: (string);
  'labels'?: ({[key: string]: string});
}

export interface PodIdentity__Output {
  'namespace': (string);
  'name': (string);
  'uid': (string);
  'labels': ({[key: string]: string});
}
