import type { Kind, ScrapeStatus, WireAck, WireReportRequest, WireSeriesDef, WireSnapshot } from '../../../common/src/proto.js';

// Protobuf encoding of the two messages the sidecar exchanges, by hand, per proto/metricsrelay/v1/ingest.proto.
// NOTE: protobufjs + proto-loader would add about 5 MB of RSS and a reflective encoder to a process that runs
// next to every pod, for two messages. test/unit/sidecar/stream/codec.test.ts checks this codec against the .proto through
// proto-loader, so the two cannot drift apart. https://protobuf.dev/programming-guides/encoding/

const KIND: Record<Kind, number> = { KIND_UNSPECIFIED: 0, GAUGE: 1, COUNTER: 2, RATE: 3, UNTYPED: 4 };
const STATUS: Record<ScrapeStatus, number> = { OK: 0, FAILED: 1, BREAKER_OPEN: 2 };
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** A growable little-endian protobuf writer. */
class Writer {
  private buf: Buffer;
  len = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Non-negative integers up to 2^53; negative ones as 64-bit two's complement (int64). */
  varint(n: number): void {
    this.room(10);
    if (n < 0) {
      let b = BigInt.asUintN(64, BigInt(n));
      while (b > 127n) {
        this.buf[this.len++] = Number(b & 127n) | 128;
        b >>= 7n;
      }
      this.buf[this.len++] = Number(b);
      return;
    }
    while (n > 127) {
      this.buf[this.len++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.len++] = n;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** A varint field; proto3 omits zero. */
  uint(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, VARINT);
    this.varint(n);
  }

  /** A string field; proto3 omits ''. */
  string(field: number, s: string): void {
    if (s === '') return;
    const n = Buffer.byteLength(s);
    this.tag(field, LEN);
    this.varint(n);
    this.room(n);
    this.buf.write(s, this.len, n, 'utf8');
    this.len += n;
  }

  /** An embedded message field (always written: message fields have presence). */
  message(field: number, body: (w: Writer) => void): void {
    const sub = new Writer(64);
    body(sub);
    this.tag(field, LEN);
    this.varint(sub.len);
    this.room(sub.len);
    sub.buf.copy(this.buf, this.len, 0, sub.len);
    this.len += sub.len;
  }

  /** A map<string,string> field: one entry message (key = 1, value = 2) per pair. */
  map(field: number, m: Readonly<Record<string, string>>): void {
    for (const k of Object.keys(m)) {
      this.message(field, (e) => {
        e.string(1, k);
        e.string(2, m[k]!);
      });
    }
  }

  /** A packed repeated varint field; omitted when empty. */
  packedVarints(field: number, ns: readonly number[]): void {
    if (ns.length === 0) return;
    this.message(field, (w) => {
      for (const n of ns) w.varint(n);
    });
  }

  /** A packed repeated double field; omitted when empty. */
  packedDoubles(field: number, vs: readonly number[]): void {
    if (vs.length === 0) return;
    this.tag(field, LEN);
    this.varint(vs.length * 8);
    this.room(vs.length * 8);
    for (const v of vs) {
      this.buf.writeDoubleLE(v, this.len);
      this.len += 8;
    }
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function writeSnapshot(w: Writer, s: WireSnapshot): void {
  w.uint(1, s.seq);
  w.uint(2, STATUS[s.status]);
  w.string(3, s.error);
  w.uint(4, s.scrape_time_ms);
  for (const d of s.defs) {
    w.message(5, (m) => {
      m.uint(1, d.id);
      m.string(2, d.name);
      m.map(3, d.labels);
      m.uint(4, KIND[d.kind]);
      m.uint(5, d.window_ms);
    });
  }
  w.packedVarints(6, s.ids);
  w.packedDoubles(7, s.values);
  w.packedVarints(8, s.timestamps_ms);
  const podLabels = s.pod_labels;
  if (podLabels) w.message(9, (m) => m.map(1, podLabels.labels));
}

/** Bytes of a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n > 127) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field of `n` bytes whose field number is below 16. */
function lenFieldSize(n: number): number {
  return 1 + varintSize(n) + n;
}

/** Bytes a map<string,string> field takes (as Writer.map writes it). */
export function mapSize(m: Readonly<Record<string, string>>): number {
  let size = 0;
  for (const k of Object.keys(m)) {
    const v = m[k]!;
    size += lenFieldSize((k === '' ? 0 : lenFieldSize(Buffer.byteLength(k))) + (v === '' ? 0 : lenFieldSize(Buffer.byteLength(v))));
  }
  return size;
}

/**
 * Bytes a SeriesDef takes in a Snapshot (its field 5 entry), at most: the id is counted as 3 bytes, the most an
 * id below 65536 takes. Lets the sender size a snapshot before encoding it.
 */
export function seriesDefSize(d: Pick<WireSeriesDef, 'name' | 'labels' | 'window_ms'>): number {
  const body = 1 + 3 + lenFieldSize(Buffer.byteLength(d.name)) + mapSize(d.labels) + 2 + (d.window_ms > 0 ? 1 + varintSize(d.window_ms) : 0);
  return lenFieldSize(body);
}

/** Serializes a ReportRequest (exactly one of hello, snapshot, goodbye set). Never throws for valid input. */
export function encodeReportRequest(msg: WireReportRequest): Buffer {
  const w = new Writer(1024);
  if (msg.hello) {
    const h = msg.hello;
    w.message(1, (m) => {
      if (h.pod) {
        const pod = h.pod;
        m.message(1, (p) => {
          p.string(1, pod.namespace);
          p.string(2, pod.name);
          p.string(3, pod.uid);
          p.map(4, pod.labels);
        });
      }
      m.uint(2, h.interval_ms);
      m.string(3, h.agent);
    });
  } else if (msg.snapshot) {
    const s = msg.snapshot;
    w.message(2, (m) => writeSnapshot(m, s));
  } else {
    w.message(3, () => undefined);
  }
  return w.finish();
}

/** Parses an Ack; throws on bytes that are not a protobuf message. Unknown fields are skipped. */
export function decodeAck(buf: Buffer): WireAck {
  const ack: WireAck = { seq: 0, accepted: 0, refused: 0, reason: '', max_message_bytes: 0 };
  let pos = 0;
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('Ack: truncated varint');
      const b = buf[pos++]!;
      n += (b & 127) * scale;
      if (b < 128) return n;
      scale *= 128;
    }
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === VARINT) {
      const v = varint();
      if (field === 1) ack.seq = v;
      else if (field === 2) ack.accepted = v;
      else if (field === 3) ack.refused = v;
      else if (field === 5) ack.max_message_bytes = v;
    } else if (wire === LEN) {
      const n = varint();
      if (pos + n > buf.length) throw new Error('Ack: truncated field');
      if (field === 4) ack.reason = buf.toString('utf8', pos, pos + n);
      pos += n;
    } else if (wire === FIXED64 || wire === FIXED32) {
      pos += wire === FIXED64 ? 8 : 4;
    } else {
      throw new Error(`Ack: unsupported wire type ${wire}`);
    }
  }
  return ack;
}
