// Why a report cannot be asked for as given. Permanent: the same request gets
// the same answer, so routes answer 400 and the CLI prints one line, both
// naming the field (type, params.from, params.supplierId).

export class ReportInputError extends Error {
  constructor(
    /** The request field at fault, as the caller wrote it. */
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message.startsWith(`${field}:`) ? message : `${field}: ${message}`, options);
    this.name = 'ReportInputError';
  }
}

/** The download was asked for before (or instead of) a SUCCESS. */
export class ReportNotReadyError extends Error {
  constructor(
    readonly reportId: string,
    /** RUNNING or FAIL, as the API shows it. */
    readonly status: string,
    readonly errorMessage: string | null,
  ) {
    super(`report ${reportId} is ${status}: only a SUCCESS report has a file`);
    this.name = 'ReportNotReadyError';
  }
}
