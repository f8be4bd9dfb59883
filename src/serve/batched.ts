/**
 * Wraps a function of many arguments so that calls made in the same turn of the event loop share one invocation.
 * Requests parsed from the same wake-up then cost one database statement between them, not one each. Each caller
 * gets the result at its own position; if the shared invocation fails, every caller in it sees that error.
 */
export function batched<A, T>(runMany: (args: A[]) => Promise<T[]>, maxBatch = 64): (arg: A) => Promise<T> {
  let open: { args: A[]; settle: { resolve: (v: T) => void; reject: (e: unknown) => void }[] } | undefined;
  return (arg) => new Promise<T>((resolve, reject) => {
    if (!open || open.args.length >= maxBatch) {
      const batch = { args: [] as A[], settle: [] as { resolve: (v: T) => void; reject: (e: unknown) => void }[] };
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
