/**
 * A start-up wait that could otherwise last forever (a pthread worker that never reports in, a session build that
 * never returns) fails after `seconds` with a line saying what it waited for. The timer is unref'd: it never keeps
 * a finished process alive. `TILEVEC_WATCHDOG_SCALE` multiplies every limit (0 turns the watchdogs off).
 */
export function withWatchdog<T>(work: Promise<T>, seconds: number, what: string, detail?: () => string): Promise<T> {
  const scale = Number(process.env.TILEVEC_WATCHDOG_SCALE ?? '1');
  if (!(scale > 0) || !Number.isFinite(scale)) return work;
  const limit = seconds * scale;
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const extra = detail?.();
      reject(new WatchdogError(`waited ${limit >= 10 ? Math.round(limit) : Number(limit.toFixed(2))} s for ${what}${extra ? ` (${extra})` : ''}; it never finished`));
    }, limit * 1000);
    timer.unref();
  });
  return Promise.race([work, watchdog]).finally(() => clearTimeout(timer));
}

export class WatchdogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WatchdogError';
  }
}
