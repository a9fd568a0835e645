import { BeeldnetError } from '../protocol/errors.ts'

/*
 * One class per condition the node can refuse. The `code` is stable: scripts, peers and the audit
 * trail match on it; its HTTP status is declared in protocol/api/error-codes.ts.
 */

// Shared with the registry, so declared in protocol/.
export {
  AlreadyInitialisedError, ConfigError, NotInitialisedError, RegistryRefusedError, RegistryResponseError, RegistryUnreachableError
} from '../protocol/errors.ts'

export class NotDicomError extends BeeldnetError {
  constructor (message = 'not a DICOM file or dataset') { super('BEELDNET_ERR_NOT_DICOM', message) }
}

export class DicomTruncatedError extends BeeldnetError {
  constructor (message = 'the DICOM file ends before its data does') { super('BEELDNET_ERR_DICOM_TRUNCATED', message) }
}

export class DicomMalformedError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_DICOM_MALFORMED', message) }
}

export class DicomMissingUidError extends BeeldnetError {
  constructor (attribute: string) { super('BEELDNET_ERR_DICOM_MISSING_UID', `the dataset has no ${attribute}`) }
}

export class DicomInvalidUidError extends BeeldnetError {
  constructor (attribute: string, value: string) {
    super('BEELDNET_ERR_DICOM_INVALID_UID', `${attribute} is not a valid UID: ${JSON.stringify(value.slice(0, 80))}`)
  }
}

export class DicomUnsupportedError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_DICOM_UNSUPPORTED', message) }
}

export class DicomHeaderTooLargeError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE', message) }
}

export class InstanceConflictError extends BeeldnetError {
  constructor (sopInstanceUID: string, why = 'different content') {
    super('BEELDNET_ERR_INSTANCE_CONFLICT', `instance ${sopInstanceUID} is already stored and this copy differs (${why}); the stored copy is kept`)
  }
}

export class PatientMismatchError extends BeeldnetError {
  constructor (studyInstanceUID: string, expected: string, got: string) {
    super('BEELDNET_ERR_PATIENT_MISMATCH', `study ${studyInstanceUID} belongs to patient ${expected}, but this instance names patient ${got}`)
  }
}

export class StudyNotFoundError extends BeeldnetError {
  constructor (studyInstanceUID: string) { super('BEELDNET_ERR_STUDY_NOT_FOUND', `no study ${studyInstanceUID} in the store`) }
}

export class StudyHeldError extends BeeldnetError {
  constructor (studyInstanceUID: string, holders: string[]) {
    super('BEELDNET_ERR_STUDY_HELD', `study ${studyInstanceUID} is still needed by ${holders.join(', ')}`)
  }
}

export class StoredFileMissingError extends BeeldnetError {
  constructor (sha256: string) { super('BEELDNET_ERR_STORE_FILE_MISSING', `stored file ${sha256} is missing`) }
}

export class StoredFileCorruptError extends BeeldnetError {
  constructor (sha256: string) { super('BEELDNET_ERR_STORE_FILE_CORRUPT', `stored file ${sha256} does not match its hash`) }
}

export class StoreLockedError extends BeeldnetError {
  constructor (dir: string) {
    super('BEELDNET_ERR_STORE_LOCKED', `the store in ${dir} is in use by another process (is the node running?)`)
  }
}

/**
 * The store takes nothing more now: what arrives would leave less free than store.minFreeBytes, or
 * pass store.maxBytes, or the disk said ENOSPC. The sender tries again later; nothing held is touched.
 */
export class DiskFullError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_DISK_FULL', message, options) }
}

export class ImportSourceError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_IMPORT_SOURCE', message, options) }
}

/* The node's side of the registry: fetching, pinning and keeping what it trusts. */

export class RootNotPinnedError extends BeeldnetError {
  constructor (message = 'this node has no pinned root: run \'beeldnet node enrol\' with --root or --root-hash') {
    super('BEELDNET_ERR_ROOT_NOT_PINNED', message)
  }
}

export class RootHashMismatchError extends BeeldnetError {
  constructor (expected: string, got: string) {
    super('BEELDNET_ERR_ROOT_HASH_MISMATCH', `the root offered has hash ${got}, not the expected ${expected}: refusing to pin it`)
  }
}

export class RootAlreadyPinnedError extends BeeldnetError {
  constructor (held: string, offered: string) {
    super('BEELDNET_ERR_ROOT_ALREADY_PINNED', `this node already pinned root ${held.slice(0, 16)}; refusing to replace it with ${offered.slice(0, 16)}`)
  }
}

export class TrustStoreError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_TRUST_STORE', message, options) }
}

export class TimestampMismatchError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_TIMESTAMP_MISMATCH', message) }
}

/** A listener of the node (HTTP, DIMSE, libp2p) could not take the address its setting names. */
export class CannotListenError extends BeeldnetError {
  constructor (setting: string, what: string) { super('BEELDNET_ERR_CANNOT_LISTEN', `${setting}: cannot listen on ${what}`) }
}
