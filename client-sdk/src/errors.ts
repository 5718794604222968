/**
 * The one error type the SDK throws.
 *
 * Server errors carry the server's stable `code` (`not_found`,
 * `validation_failed`, `token_reused`, ...), its `message` and `details`
 * (for `validation_failed`: a list of `{ field, message }`). Errors raised
 * on this side have `status` 0 and a code of their own:
 *
 * | code               | meaning                                              |
 * |--------------------|------------------------------------------------------|
 * | `network_error`    | the request did not reach the server or no answer came |
 * | `invalid_response` | the server answered something that is not the API's JSON |
 * | `not_signed_in`    | the call needs a signed-in client                    |
 * | `invalid_argument` | a bad argument (unknown component, bad move, ...)    |
 * | `read_only`        | the session may not edit (viewer role)               |
 * | `session_closed`   | the template session was closed                      |
 * | `timeout`          | a wait ran out of time                               |
 */
export class CoformError extends Error {
  /** HTTP status, or 0 for errors raised by the SDK itself. */
  readonly status: number
  /** Stable snake_case code. */
  readonly code: string
  /** Extra data: field errors for `validation_failed`, `{ retryAfter }` when rate limited, ... */
  readonly details: unknown

  constructor (status: number, code: string, message: string, details: unknown = null, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CoformError'
    this.status = status
    this.code = code
    this.details = details
  }

  /** A short form for logs: `404 not_found: template not found`. */
  override toString (): string {
    return `CoformError ${this.status} ${this.code}: ${this.message}`
  }
}

/** Is `err` a {@link CoformError}, optionally with this code? */
export function isCoformError (err: unknown, code?: string): err is CoformError {
  return err instanceof CoformError && (code === undefined || err.code === code)
}
