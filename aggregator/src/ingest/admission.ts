// Whether a new ingest stream may open on this replica. Every sidecar streams to every replica, so when the
// replicas' memory runs short they all run short together: refusing new streams (RESOURCE_EXHAUSTED, counted and on
// the status page) keeps the ones already held, where an OOM kill would lose every stream of every replica at once.

/** The share of the container memory limit past which new streams are refused. */
export const STREAM_ADMISSION_SHARE = 0.85;

/**
 * A check run at each Hello: the refusal's text while the process's resident memory is past `share` of
 * `limitBytes`, else undefined. Without a limit, every stream is admitted.
 */
export function memoryAdmission(limitBytes: number | undefined, rss: () => number = () => process.memoryUsage.rss(), share = STREAM_ADMISSION_SHARE): () => string | undefined {
  if (limitBytes === undefined) return () => undefined;
  const ceiling = Math.floor(limitBytes * share);
  return () => {
    const used = rss();
    return used < ceiling ? undefined : `this aggregator replica is near its memory limit (resident ${mib(used)} of ${mib(limitBytes)}; new streams are refused past ${share * 100}%): it keeps the streams it holds, and the other replicas still serve this pod`;
  };
}

const mib = (bytes: number): string => `${Math.round(bytes / 1048576)} MiB`;
