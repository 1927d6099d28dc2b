// Readiness of a replica (/readyz): the warm-up rule of docs/architecture.md#staleness-rules.

/** Tracks streams for the readiness rule: ready once every pod heard of since start has delivered a snapshot. */
export class WarmUp {
  private readonly pending = new Set<object>();
  private heard = 0;
  private lastHelloMs = 0;
  private maxIntervalMs = 0;

  constructor(private readonly startMs: number, private readonly windowMs: number) {}

  hello(stream: object, intervalMs: number, nowMs: number): void {
    this.pending.add(stream);
    this.heard++;
    this.lastHelloMs = nowMs;
    this.maxIntervalMs = Math.max(this.maxIntervalMs, intervalMs);
  }

  reported(stream: object): void {
    this.pending.delete(stream);
  }

  gone(stream: object): void {
    this.pending.delete(stream);
  }

  /** Undefined when ready, else why not. */
  notReadyReason(nowMs: number): string | undefined {
    if (nowMs - this.startMs >= this.windowMs) return undefined;
    // NOTE: a new replica is ready early only when sidecars have found it and each delivered a full snapshot,
    // and no new sidecar connected for one scrape interval (the rest have had their chance to reconnect).
    if (this.heard > 0 && this.pending.size === 0 && nowMs - this.lastHelloMs >= this.maxIntervalMs) return undefined;
    return `warming up: ${this.pending.size} of ${this.heard} connected sidecar(s) have not sent a snapshot yet; ready at the latest ${Math.ceil((this.windowMs - (nowMs - this.startMs)) / 1000)}s from now`;
  }
}
