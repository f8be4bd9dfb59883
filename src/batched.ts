type Settle<T> = { resolve: (value: T | PromiseLike<T>) => void; reject: (err: unknown) => void };

/**
 * Wraps a function of many arguments so that calls made in the same turn of the event loop share one invocation:
 * similarity requests parsed from one wake-up cost one database statement, and the byte ranges one window needs
 * go out as merged HTTP requests. Each caller gets the result at its own position; a result may itself be a
 * promise, which then settles that caller alone. If the shared invocation fails, every caller in it sees the error.
 */
export function batched<A, T>(runMany: (args: A[]) => Promise<(T | PromiseLike<T>)[]>, maxBatch = 64): (arg: A) => Promise<T> {
  let open: { args: A[]; settle: Settle<T>[] } | undefined;
  return (arg) => new Promise<T>((resolve, reject) => {
    if (!open || open.args.length >= maxBatch) {
      const batch: { args: A[]; settle: Settle<T>[] } = { args: [], settle: [] };
      open = batch;
      setImmediate(() => {
        if (open === batch) open = undefined;
        Promise.resolve().then(() => runMany(batch.args)).then(
          (results) => batch.settle.forEach((s, i) => s.resolve(results[i])),
          (err) => batch.settle.forEach((s) => s.reject(err)),
        );
      });
    }
    open.args.push(arg);
    open.settle.push({ resolve, reject });
  });
}
