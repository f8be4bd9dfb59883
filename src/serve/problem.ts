import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { ZodError } from 'zod';
import { READ_ONLY_SERVER, UserError, isReadOnlyServerError } from '../errors.ts';

/** An error that already knows its HTTP answer; handlers throw it and the error handler renders it. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

interface Problem {
  status: number;
  detail: string;
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Writes an RFC 7807 (RFC 9457) problem document. */
export function sendProblem(req: Request, res: Response, p: Problem): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(p.headers ?? {})) res.setHeader(name, value);
  res.status(p.status).type('application/problem+json').send(JSON.stringify({
    type: 'about:blank',
    title: STATUS_CODES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    instance: req.originalUrl.split('?')[0],
    ...p.extra,
  }));
}

/** Shapes of errors that body-parser and express raise for bad requests (malformed JSON, too large, bad URI). */
interface HttpishError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  message?: string;
}

/** SQLSTATE class 22 is "data exception": bad values that slipped past validation are still the client's. */
function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('22');
}

/** Maps any thrown value to a problem; only genuine server faults come out as 5xx. */
export function problemFromError(err: unknown): Problem {
  if (err instanceof HttpProblem) return { status: err.status, detail: err.message, extra: err.extra, headers: err.headers };
  if (err instanceof ZodError) {
    const errors = err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    return { status: 400, detail: errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '), extra: { errors } };
  }
  if (err instanceof UserError) return { status: err.status, detail: err.message };
  const h = err as HttpishError;
  const status = h?.status ?? h?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const detail = h.type === 'entity.parse.failed' ? `the request body is not valid JSON: ${h.message}`
      : h.type === 'entity.too.large' ? 'the request body is larger than this route accepts'
      : h.expose !== false && h.message ? h.message : STATUS_CODES[status] ?? 'bad request';
    return { status, detail };
  }
  if (isDataException(err)) return { status: 400, detail: `the database rejected a value in the request: ${(err as Error).message}` };
  if (isReadOnlyServerError(err)) return { status: 503, detail: `${READ_ONLY_SERVER}; send this request to a service on the primary` };
  // query_canceled: the server's statement_timeout, set to the service's query deadline.
  if ((err as { code?: unknown })?.code === '57014') return { status: 503, detail: 'the query took longer than the service allows and was cancelled', headers: { 'Retry-After': '1' } };
  return { status: 500, detail: 'internal error; the server log has the details' };
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const problem = problemFromError(err);
    if (problem.status >= 500) logger.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    sendProblem(req, res, problem);
  };
}
