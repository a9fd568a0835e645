import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, inject } from 'vitest'
import { freePort } from '../../simulations/bench/processes.ts'
import { PATIENCE_MS, until } from './patience.ts'

/*
 * A real PACS for the interoperability tests: Orthanc (with its DICOMweb plugin, found by the global
 * setup) as a child process with its own JSON config, storage and index in a directory of the test's.
 * Its REST API answers on loopback only, without authentication; its DICOM port is chosen before it
 * starts, so the nodes can be given it as a destination first.
 */

export interface OrthancModality {
  /** the AE title Orthanc calls */
  aeTitle: string
  host?: string
  port: number
}

export interface OrthancDicomWebServer {
  /** the DICOMweb root, e.g. http://127.0.0.1:8470/dicomweb */
  url: string
  /** sent with every request, e.g. Authorization: Bearer <token> */
  headers?: Record<string, string>
}

export interface OrthancInit {
  /** where its config, storage, index and log go (the test removes it) */
  dir: string
  aeTitle: string
  /** its DICOM port (default: a free one now) */
  dicomPort?: number
  /** its REST port (default: a free one now); a PACS started again on its directory takes its old ports */
  httpPort?: number
  /** the DICOM peers it knows by a name of ours: /modalities/{name}/store, /modalities/{name}/query */
  modalities?: Record<string, OrthancModality>
  /** the DICOMweb servers its client knows: /dicom-web/servers/{name}/qido, .../retrieve */
  dicomWebServers?: Record<string, OrthancDicomWebServer>
  /** false: a PACS that accepts only uncompressed transfer syntaxes over DICOM (default true) */
  acceptCompressed?: boolean
}

/** Orthanc's switches for the transfer syntaxes it accepts over DICOM besides the uncompressed ones. */
const COMPRESSED_SYNTAX_OPTIONS = ['DeflatedTransferSyntaxAccepted', 'JpegTransferSyntaxAccepted', 'Jpeg2000TransferSyntaxAccepted', 'JpegLosslessTransferSyntaxAccepted',
  'JpipTransferSyntaxAccepted', 'Mpeg2TransferSyntaxAccepted', 'Mpeg4TransferSyntaxAccepted', 'RleTransferSyntaxAccepted', 'H265TransferSyntaxAccepted']

export interface Orthanc {
  /** its REST API, e.g. http://127.0.0.1:8042 */
  url: string
  /** what it was started with, ports included: start it again with this on the same storage */
  init: OrthancInit & { dicomPort: number, httpPort: number }
  aeTitle: string
  dicomPort: number
  /** a REST call that must succeed; the answer as JSON (undefined for an empty body) */
  rest: <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>
  /** a GET that must succeed, the answer's bytes (a file, a frame) */
  bytes: (path: string) => Promise<Buffer>
  /** stores a DICOM file through REST /instances and gives Orthanc's answer */
  upload: (path: string) => Promise<{ ID: string, ParentStudy: string, Status: string }>
  /** Orthanc's studies with this Study Instance UID, expanded (main tags, instances) */
  findStudy: (studyInstanceUID: string) => Promise<OrthancStudy[]>
  /** the last lines of its log, for a failure message */
  logTail: () => Promise<string>
  stop: () => Promise<void>
}

export interface OrthancStudy {
  ID: string
  MainDicomTags: Record<string, string>
  PatientMainDicomTags: Record<string, string>
  Series: string[]
}

/** Orthanc's config: everything on loopback and in `dir`, nothing read from /etc/orthanc. */
function configOf (init: OrthancInit, httpPort: number, dicomPort: number, dicomWebPlugin: string): Record<string, unknown> {
  return {
    Name: init.aeTitle,
    StorageDirectory: join(init.dir, 'storage'),
    IndexDirectory: join(init.dir, 'index'),
    Plugins: [dicomWebPlugin],
    HttpPort: httpPort,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomAet: init.aeTitle,
    DicomPort: dicomPort,
    DicomCheckCalledAet: true,
    ...(init.acceptCompressed === false ? Object.fromEntries(COMPRESSED_SYNTAX_OPTIONS.map((o) => [o, false])) : {}),
    DicomModalities: Object.fromEntries(Object.entries(init.modalities ?? {}).map(([name, m]) => [name, { AET: m.aeTitle, Host: m.host ?? '127.0.0.1', Port: m.port }])),
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      Servers: Object.fromEntries(Object.entries(init.dicomWebServers ?? {}).map(([name, s]) => [name, { Url: s.url.endsWith('/') ? s.url : `${s.url}/`, HttpHeaders: s.headers ?? {} }]))
    }
  }
}

/** Starts Orthanc and waits until its REST /system answers; a start that fails says why, with its log. */
export async function startOrthanc (init: OrthancInit): Promise<Orthanc> {
  const { binary, dicomWebPlugin } = inject('orthanc')
  await mkdir(init.dir, { recursive: true })
  const httpPort = init.httpPort ?? await freePort()
  const dicomPort = init.dicomPort ?? await freePort()
  const configPath = join(init.dir, 'orthanc.json')
  await writeFile(configPath, JSON.stringify(configOf(init, httpPort, dicomPort, dicomWebPlugin), null, 2))
  const logPath = join(init.dir, 'orthanc.log')
  const log = createWriteStream(logPath, { flags: 'a' })
  const child: ChildProcess = spawn(binary, [configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.pipe(log, { end: false })
  child.stderr!.pipe(log, { end: false })
  const exited = once(child, 'exit')
  const url = `http://127.0.0.1:${httpPort}`
  const logTail = async (): Promise<string> => (await readFile(logPath, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n')

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      // Orthanc finishes its jobs and closes its index on SIGTERM; one that hangs is killed.
      const killer = setTimeout(() => { child.kill('SIGKILL') }, PATIENCE_MS)
      await exited
      clearTimeout(killer)
    }
    log.end()
  }

  const call = async (method: string, path: string, body?: unknown): Promise<Buffer> => {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined ? {} : { body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) })
    })
    const answer = Buffer.from(await res.arrayBuffer())
    if (!res.ok) throw new Error(`Orthanc ${init.aeTitle}: ${method} ${path} answered ${res.status}: ${answer.toString('utf8')}\n${await logTail()}`)
    return answer
  }
  const rest = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const text = (await call(method, path, body)).toString('utf8')
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  try {
    await until(async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Orthanc ${init.aeTitle} exited (${child.exitCode ?? child.signalCode}) before it answered:\n${await logTail()}`)
      return (await fetch(`${url}/system`).catch(() => undefined))?.ok === true
    }, `Orthanc ${init.aeTitle} to answer GET ${url}/system`, PATIENCE_MS, 50)
  } catch (err) {
    await stop()
    throw err
  }

  return {
    url,
    init: { ...init, dicomPort, httpPort },
    aeTitle: init.aeTitle,
    dicomPort,
    rest,
    bytes: async (path) => call('GET', path),
    upload: async (path) => rest('POST', '/instances', new Uint8Array(await readFile(path))),
    findStudy: async (studyInstanceUID) => rest('POST', '/tools/find', { Level: 'Study', Query: { StudyInstanceUID: studyInstanceUID }, Expand: true }),
    logTail,
    stop
  }
}

/** Orthancs started in a suite, each stopped after it (killed if it does not stop). */
export function useOrthancs (): (init: OrthancInit) => Promise<Orthanc> {
  const started: Orthanc[] = []
  afterAll(async () => {
    await Promise.all(started.splice(0).map(async (o) => o.stop()))
  })
  return async (init) => {
    const orthanc = await startOrthanc(init)
    started.push(orthanc)
    return orthanc
  }
}
