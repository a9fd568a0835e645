/*
 * Every error code in Beeldnet, declared once: the HTTP status both HTTP edges answer with, whether
 * the transfer queue tries a delivery again after it, and the one class that raises it. The status
 * table, the queue's final codes, the routes, the web app's sentences and docs/errors.md all read
 * this record; a test keeps it, the error classes and the docs in step.
 *
 * Pure data with no imports: the web app takes it as it is.
 */

export interface ErrorSpec {
  /** what the node's API and the registry answer with */
  readonly status: number
  /** false: no retry can fix it, so a transfer that fails with it fails at once; true: it is tried again with backoff */
  readonly retry: boolean
  /** the class that raises it (its subclasses only build the message), or null for a code only ever sent as data in an answer */
  readonly class: string | null
}

export const ERRORS = {
  // The node: DICOM files, its store, its setup
  BEELDNET_ERR_NOT_DICOM: { status: 415, retry: true, class: 'NotDicomError' },
  BEELDNET_ERR_DICOM_TRUNCATED: { status: 422, retry: true, class: 'DicomTruncatedError' },
  BEELDNET_ERR_DICOM_MALFORMED: { status: 422, retry: true, class: 'DicomMalformedError' },
  BEELDNET_ERR_DICOM_MISSING_UID: { status: 422, retry: true, class: 'DicomMissingUidError' },
  BEELDNET_ERR_DICOM_INVALID_UID: { status: 422, retry: true, class: 'DicomInvalidUidError' },
  BEELDNET_ERR_DICOM_UNSUPPORTED: { status: 415, retry: true, class: 'DicomUnsupportedError' },
  BEELDNET_ERR_DICOM_HEADER_TOO_LARGE: { status: 413, retry: true, class: 'DicomHeaderTooLargeError' },
  BEELDNET_ERR_DICOM_CHARSET: { status: 422, retry: true, class: 'CharsetError' },
  BEELDNET_ERR_INSTANCE_CONFLICT: { status: 409, retry: false, class: 'InstanceConflictError' },
  BEELDNET_ERR_PATIENT_MISMATCH: { status: 409, retry: false, class: 'PatientMismatchError' },
  BEELDNET_ERR_STUDY_NOT_FOUND: { status: 404, retry: false, class: 'StudyNotFoundError' },
  BEELDNET_ERR_STUDY_HELD: { status: 409, retry: true, class: 'StudyHeldError' },
  BEELDNET_ERR_STORE_FILE_MISSING: { status: 500, retry: false, class: 'StoredFileMissingError' },
  BEELDNET_ERR_STORE_FILE_CORRUPT: { status: 500, retry: false, class: 'StoredFileCorruptError' },
  BEELDNET_ERR_STORE_LOCKED: { status: 503, retry: true, class: 'StoreLockedError' },
  BEELDNET_ERR_DISK_FULL: { status: 507, retry: true, class: 'DiskFullError' },
  BEELDNET_ERR_CONFIG: { status: 500, retry: true, class: 'ConfigError' },
  BEELDNET_ERR_CANNOT_LISTEN: { status: 500, retry: true, class: 'CannotListenError' },
  BEELDNET_ERR_NOT_INITIALISED: { status: 500, retry: true, class: 'NotInitialisedError' },
  BEELDNET_ERR_ALREADY_INITIALISED: { status: 409, retry: true, class: 'AlreadyInitialisedError' },
  BEELDNET_ERR_IMPORT_SOURCE: { status: 400, retry: true, class: 'ImportSourceError' },
  BEELDNET_ERR_IDENTITY_FILE: { status: 500, retry: true, class: 'IdentityFileError' },
  BEELDNET_ERR_BAD_REQUEST: { status: 400, retry: true, class: 'BadRequestError' },
  BEELDNET_ERR_INTERNAL: { status: 500, retry: true, class: null },

  // Registry files and messages, verified by nodes, governance members and the registry alike
  BEELDNET_ERR_SCHEMA: { status: 400, retry: false, class: 'SchemaError' },
  BEELDNET_ERR_FORGED: { status: 422, retry: true, class: 'ForgedSignatureError' },
  BEELDNET_ERR_BELOW_THRESHOLD: { status: 422, retry: true, class: 'BelowThresholdError' },
  BEELDNET_ERR_ROLLBACK: { status: 409, retry: true, class: 'RollbackError' },
  BEELDNET_ERR_BROKEN_CHAIN: { status: 409, retry: true, class: 'BrokenChainError' },
  BEELDNET_ERR_EXPIRED: { status: 422, retry: true, class: 'ExpiredError' },
  BEELDNET_ERR_UNKNOWN_ROOT: { status: 409, retry: true, class: 'UnknownRootError' },
  BEELDNET_ERR_WRONG_NETWORK: { status: 422, retry: true, class: 'WrongNetworkError' },
  BEELDNET_ERR_FORK: { status: 409, retry: true, class: 'ForkError' },
  BEELDNET_ERR_INVALID_ENTRY: { status: 422, retry: true, class: 'InvalidEntryError' },
  BEELDNET_ERR_ENTRIES_MISMATCH: { status: 422, retry: true, class: 'EntriesMismatchError' },
  BEELDNET_ERR_DIRECTORY_FORMAT: { status: 422, retry: true, class: 'DirectoryFormatError' },
  BEELDNET_ERR_PROOF_OF_POSSESSION: { status: 422, retry: true, class: 'ProofOfPossessionError' },
  BEELDNET_ERR_INVALID_CHANGE: { status: 409, retry: true, class: 'InvalidChangeError' },
  BEELDNET_ERR_GOVERNANCE_KEY_FILE: { status: 500, retry: true, class: 'GovernanceKeyFileError' },
  BEELDNET_ERR_CANDIDATE_MISMATCH: { status: 409, retry: true, class: 'CandidateMismatchError' },
  BEELDNET_ERR_REGISTRY_UNREACHABLE: { status: 502, retry: true, class: 'RegistryUnreachableError' },
  BEELDNET_ERR_REGISTRY_RESPONSE: { status: 502, retry: true, class: 'RegistryResponseError' },
  BEELDNET_ERR_ROOT_NOT_PINNED: { status: 409, retry: true, class: 'RootNotPinnedError' },
  BEELDNET_ERR_ROOT_HASH_MISMATCH: { status: 422, retry: true, class: 'RootHashMismatchError' },
  BEELDNET_ERR_ROOT_ALREADY_PINNED: { status: 409, retry: true, class: 'RootAlreadyPinnedError' },
  BEELDNET_ERR_TRUST_STORE: { status: 500, retry: true, class: 'TrustStoreError' },
  BEELDNET_ERR_TIMESTAMP_MISMATCH: { status: 502, retry: true, class: 'TimestampMismatchError' },

  // The registry service
  BEELDNET_ERR_NOT_PUBLISHED: { status: 503, retry: true, class: 'NotPublishedError' },
  BEELDNET_ERR_NO_CANDIDATE: { status: 404, retry: true, class: 'NoCandidateError' },
  BEELDNET_ERR_CANDIDATE_CHANGED: { status: 409, retry: true, class: 'CandidateChangedError' },
  BEELDNET_ERR_NOT_GOVERNANCE_KEY: { status: 403, retry: true, class: 'NotGovernanceKeyError' },
  BEELDNET_ERR_STALE_REQUEST: { status: 422, retry: true, class: 'StaleRequestError' },
  BEELDNET_ERR_BODY_TOO_LARGE: { status: 413, retry: true, class: 'BodyTooLargeError' },
  BEELDNET_ERR_MALFORMED_BODY: { status: 400, retry: true, class: 'MalformedBodyError' },
  BEELDNET_ERR_MEDIA_TYPE: { status: 415, retry: true, class: 'MediaTypeError' },
  BEELDNET_ERR_RATE_LIMITED: { status: 429, retry: true, class: 'RateLimitedError' },
  BEELDNET_ERR_NOT_FOUND: { status: 404, retry: true, class: 'NotFoundError' },

  // DICOMweb, thumbnails and IT's admin API
  BEELDNET_ERR_QUERY_KEY: { status: 400, retry: true, class: 'QueryKeyError' },
  BEELDNET_ERR_NOT_ACCEPTABLE: { status: 406, retry: true, class: 'NotAcceptableError' },
  BEELDNET_ERR_TRANSCODE_UNSUPPORTED: { status: 406, retry: false, class: 'TranscodeUnsupportedError' },
  BEELDNET_ERR_TRANSCODE_FAILED: { status: 422, retry: false, class: 'TranscodeFailedError' },
  BEELDNET_ERR_MULTIPART: { status: 400, retry: true, class: 'MultipartError' },
  BEELDNET_ERR_UNKNOWN_DESTINATION: { status: 400, retry: false, class: 'UnknownDestinationError' },
  BEELDNET_ERR_NO_IMAGE: { status: 404, retry: true, class: 'NoImageError' },
  BEELDNET_ERR_THUMBNAIL_TOO_LARGE: { status: 422, retry: true, class: 'ThumbnailTooLargeError' },
  BEELDNET_ERR_THUMBNAIL_DECODE: { status: 422, retry: true, class: 'ThumbnailDecodeError' },
  BEELDNET_ERR_UNKNOWN_AE_TITLE: { status: 404, retry: true, class: 'UnknownAeTitleError' },
  BEELDNET_ERR_NO_AUDIT_TRAIL: { status: 404, retry: true, class: 'NoAuditTrailError' },
  BEELDNET_ERR_RENDER_PARAMETER: { status: 400, retry: true, class: 'RenderParameterError' },
  BEELDNET_ERR_FRAME_NOT_FOUND: { status: 404, retry: true, class: 'FrameNotFoundError' },
  BEELDNET_ERR_NO_PIXEL_DATA: { status: 422, retry: true, class: 'NoPixelDataError' },

  // The export queue to the hospital's PACS (node/reconcile)
  BEELDNET_ERR_EXPORT_NOT_FOUND: { status: 404, retry: false, class: 'ExportNotFoundError' },
  BEELDNET_ERR_EXPORT_STATE: { status: 409, retry: false, class: 'ExportStateError' },
  BEELDNET_ERR_PACS_UNREACHABLE: { status: 502, retry: true, class: 'PacsUnreachableError' },
  BEELDNET_ERR_PACS_STORE_FAILED: { status: 502, retry: true, class: 'PacsStoreFailedError' },
  BEELDNET_ERR_PACS_REFUSED: { status: 422, retry: false, class: 'PacsRefusedError' },

  // De-identification for teaching and research copies (node/deidentify)
  BEELDNET_ERR_BURNED_IN_ANNOTATION: { status: 422, retry: false, class: 'BurnedInAnnotationError' },
  BEELDNET_ERR_DEIDENTIFY_OPTION: { status: 400, retry: false, class: 'DeidentifyOptionError' },

  // A patient's share link (node/shares)
  BEELDNET_ERR_SHARE_CODE: { status: 401, retry: true, class: 'ShareCodeError' },
  BEELDNET_ERR_SHARE_LOCKED: { status: 429, retry: true, class: 'ShareLockedError' },
  BEELDNET_ERR_SHARE_ENDED: { status: 410, retry: true, class: 'ShareEndedError' },

  // The registry's own store and keys
  BEELDNET_ERR_STORE_TAMPERED: { status: 500, retry: true, class: 'StoreTamperedError' },
  BEELDNET_ERR_APPEND_ONLY: { status: 500, retry: true, class: 'AppendOnlyError' },
  BEELDNET_ERR_TIMESTAMP_KEY: { status: 500, retry: true, class: 'TimestampKeyError' },

  // Peer-to-peer: the libp2p layer (protocol/p2p, node/p2p)
  BEELDNET_ERR_PEER_NOT_ALLOWED: { status: 403, retry: false, class: 'PeerNotAllowedError' },
  BEELDNET_ERR_PEER_UNREACHABLE: { status: 502, retry: true, class: 'PeerUnreachableError' },
  BEELDNET_ERR_PROTOCOL_UNSUPPORTED: { status: 502, retry: true, class: 'ProtocolUnsupportedError' },
  BEELDNET_ERR_P2P_NOT_STARTED: { status: 503, retry: true, class: 'P2PNotStartedError' },
  BEELDNET_ERR_STREAM_STALLED: { status: 504, retry: true, class: 'StreamStalledError' },
  BEELDNET_ERR_STREAM_RESET: { status: 502, retry: true, class: 'StreamResetError' },
  BEELDNET_ERR_DATA_CHANNEL: { status: 502, retry: true, class: 'DataChannelError' },
  BEELDNET_ERR_DATA_TOO_LONG: { status: 502, retry: true, class: 'DataTooLongError' },
  BEELDNET_ERR_FRAME_TOO_LARGE: { status: 502, retry: true, class: 'FrameTooLargeError' },
  BEELDNET_ERR_FRAME_MALFORMED: { status: 502, retry: true, class: 'FrameMalformedError' },
  BEELDNET_ERR_FRAME_UNEXPECTED: { status: 502, retry: true, class: 'FrameUnexpectedError' },
  BEELDNET_ERR_STREAM_TRUNCATED: { status: 502, retry: true, class: 'StreamTruncatedError' },
  BEELDNET_ERR_REMOTE_ABORT: { status: 502, retry: true, class: 'RemoteAbortError' },

  // Transfers (protocol/exchange, node/transfers)
  BEELDNET_ERR_MANIFEST_FORGED: { status: 422, retry: false, class: 'ManifestForgedError' },
  BEELDNET_ERR_RECEIPT_FORGED: { status: 422, retry: false, class: 'ReceiptForgedError' },
  BEELDNET_ERR_SIGNER_MISMATCH: { status: 422, retry: false, class: 'SignerMismatchError' },
  BEELDNET_ERR_RECEIPT_MISMATCH: { status: 422, retry: false, class: 'ReceiptMismatchError' },
  BEELDNET_ERR_RECEIPT_INCOMPLETE: { status: 422, retry: false, class: 'ReceiptIncompleteError' },
  BEELDNET_ERR_TRANSFER_DECLINED: { status: 409, retry: false, class: 'TransferDeclinedError' },
  BEELDNET_ERR_TRANSFER_CANCELLED: { status: 409, retry: false, class: 'TransferCancelledError' },
  BEELDNET_ERR_TRANSFER_NOT_FOUND: { status: 404, retry: true, class: 'TransferNotFoundError' },
  BEELDNET_ERR_TRANSFER_EXPIRED: { status: 410, retry: false, class: 'TransferExpiredError' },
  BEELDNET_ERR_TRANSFER_STATE: { status: 409, retry: false, class: 'TransferStateError' },
  BEELDNET_ERR_TRANSFER_CONFLICT: { status: 409, retry: false, class: 'TransferConflictError' },
  BEELDNET_ERR_TRANSFER_BUSY: { status: 409, retry: true, class: 'TransferBusyError' },
  BEELDNET_ERR_SESSION_CLOSED: { status: 409, retry: true, class: 'SessionClosedError' },
  BEELDNET_ERR_TRANSFER_INCOMPLETE: { status: 409, retry: true, class: 'TransferIncompleteError' },
  BEELDNET_ERR_WRONG_DESTINATION: { status: 422, retry: false, class: 'WrongDestinationError' },
  BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST: { status: 422, retry: false, class: 'InstanceNotInManifestError' },
  BEELDNET_ERR_INSTANCE_NOT_REQUESTED: { status: 409, retry: true, class: 'InstanceNotRequestedError' },
  BEELDNET_ERR_INSTANCE_OVERRUN: { status: 413, retry: true, class: 'InstanceOverrunError' },
  BEELDNET_ERR_INSTANCE_TRUNCATED: { status: 422, retry: true, class: 'InstanceTruncatedError' },
  BEELDNET_ERR_INSTANCE_HASH: { status: 422, retry: true, class: 'InstanceHashError' },
  BEELDNET_ERR_INSTANCE_HEADER_MISMATCH: { status: 422, retry: false, class: 'InstanceHeaderMismatchError' },

  // Query, pull, the node's users and API
  BEELDNET_ERR_PULL_NOT_ALLOWED: { status: 403, retry: true, class: null },
  BEELDNET_ERR_NO_CONSENT: { status: 403, retry: true, class: null },
  BEELDNET_ERR_REQUEST_SIGNATURE: { status: 403, retry: true, class: null },
  BEELDNET_ERR_CONFIRM_BULK: { status: 409, retry: true, class: 'BulkSendError' },
  BEELDNET_ERR_DEIDENTIFICATION_REQUIRED: { status: 409, retry: false, class: 'DeidentificationRequiredError' },
  BEELDNET_ERR_LOGIN_FAILED: { status: 401, retry: true, class: 'LoginFailedError' },
  BEELDNET_ERR_ACCOUNT_LOCKED: { status: 423, retry: true, class: 'AccountLockedError' },
  BEELDNET_ERR_WEAK_PASSWORD: { status: 400, retry: true, class: 'WeakPasswordError' },
  BEELDNET_ERR_USER_EXISTS: { status: 409, retry: true, class: 'UserExistsError' },
  BEELDNET_ERR_UNAUTHENTICATED: { status: 401, retry: true, class: 'UnauthenticatedError' },
  BEELDNET_ERR_FORBIDDEN: { status: 403, retry: true, class: 'ForbiddenError' },
  BEELDNET_ERR_CSRF: { status: 403, retry: true, class: 'CsrfError' },
  BEELDNET_ERR_ALREADY_DECIDED: { status: 409, retry: true, class: 'ApprovalDecidedError' },
  BEELDNET_ERR_UNKNOWN_INSTITUTION: { status: 404, retry: false, class: 'UnknownInstitutionError' },
  BEELDNET_ERR_INSTITUTION_NOT_ACTIVE: { status: 409, retry: false, class: 'InstitutionNotActiveError' },
  BEELDNET_ERR_UNKNOWN_DEPARTMENT: { status: 404, retry: true, class: 'UnknownDepartmentError' },
  BEELDNET_ERR_NOT_ENROLLED: { status: 409, retry: true, class: 'NotEnrolledError' },
  BEELDNET_ERR_DISK_LOW: { status: 507, retry: true, class: null },
  BEELDNET_ERR_NODE_UNREACHABLE: { status: 503, retry: true, class: 'NodeUnreachableError' },
  BEELDNET_ERR_IMPORT_STATE: { status: 409, retry: true, class: 'ImportStateError' },
  BEELDNET_ERR_IMPORT_NOT_PICKED: { status: 409, retry: true, class: 'StudyNotPickedError' },
  BEELDNET_ERR_MEDIA_TARGET_NOT_EMPTY: { status: 409, retry: true, class: 'MediaTargetNotEmptyError' },

  // Simulations and the study generator: never sent over HTTP
  BEELDNET_ERR_NOT_A_LOCAL_NETWORK: { status: 500, retry: true, class: 'NotALocalNetworkError' },
  BEELDNET_ERR_SCENARIO_OPTION: { status: 500, retry: true, class: 'ScenarioOptionError' },
  BEELDNET_ERR_GOVERNANCE_STEP: { status: 500, retry: true, class: 'GovernanceStepError' },
  BEELDNET_ERR_NETWORK_NOT_READY: { status: 500, retry: true, class: 'NetworkNotReadyError' },
  BEELDNET_ERR_SAMPLE_IMPORT: { status: 500, retry: true, class: 'SampleImportError' },
  BEELDNET_ERR_INVALID_GENERATOR_SPEC: { status: 500, retry: true, class: 'InvalidSpecError' },
  BEELDNET_ERR_UNENCODABLE_TEXT: { status: 500, retry: true, class: 'UnencodableTextError' },
  BEELDNET_ERR_DATASET_ENCODING: { status: 500, retry: true, class: 'DatasetEncodingError' }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/** A code from the wire or another party is one of ours only if it is declared here. */
export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value)
}

export function statusOf (code: ErrorCode): number {
  return ERRORS[code].status
}
