/** Something that holds native resources until released, such as an ONNX Runtime session. */
export interface Releasable {
  release(): Promise<void>;
}

interface Entry<T> {
  ready: Promise<T>;
  version: string;
  users: number;
  retired: boolean;
}

/**
 * One loaded value per name (a model's session) for a worker's life, shared by its slots. A name whose version
 * changed (the model was retrained) loads anew; the old value is released only when the last slot using it lets
 * go, as RasterThumbnails does with open rasters, so no slot runs on a released session.
 */
export class SessionCache<T extends Releasable> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly releasing = new Set<Promise<void>>();

  constructor(
    private readonly versionOf: (name: string) => Promise<string>,
    private readonly load: (name: string) => Promise<T>,
  ) {}

  /** The current value for `name`; call `release` when done with it. */
  async acquire(name: string): Promise<{ value: T; release: () => void }> {
    const version = await this.versionOf(name);
    let entry = this.entries.get(name);
    if (entry && entry.version !== version) {
      this.retire(name, entry);
      entry = undefined;
    }
    if (!entry) {
      const fresh: Entry<T> = { ready: this.load(name), version, users: 0, retired: false };
      // A value that failed to load is loaded again next time rather than cached broken.
      fresh.ready.catch(() => this.retire(name, fresh));
      this.entries.set(name, fresh);
      entry = fresh;
    }
    const held = entry;
    held.users++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      held.users--;
      if (held.retired && held.users === 0) this.dispose(held);
    };
    try {
      return { value: await held.ready, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Releases every value; values still in use are released when their users let go. */
  async close(): Promise<void> {
    for (const [name, entry] of this.entries) this.retire(name, entry);
    await Promise.all(this.releasing);
  }

  private retire(name: string, entry: Entry<T>): void {
    if (this.entries.get(name) === entry) this.entries.delete(name);
    if (entry.retired) return;
    entry.retired = true;
    if (entry.users === 0) this.dispose(entry);
  }

  private dispose(entry: Entry<T>): void {
    const done = entry.ready.then((v) => v.release(), () => {}).catch(() => {});
    this.releasing.add(done);
    done.then(() => this.releasing.delete(done));
  }
}
