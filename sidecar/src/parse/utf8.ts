// UTF-8 checks of a scraped body: where it is invalid, and how long a string is in code points.

/** The 1-based lines holding invalid UTF-8 (linear: each byte is looked at once or twice). */
export function invalidUtf8Lines(body: Uint8Array): Set<number> {
  const lines = new Set<number>();
  let line = 1;
  let counted = 0;
  for (let bad = firstInvalidUtf8(body, 0); bad < body.length; bad = firstInvalidUtf8(body, bad + 1)) {
    for (; counted < bad; counted++) if (body[counted] === 10) line++;
    lines.add(line);
  }
  return lines;
}

export function codePoints(t: string): number {
  let n = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++; // low surrogates complete a pair already counted
  }
  return n;
}

/** Index of the first byte at or after from that does not start a valid UTF-8 sequence (b.length if none). */
export function firstInvalidUtf8(b: Uint8Array, from: number): number {
  let i = from;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return i;
}
