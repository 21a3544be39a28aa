/**
 * Why the HTTP server refused a request: one class per failure, each with the status sent before
 * the connection is closed and a stable `code`. Values, not exceptions: the parser and the session
 * return them.
 */

/** A refused request; `status` is the response to send before closing. */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 408 | 413 | 431 | 503,
    readonly code: string,
    reason: string,
  ) {
    super(`http: ${reason}`);
    this.name = new.target.name;
  }
}

/** Malformed syntax or framing: 400 Bad Request. */
export class BadRequestError extends HttpError {
  constructor(reason: string) {
    super(400, 'ERR_HTTP_BAD_REQUEST', reason);
  }
}

/** A head or a whole request not received in time: 408 Request Timeout. */
export class RequestTimeoutError extends HttpError {
  constructor(
    readonly what: 'head' | 'request',
    readonly timeoutMs: number,
  ) {
    super(408, 'ERR_HTTP_REQUEST_TIMEOUT', `${what} not received within ${timeoutMs} ms`);
  }
}

/** A body over maxBodyBytes: 413 Content Too Large. */
export class ContentTooLargeError extends HttpError {
  constructor(size: number, limit: number) {
    super(413, 'ERR_HTTP_CONTENT_TOO_LARGE', `body of ${size} bytes is over the limit of ${limit}`);
  }
}

/** A head (or chunked trailer) over maxHeadBytes: 431 Request Header Fields Too Large. */
export class HeaderFieldsTooLargeError extends HttpError {
  constructor(limit: number) {
    super(431, 'ERR_HTTP_HEADER_FIELDS_TOO_LARGE', `head is over the limit of ${limit} bytes`);
  }
}

/** A body that does not fit in what is left of the server's body budget: 503 Service Unavailable. */
export class BodyBudgetError extends HttpError {
  constructor(size: number, budget: number) {
    super(
      503,
      'ERR_HTTP_BODY_BUDGET',
      `no room for ${size} more body bytes: the server's bodies already hold most of its ${budget}-byte budget`,
    );
  }
}
