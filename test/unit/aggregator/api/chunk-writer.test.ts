import { describe, expect, it } from 'vitest';
import { ChunkWriter } from '../../../../aggregator/src/api/chunk-writer.js';

describe('ChunkWriter', () => {
  it('keeps every byte in order across 64 KiB pieces, a piece larger than that included', () => {
    const w = new ChunkWriter(10);
    const want: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const s = `{"i":${i},"v":"${'x'.repeat(i % 37)}"},`;
      if (i % 2 === 0) w.ascii(s);
      else w.bytes(Buffer.from(s));
      want.push(Buffer.from(s));
    }
    const big = Buffer.alloc(100 * 1024, 'é');
    w.bytes(big);
    want.push(big);
    const chunks = w.end();
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.every((c) => c.length <= 100 * 1024)).toBe(true);
    expect(Buffer.concat(chunks).equals(Buffer.concat(want))).toBe(true);
  });

  it('ends with one empty piece when nothing was written', () => {
    expect(new ChunkWriter(0).end().map((c) => c.length)).toEqual([0]);
  });
});
