import type { Issue, IssueType } from "./outcome";

/**
 * Errors a route throws to answer with an OperationOutcome. The router turns
 * them into responses at the handler boundary; their messages are written
 * for the caller and never hold a secret or a patient identifier.
 */
export class HttpError extends Error {
  /** The issues the OperationOutcome lists; by default one, from the message. */
  readonly issues?: Issue[];

  constructor(
    readonly statusCode: number,
    readonly code: IssueType,
    message: string,
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions & { issues?: Issue[] },
  ) {
    super(message, options);
    this.name = "HttpError";
    this.issues = options?.issues;
  }
}

/** 400; `issues`, when given, are the response's issues (each with its FHIRPath expression). */
export class BadRequestError extends HttpError {
  constructor(message: string, code: IssueType = "invalid", issues?: Issue[]) {
    super(400, code, message, {}, { issues });
    this.name = "BadRequestError";
  }
}

export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super(403, "forbidden", message);
    this.name = "ForbiddenError";
  }
}

/** 415: the body is not in a media type the route takes. */
export class UnsupportedMediaTypeError extends HttpError {
  constructor(message: string) {
    super(415, "not-supported", message);
    this.name = "UnsupportedMediaTypeError";
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, "not-found", message);
    this.name = "NotFoundError";
  }
}

/** 422: the resource is well-formed JSON but not valid; carries every issue found. */
export class UnprocessableError extends HttpError {
  declare readonly issues: Issue[];

  constructor(issues: Issue[]) {
    super(422, "processing", "The resource does not validate", {}, { issues });
    this.name = "UnprocessableError";
  }
}

export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, "conflict", message);
    this.name = "ConflictError";
  }
}

export class ServiceUnavailableError extends HttpError {
  constructor(message: string, options?: ErrorOptions) {
    super(503, "transient", message, { "Retry-After": "5" }, options);
    this.name = "ServiceUnavailableError";
  }
}
