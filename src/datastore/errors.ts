/**
 * Datastore errors. Every failure a backend reports is one of these classes, each with a stable
 * `code`, so callers (resource layer, CLI, agent) can branch with one retry policy:
 * `isRecoverable(err)` says whether the same call may succeed later unchanged. The base,
 * `recoverable` and `cause` are util/errors.ts's, shared by every area.
 */
import { TortieError, type TortieErrorOptions } from '../util/errors';

export type DatastoreErrorCode =
  | 'ERR_DATASTORE_NOT_FOUND'
  | 'ERR_DATASTORE_CONFLICT'
  | 'ERR_DATASTORE_EXISTS'
  | 'ERR_DATASTORE_UNAVAILABLE'
  | 'ERR_DATASTORE_COMPACTED'
  | 'ERR_DATASTORE_INVALID_KEY'
  | 'ERR_DATASTORE_INVALID_VALUE'
  | 'ERR_DATASTORE_CORRUPT'
  | 'ERR_DATASTORE_CLOSED'
  | 'ERR_DATASTORE_CONFIG'
  | 'ERR_DATASTORE_PERMISSION';

/** `recoverable`: retrying the same call later may succeed (the store was unreachable or busy). */
export class DatastoreError extends TortieError {
  declare readonly code: DatastoreErrorCode;
  constructor(code: DatastoreErrorCode, message: string, opts: TortieErrorOptions = {}) {
    super(code, message, opts);
  }
}

export class NotFoundError extends DatastoreError {
  constructor(readonly key: string, what = 'key') {
    super('ERR_DATASTORE_NOT_FOUND', `${what} ${JSON.stringify(key)} not found`);
  }
}

/** A compare-and-swap failed: the key's current modRevision is not the expected one. */
export class ConflictError extends DatastoreError {
  constructor(readonly key: string, readonly expectedRevision: number, readonly actualRevision: number) {
    super('ERR_DATASTORE_CONFLICT',
      `key ${JSON.stringify(key)} was modified concurrently: expected revision ${expectedRevision}, found ${actualRevision}`);
  }
}

export class AlreadyExistsError extends DatastoreError {
  constructor(readonly key: string, readonly actualRevision: number) {
    super('ERR_DATASTORE_EXISTS', `key ${JSON.stringify(key)} already exists (revision ${actualRevision})`);
  }
}

export class UnavailableError extends DatastoreError {
  constructor(message: string, cause?: unknown) {
    super('ERR_DATASTORE_UNAVAILABLE', message, { recoverable: true, cause });
  }
}

/** The requested revision's history is gone; re-list and watch from the list's revision. */
export class CompactedError extends DatastoreError {
  constructor(readonly requestedRevision: number, readonly compactRevision: number) {
    super('ERR_DATASTORE_COMPACTED',
      `revision ${requestedRevision} has been compacted (history starts after revision ${compactRevision})`);
  }
}

export class InvalidKeyError extends DatastoreError {
  constructor(key: string, reason: string) {
    super('ERR_DATASTORE_INVALID_KEY', `invalid key ${JSON.stringify(key)}: ${reason}`);
  }
}

export class InvalidValueError extends DatastoreError {
  constructor(key: string, reason: string) {
    super('ERR_DATASTORE_INVALID_VALUE', `invalid value for key ${JSON.stringify(key)}: ${reason}`);
  }
}

export class CorruptError extends DatastoreError {
  constructor(message: string) {
    super('ERR_DATASTORE_CORRUPT', message);
  }
}

export class ClosedError extends DatastoreError {
  constructor() {
    super('ERR_DATASTORE_CLOSED', 'datastore is closed');
  }
}

/** A datastore setting is invalid (src/datastore/config.ts); tortie-node's other settings raise src/node/config.ts's ConfigError. */
export class DatastoreConfigError extends DatastoreError {
  constructor(message: string) {
    super('ERR_DATASTORE_CONFIG', message);
  }
}

/** The store's files cannot be opened or written by this user (e.g. a non-root CLI). */
export class PermissionError extends DatastoreError {
  constructor(message: string, cause?: unknown) {
    super('ERR_DATASTORE_PERMISSION', message, { cause });
  }
}

export function isRecoverable(err: unknown): boolean {
  return err instanceof DatastoreError && err.recoverable;
}
