import { BeeldnetError } from '../errors.ts'

/*
 * Refusals of exchange documents (offer manifests, receipts). A malformed document is a SchemaError
 * (BEELDNET_ERR_SCHEMA, from ../errors.ts); these name what is wrong with a well-formed one.
 */

export class ManifestForgedError extends BeeldnetError {
  constructor (transferId: string, peerId: string) {
    super('BEELDNET_ERR_MANIFEST_FORGED', `the manifest of transfer ${transferId} does not carry a valid signature by ${peerId}: forged or altered`)
  }
}

export class ReceiptForgedError extends BeeldnetError {
  constructor (transferId: string, peerId: string) {
    super('BEELDNET_ERR_RECEIPT_FORGED', `the receipt for transfer ${transferId} does not carry a valid signature by ${peerId}: forged or altered`)
  }
}

/** A document names another node than the one whose key must sign it (the peer on the connection). */
export class SignerMismatchError extends BeeldnetError {
  constructor (what: string, named: string, expected: string) {
    super('BEELDNET_ERR_SIGNER_MISMATCH', `the ${what} names node ${named}, but it comes from ${expected}`)
  }
}

/** A validly signed receipt that is for another transfer, manifest, study or receiver. */
export class ReceiptMismatchError extends BeeldnetError {
  constructor (transferId: string, problem: string) {
    super('BEELDNET_ERR_RECEIPT_MISMATCH', `the receipt does not match transfer ${transferId}: ${problem}`)
  }
}

/** A validly signed receipt that does not confirm every instance of the manifest. */
export class ReceiptIncompleteError extends BeeldnetError {
  constructor (transferId: string, missing: number) {
    super('BEELDNET_ERR_RECEIPT_INCOMPLETE', `the receipt for transfer ${transferId} does not confirm ${missing} instance(s) of the manifest`)
  }
}
