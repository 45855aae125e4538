import type { FastifyReply } from 'fastify';

/** Reason phrases of the statuses the legacy surface answers with (RFC 9110). */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  422: 'Unprocessable Entity',
  431: 'Request Header Fields Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A refusal a legacy route answers as problem+json: status, detail, and per-field messages. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly errors?: Record<string, string[]>,
  ) {
    super(detail);
  }
}

/**
 * An RFC 7807 body as the original sent it (docs/legacy.md §4): `application/problem+json`,
 * pretty-printed with 4 spaces, keys `errors` (when there are field messages) first, then
 * `title`, `type`, `status`, `detail`.
 */
export function problem(reply: FastifyReply, status: number, detail: string, errors?: Record<string, string[]>): FastifyReply {
  // Sent as bytes, so the framework adds no charset (the original sent none).
  return reply.code(status).header('content-type', 'application/problem+json').header('cache-control', 'no-cache, private').send(problemBody(status, detail, errors));
}

/** The bytes of `problem`'s body, for answers written to the socket before the framework sees a request. */
export function problemBody(status: number, detail: string, errors?: Record<string, string[]>): Buffer {
  const body = {
    ...(errors ? { errors } : {}),
    title: TITLES[status] ?? 'Error',
    type: `https://httpwg.org/specs/rfc9110.html#status.${status}`,
    status,
    detail,
  };
  return Buffer.from(JSON.stringify(body, null, 4));
}
