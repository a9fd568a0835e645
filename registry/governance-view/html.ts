/*
 * HTML built from template literals that escape by default: every interpolated value is text
 * unless it is already `Html` (made by `html` itself). Document content (names, reasons,
 * departments) can only reach the page escaped.
 */

export class Html {
  readonly value: string
  constructor (value: string) { this.value = value }
  toString (): string { return this.value }
}

export type Interpolation = Html | string | number | boolean | null | undefined | readonly Interpolation[]

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' }

/** Text made safe for element content and quoted attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

function render (value: Interpolation): string {
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  // null, undefined and false render as nothing, so `cond && html\`...\`` reads naturally.
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(String(value))
}

export function html (strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0]!
  values.forEach((v, i) => { out += render(v) + strings[i + 1]! })
  return new Html(out)
}

