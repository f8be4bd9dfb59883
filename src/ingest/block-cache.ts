/**
 * A size-bounded LRU of decoded blocks, keyed by block index. It stores promises, so concurrent reads of one
 * block share a single fetch and decode; a failed load is dropped rather than cached.
 */
export class BlockCache {
  private readonly entries = new Map<number, { block: Promise<Uint8Array>; bytes: number }>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  get(key: number, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.block;
    }
    const block = load();
    if (this.maxBytes <= 0) return block;
    const entry = { block, bytes: 0 };
    this.entries.set(key, entry);
    block.then(
      (buf) => {
        if (this.entries.get(key) !== entry) return;
        entry.bytes = buf.byteLength;
        this.bytes += buf.byteLength;
        this.evict();
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return block;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      if (entry.bytes === 0) continue; // still loading
      this.entries.delete(key);
      this.bytes -= entry.bytes;
    }
  }
}
