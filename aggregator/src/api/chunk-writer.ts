const CHUNK_BYTES = 64 * 1024;

/**
 * Writes a long answer straight into Buffers of up to 64 KiB: nothing to build as strings, flatten and encode
 * again, and no answer-sized string for V8's old space. Pieces are copied from pre-encoded Buffers or, for the
 * short ASCII strings the server formats itself (numbers, Quantities, timestamps), byte by byte.
 */
export class ChunkWriter {
  private readonly chunks: Buffer[] = [];
  private buf: Buffer;
  private at = 0;

  constructor(expectedBytes: number) {
    this.buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(256, expectedBytes)));
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** A string known to be ASCII (every char code < 128). */
  ascii(s: string): void {
    this.reserve(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.at++] = s.charCodeAt(i);
  }

  /** The written bytes, in order. The writer must not be used after. */
  end(): Buffer[] {
    this.chunks.push(this.buf.subarray(0, this.at));
    return this.chunks;
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.at = 0;
  }
}
