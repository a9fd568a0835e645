/*
 * The node's API as the app calls it: same origin, the session cookie sent by the browser, the
 * CSRF token on every change. A refusal becomes an ApiError with the node's stable code, which
 * the app turns into a sentence (errors.ts), never a stack trace.
 */

export class ApiError extends Error {
  readonly code: string
  readonly status: number
  constructor (code: string, message: string, status: number) {
    super(message)
    this.code = code
    this.status = status
  }
}

let csrfToken = ''
export function setCsrfToken (token: string): void { csrfToken = token }

/** Called when the node says the session is gone: the app shows the login again. */
let onUnauthenticated: () => void = () => {}
export function whenLoggedOut (handler: () => void): void { onUnauthenticated = handler }

async function request<T> (method: string, path: string, body?: unknown, raw?: { type: string, bytes: Blob }): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken
  if (raw !== undefined) headers['content-type'] = raw.type
  else if (body !== undefined) headers['content-type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(path, { method, headers, credentials: 'same-origin', body: raw?.bytes ?? (body === undefined ? undefined : JSON.stringify(body)) })
  } catch {
    throw new ApiError('APP_OFFLINE', 'the node did not answer', 0)
  }
  const answer = await response.json().catch(() => undefined) as { code?: string, message?: string } | undefined
  if (!response.ok) {
    const error = new ApiError(answer?.code ?? 'BEELDNET_ERR_INTERNAL', answer?.message ?? `HTTP ${response.status}`, response.status)
    if (response.status === 401 && path !== '/api/login') onUnauthenticated()
    throw error
  }
  return answer as T
}

/** A PUT whose bytes are counted as they leave (fetch cannot tell upload progress; XMLHttpRequest can). */
async function upload<T> (path: string, file: Blob, onProgress: (sent: number) => void): Promise<T> {
  const xhr = new XMLHttpRequest()
  const done = new Promise<void>((resolve, reject) => {
    xhr.onload = () => { resolve() }
    xhr.onerror = () => { reject(new ApiError('APP_OFFLINE', 'the node did not answer', 0)) }
  })
  xhr.upload.onprogress = (e) => { onProgress(e.loaded) }
  xhr.open('PUT', path)
  xhr.setRequestHeader('accept', 'application/json')
  xhr.setRequestHeader('content-type', 'application/octet-stream')
  xhr.setRequestHeader('x-csrf-token', csrfToken)
  xhr.send(file)
  await done
  let answer: { code?: string, message?: string } | undefined
  try { answer = JSON.parse(xhr.responseText) as typeof answer } catch { answer = undefined }
  if (xhr.status < 200 || xhr.status >= 300) {
    if (xhr.status === 401) onUnauthenticated()
    throw new ApiError(answer?.code ?? 'BEELDNET_ERR_INTERNAL', answer?.message ?? `HTTP ${xhr.status}`, xhr.status)
  }
  return answer as T
}

export const api = {
  get: async <T>(path: string): Promise<T> => request<T>('GET', path),
  post: async <T>(path: string, body: unknown = {}): Promise<T> => request<T>('POST', path, body),
  del: async <T>(path: string): Promise<T> => request<T>('DELETE', path),
  postFile: async <T>(path: string, file: File): Promise<T> => request<T>('POST', path, undefined, { type: file.type || 'application/octet-stream', bytes: file }),
  /** a file's bytes as they are (the browser streams a File from disk); `onProgress` hears the bytes sent so far */
  putBytes: async <T>(path: string, file: Blob, onProgress?: (sent: number) => void): Promise<T> => onProgress === undefined
    ? request<T>('PUT', path, undefined, { type: 'application/octet-stream', bytes: file })
    : upload<T>(path, file, onProgress)
}

/** Query string from the given values, leaving out empty ones. */
export function query (values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, String(value))
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}
