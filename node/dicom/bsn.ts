/*
 * The BSN (burgerservicenummer) is the Dutch citizen service number: nine digits passing the
 * "elfproef" (11-test). In DICOM it travels as a patient id whose issuer is the BSN register,
 * named 'NLMINBIZA' or by its OID.
 */

export const BSN_ISSUERS = ['NLMINBIZA', '2.16.840.1.113883.2.4.6.3'] as const

export function isBsnIssuer (issuer: string): boolean {
  return (BSN_ISSUERS as readonly string[]).includes(issuer.trim())
}

export function isValidBsn (value: string): boolean {
  if (!/^[0-9]{9}$/.test(value)) return false
  let sum = 0
  for (let i = 0; i < 8; i++) sum += Number(value[i]) * (9 - i)
  sum -= Number(value[8])
  return sum % 11 === 0 && value !== '000000000'
}
