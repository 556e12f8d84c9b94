// Typed failures of the domain. Each kind has one HTTP status (HTTP_STATUS), which the pages' error handler
// and the API's problem details both answer with; routes never compare message strings.

export type DomainErrorKind = 'not_found' | 'forbidden' | 'conflict' | 'invalid' | 'unauthorized' | 'too_many_requests';

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;
}

/** The HTTP status each kind of domain error is answered with, on the pages and in the API alike. */
export const HTTP_STATUS: Record<DomainErrorKind, number> = {
  not_found: 404,
  forbidden: 403,
  conflict: 409,
  invalid: 422,
  unauthorized: 401,
  too_many_requests: 429,
};

/** Unknown id, or an id of another enterprise: the same answer, so existence never leaks. */
export class NotFoundError extends DomainError {
  readonly kind = 'not_found';
  constructor(what = 'page') {
    super(`The ${what} was not found.`);
  }
}

export class ForbiddenError extends DomainError {
  readonly kind = 'forbidden';
  constructor(message = 'Your role (viewer) can look but not change anything. Ask an admin of your enterprise.') {
    super(message);
  }
}

export class UnauthorizedError extends DomainError {
  readonly kind = 'unauthorized';
}

/** The precondition of an operation does not hold; the message names the current state. */
export class InvalidStateError extends DomainError {
  readonly kind = 'conflict';
}

/** Someone else changed the record first (a lost race). */
export class ConflictError extends DomainError {
  readonly kind = 'conflict';
}

export interface FieldError {
  field: string;
  message: string;
}

/** Input that fails validation, field by field (rendered as the GOV.UK error summary). */
export class ValidationError extends DomainError {
  readonly kind = 'invalid';
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => e.message).join('; '));
  }
}

/** Not now: too much of something is going on (e.g. imports); the message says when to try again. */
export class TooManyRequestsError extends DomainError {
  readonly kind = 'too_many_requests';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
