import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { fileMetaInformation } from '../../../node/dicom/file-meta.ts'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { dcmtk, startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * Compressed instances retrieved by requesters that take only uncompressed syntaxes: getscu (default
 * proposal), movescu to a storescp that accepts only uncompressed (or only implicit), and WADO-RS with
 * transfer-syntax=1.2.840.10008.1.2.1, each decoded by the node; a requester that takes the stored
 * syntax gets the instance as stored. Pixel data is compared with dcmtk's own decoders (dcmdjpeg,
 * dcmdjpls, dcmdrle): equal byte for byte, the lossy ones too (the same decoding libraries). JPEG
 * 2000 is encoded with dcmjs-codecs (dcmtk has no JPEG 2000 codec); its lossless decode must give
 * back the original pixels.
 */

const EXPLICIT = '1.2.840.10008.1.2.1'
const IMPLICIT = '1.2.840.10008.1.2'
const JPEG_SV1 = '1.2.840.10008.1.2.4.70'
const MPEG2 = '1.2.840.10008.1.2.4.100'

interface Fixture {
  /** what it is, for messages */
  name: string
  /** the compressed file the node stores */
  path: string
  sopInstanceUID: string
  transferSyntaxUID: string
  /** native pixel data the decoded instance must carry, byte for byte */
  pixels: Buffer
}

function pixelDataOf (path: string, file: Buffer): Buffer {
  const header = readHeader(path)
  return file.subarray(header.pixelDataOffset!, header.pixelDataOffset! + header.pixelDataLength!)
}

function text (path: string, tag: number): string {
  return readHeader(path).dataset.get(tag)?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''
}

async function dcmtkOk (tool: string, args: string[]): Promise<void> {
  const result = await dcmtk(tool, args)
  expect(result.code, `${tool} ${args.join(' ')}: ${result.stderr}`).toBe(0)
}

/** JPEG 2000 copies by dcmjs-codecs' encoder (OpenJPEG), the only JPEG 2000 encoder on the machine. */
async function j2kCopy (source: string, out: string, syntax: string): Promise<void> {
  type Codecs = typeof import('dcmjs-codecs')
  const codecs = createRequire(import.meta.url)('dcmjs-codecs') as Codecs
  codecs.log.setLevel('silent')
  await codecs.NativeCodecs.initializeAsync()
  const file = await readFile(source)
  const transcoder = new codecs.Transcoder(file.buffer.slice(file.byteOffset, file.byteOffset + file.length))
  transcoder.transcode(syntax)
  await writeFile(out, Buffer.from(transcoder.getDicomPart10()))
}

describe('transcoding compressed instances for requesters that take only uncompressed', () => {
  let work: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let dimse: DimseService
  let pacs: Storescp
  let implicitPacs: Storescp
  const fixtures: Fixture[] = []
  let studyUID = ''
  let colourStudyUID = ''
  let multiFrame: Fixture
  /** a study of two: one JPEG-LS instance, and one whose stored syntax (MPEG2) the node has no decoder for */
  let mixed: { studyInstanceUID: string, decodable: Fixture, undecodable: string, undecodableSeries: string }
  const logs: Array<Record<string, unknown>> = []
  /** an uncompressed (Explicit VR) study with a structured report */
  let plain: { studyInstanceUID: string, sopInstanceUIDs: string[] }
  /** an Implicit VR study (old modalities store so) */
  let implicitStudy: GeneratedStudy

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-transcode-'))
    const study = await generateStudy(join(work, 'study'), {
      seed: 1414,
      series: [
        { modality: 'CT', instances: 7, rows: 64, columns: 64 },
        { modality: 'US', instances: 1, rows: 48, columns: 64 },
        { modality: 'CT', instances: 1, rows: 32, columns: 32, frames: 240 }
      ]
    })
    studyUID = study.studyInstanceUID
    const [ct, us, mf] = [0, 1, 2].map((n) => study.instances.filter((i) => i.seriesInstanceUID === [...new Set(study.instances.map((x) => x.seriesInstanceUID))][n]))
    const compressed = join(work, 'compressed')
    const decoded = join(work, 'decoded')
    await mkdir(compressed)
    await mkdir(decoded)
    // [name, source, compressor and its options, dcmtk decoder] ; J2K: decoder undefined (the original is the reference)
    const plan: Array<[string, string, string | undefined, string[], string | undefined]> = [
      ['JPEG lossless SV1', ct![0]!.path, 'dcmcjpeg', ['+e1'], 'dcmdjpeg'],
      ['JPEG extended 12-bit (lossy)', ct![1]!.path, 'dcmcjpeg', ['+ee'], 'dcmdjpeg'],
      ['JPEG-LS lossless', ct![2]!.path, 'dcmcjpls', [], 'dcmdjpls'],
      ['JPEG-LS near-lossless', ct![3]!.path, 'dcmcjpls', ['+en'], 'dcmdjpls'],
      ['RLE', ct![4]!.path, 'dcmcrle', [], 'dcmdrle'],
      ['JPEG 2000 lossless', ct![5]!.path, undefined, ['1.2.840.10008.1.2.4.90'], undefined],
      ['JPEG baseline 8-bit (lossy)', us![0]!.path, 'dcmcjpeg', ['+eb'], 'dcmdjpeg'],
      ['JPEG-LS lossless, 240 frames', mf![0]!.path, 'dcmcjpls', [], 'dcmdjpls']
    ]
    for (const [n, [name, source, compressor, options, decoder]] of plan.entries()) {
      const path = join(compressed, `${n}.dcm`)
      if (compressor === undefined) await j2kCopy(source, path, options[0]!)
      else await dcmtkOk(compressor, [...options, source, path])
      let reference = source
      if (decoder !== undefined) {
        reference = join(decoded, `${n}.dcm`)
        await dcmtkOk(decoder, [path, reference])
      }
      fixtures.push({ name, path, sopInstanceUID: text(path, 0x00080018), transferSyntaxUID: readHeader(path).transferSyntaxUID, pixels: pixelDataOf(reference, await readFile(reference)) })
    }
    multiFrame = fixtures.at(-1)!
    // Colour: a JPEG (YCbCr 4:2:2) made by sharp, wrapped by img2dcm in a study of its own.
    type Sharp = typeof import('sharp').default
    const sharp = (await import('sharp')).default as Sharp
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality: 90 }).toFile(join(work, 'colour.jpg'))
    const colour = join(compressed, 'colour.dcm')
    await dcmtkOk('img2dcm', [join(work, 'colour.jpg'), colour])
    await dcmtkOk('dcmdjpeg', [colour, join(decoded, 'colour.dcm')])
    fixtures.push({ name: 'JPEG baseline YBR_FULL_422 colour', path: colour, sopInstanceUID: text(colour, 0x00080018), transferSyntaxUID: readHeader(colour).transferSyntaxUID, pixels: pixelDataOf(join(decoded, 'colour.dcm'), await readFile(join(decoded, 'colour.dcm'))) })
    colourStudyUID = text(colour, 0x0020000D)
    // The same picture as RLE (RGB, three segments), a new instance of the colour study.
    const colourRle = join(compressed, 'colour-rle.dcm')
    await dcmtkOk('dcmcrle', [join(decoded, 'colour.dcm'), colourRle])
    await dcmtkOk('dcmodify', ['-nb', '-gin', colourRle])
    await dcmtkOk('dcmdrle', [colourRle, join(decoded, 'colour-rle.dcm')])
    fixtures.push({ name: 'RLE RGB', path: colourRle, sopInstanceUID: text(colourRle, 0x00080018), transferSyntaxUID: readHeader(colourRle).transferSyntaxUID, pixels: pixelDataOf(join(decoded, 'colour-rle.dcm'), await readFile(join(decoded, 'colour-rle.dcm'))) })

    // A study the node can give only in part: its second instance is labelled MPEG2, which no decoder here reads.
    const other = await generateStudy(join(work, 'mixed'), { seed: 1415, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const ok = join(compressed, 'mixed-ok.dcm')
    await dcmtkOk('dcmcjpls', [other.instances[0]!.path, ok])
    await dcmtkOk('dcmdjpls', [ok, join(decoded, 'mixed-ok.dcm')])
    const jpeg = join(compressed, 'mixed-jpeg.dcm')
    await dcmtkOk('dcmcjpeg', ['+e1', other.instances[1]!.path, jpeg])
    const jpegFile = await readFile(jpeg)
    const mpeg2 = join(compressed, 'mixed-mpeg2.dcm')
    const target = other.instances[1]!
    await writeFile(mpeg2, Buffer.concat([fileMetaInformation({ sopClassUID: target.sopClassUID, sopInstanceUID: target.sopInstanceUID, transferSyntaxUID: MPEG2 }), jpegFile.subarray(readHeader(jpeg).datasetOffset)]))
    mixed = {
      studyInstanceUID: other.studyInstanceUID,
      decodable: { name: 'JPEG-LS beside MPEG2', path: ok, sopInstanceUID: other.instances[0]!.sopInstanceUID, transferSyntaxUID: readHeader(ok).transferSyntaxUID, pixels: pixelDataOf(join(decoded, 'mixed-ok.dcm'), await readFile(join(decoded, 'mixed-ok.dcm'))) },
      undecodable: target.sopInstanceUID,
      undecodableSeries: target.seriesInstanceUID
    }

    const plainStudy = await generateStudy(join(work, 'plain'), { seed: 1419, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32 }], reports: { sr: true } })
    plain = { studyInstanceUID: plainStudy.studyInstanceUID, sopInstanceUIDs: plainStudy.instances.map((i) => i.sopInstanceUID).sort() }
    implicitStudy = await generateStudy(join(work, 'implicit'), { seed: 1421, series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32, transferSyntax: 'implicit-le' }] })

    const dir = join(work, 'node')
    store = new StudyStore({ dir })
    await store.start()
    const session = store.beginImport()
    for (const f of fixtures) await session.add(f.path)
    await session.add(ok)
    await session.add(mpeg2)
    for (const i of [...plainStudy.instances, ...implicitStudy.instances]) await session.add(i.path)
    const results = await session.commit()
    expect(results.flatMap((r) => r.rejected ?? [])).toEqual([])
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
    app = createHttpServer({ store, logger, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    await mkdir(join(work, 'pacs'))
    pacs = await startStorescp('PACS_PLAIN', join(work, 'pacs'))
    await mkdir(join(work, 'pacs-implicit'))
    implicitPacs = await startStorescp('PACS_IMPLICIT', join(work, 'pacs-implicit'), undefined, ['+xi'])
    dimse = createDimseService({ store, logger }, {
      enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['MODALITY'],
      destinations: [{ aeTitle: 'PACS_PLAIN', host: '127.0.0.1', port: pacs.port }, { aeTitle: 'PACS_IMPLICIT', host: '127.0.0.1', port: implicitPacs.port }]
    })
    await dimse.start()
  })

  afterAll(async () => {
    await dimse?.stop()
    await pacs?.stop()
    await implicitPacs?.stop()
    await app?.close()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  /** Every received file is a fixture decoded: its syntax is native and its pixel data dcmtk's decode, byte for byte. */
  async function expectDecoded (dir: string, expected: Fixture[], syntaxes = [EXPLICIT]): Promise<void> {
    const names = await readdir(dir)
    const received = new Map<string, string>()
    for (const name of names) received.set(text(join(dir, name), 0x00080018), join(dir, name))
    expect([...received.keys()].sort()).toEqual(expected.map((f) => f.sopInstanceUID).sort())
    for (const fixture of expected) {
      const path = received.get(fixture.sopInstanceUID)!
      expect(syntaxes, fixture.name).toContain(readHeader(path).transferSyntaxUID)
      expect(pixelDataOf(path, await readFile(path)).equals(fixture.pixels), `${fixture.name}: pixel data as dcmtk decodes it`).toBe(true)
      const dump = await dcmtk('dcmdump', ['-E', path])
      expect(dump.code, `${fixture.name}: ${dump.stderr}`).toBe(0)
    }
  }

  const inStudy = (uid: string): Fixture[] => fixtures.filter((f) => text(f.path, 0x0020000D) === uid)

  it('C-GET by a requester proposing only uncompressed syntaxes (getscu default) delivers every instance, decoded', async () => {
    for (const uid of [studyUID, colourStudyUID]) {
      const out = join(work, `get-${uid}`)
      await mkdir(out)
      const got = await dcmtk('getscu', ['+B', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${uid}`, '127.0.0.1', String(dimse.port)])
      expect(got.code, got.stderr).toBe(0)
      await expectDecoded(out, inStudy(uid))
    }
  })

  it('C-MOVE to a storescp that accepts only Implicit VR Little Endian (storescp +xi) delivers them decoded to it', async () => {
    const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'PACS_IMPLICIT',
      '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${colourStudyUID}`, '127.0.0.1', String(dimse.port)])
    expect(moved.code, moved.stderr).toBe(0)
    await implicitPacs.settled(inStudy(colourStudyUID).length)
    await expectDecoded(join(work, 'pacs-implicit'), inStudy(colourStudyUID), [IMPLICIT])
  })

  it('C-MOVE of an Explicit VR study (an image and a report) to a storescp that takes only Implicit VR gives both in Implicit VR', async () => {
    const before = new Set(await readdir(join(work, 'pacs-implicit')))
    const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'PACS_IMPLICIT',
      '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${plain.studyInstanceUID}`, '127.0.0.1', String(dimse.port)])
    expect(moved.code, moved.stderr).toBe(0)
    const names = (await implicitPacs.settled(before.size + 2)).filter((n) => !before.has(n))
    expect(names.map((n) => text(join(work, 'pacs-implicit', n), 0x00080018)).sort()).toEqual(plain.sopInstanceUIDs)
    for (const n of names) expect(readHeader(join(work, 'pacs-implicit', n)).transferSyntaxUID).toBe(IMPLICIT)
  })

  it('C-GET of an Implicit VR study by getscu (which the node answers in Explicit VR) delivers every instance in Explicit VR', async () => {
    const out = join(work, 'get-implicit-stored')
    await mkdir(out)
    const got = await dcmtk('getscu', ['+B', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${implicitStudy.studyInstanceUID}`, '127.0.0.1', String(dimse.port)])
    expect(got.code, got.stderr).toBe(0)
    const names = await readdir(out)
    expect(names.map((n) => text(join(out, n), 0x00080018)).sort()).toEqual(implicitStudy.instances.map((i) => i.sopInstanceUID).sort())
    for (const n of names) {
      const path = join(out, n)
      expect(readHeader(path).transferSyntaxUID).toBe(EXPLICIT)
      const source = implicitStudy.instances.find((i) => i.sopInstanceUID === text(path, 0x00080018))!
      expect(pixelDataOf(path, await readFile(path)).equals(pixelDataOf(source.path, await readFile(source.path)))).toBe(true)
      expect((await dcmtk('dcmdump', ['-E', path])).code).toBe(0)
    }
  })

  it('C-GET by a requester proposing the stored compressed syntax first (getscu +xs) gets that instance as stored', async () => {
    const fixture = fixtures.find((f) => f.transferSyntaxUID === JPEG_SV1)!
    const out = join(work, 'get-stored')
    await mkdir(out)
    const got = await dcmtk('getscu', ['+B', '-S', '+xs', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=IMAGE',
      '-k', `StudyInstanceUID=${studyUID}`, '-k', `SeriesInstanceUID=${text(fixture.path, 0x0020000E)}`, '-k', `SOPInstanceUID=${fixture.sopInstanceUID}`, '127.0.0.1', String(dimse.port)])
    expect(got.code, got.stderr).toBe(0)
    const [name] = await readdir(out)
    const received = await readFile(join(out, name!))
    expect(readHeader(join(out, name!)).transferSyntaxUID).toBe(JPEG_SV1)
    const stored = await readFile(fixture.path)
    const datasetOf = (file: Buffer): Buffer => file.subarray(144 + file.readUInt32LE(140))
    expect(datasetOf(received).equals(datasetOf(stored))).toBe(true)
  })

  it('C-MOVE to a storescp that accepts only uncompressed delivers every instance, decoded as it streams', async () => {
    const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'PACS_PLAIN',
      '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${studyUID}`, '127.0.0.1', String(dimse.port)])
    expect(moved.code, moved.stderr).toBe(0)
    await pacs.settled(inStudy(studyUID).length)
    await expectDecoded(join(work, 'pacs'), inStudy(studyUID))
  })

  /** The parts of a multipart/related answer (no headers parsed beyond Content-Type). */
  function partsOf (body: Buffer, contentType: string): Array<{ type: string, body: Buffer }> {
    const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)![2]!
    const delimiter = Buffer.from(`\r\n--${boundary}`)
    const parts: Array<{ type: string, body: Buffer }> = []
    let at = body.indexOf(`--${boundary}`)
    for (;;) {
      const start = at + boundary.length + 2
      if (body.subarray(start, start + 2).toString() === '--') break
      const headerEnd = body.indexOf('\r\n\r\n', start)
      const headers = body.subarray(start, headerEnd).toString('latin1')
      const end = body.indexOf(delimiter, headerEnd)
      parts.push({ type: /content-type:\s*([^\r\n]+)/i.exec(headers)![1]!, body: body.subarray(headerEnd + 4, end) })
      at = end + 2
    }
    return parts
  }

  it('WADO-RS decodes to the transfer syntax Accept asks for (Explicit VR Little Endian when none is named, as PS3.18 says), and sends as stored for transfer-syntax=*', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const retrieve = async (accept: string | undefined): Promise<Array<{ type: string, body: Buffer }>> => {
      const res = await fetcher(`${url}/dicomweb/studies/${studyUID}`, { headers: accept === undefined ? {} : { accept } })
      expect(res.status).toBe(200)
      return partsOf(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type')!)
    }
    for (const [k, accept] of [`multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}`, 'multipart/related; type="application/dicom"', undefined].entries()) {
      const decoded = await retrieve(accept)
      const out = join(work, `wado-${k}`)
      await mkdir(out)
      for (const [n, part] of decoded.entries()) {
        expect(part.type).toBe(`application/dicom; transfer-syntax=${EXPLICIT}`)
        await writeFile(join(out, `${n}.dcm`), part.body)
      }
      await expectDecoded(out, inStudy(studyUID))
    }

    const stored = await retrieve('multipart/related; type="application/dicom"; transfer-syntax=*')
    expect(stored).toHaveLength(inStudy(studyUID).length)
    for (const part of stored) {
      const fixture = fixtures.find((f) => part.body.includes(Buffer.from(f.sopInstanceUID)))!
      expect(part.body.equals(await readFile(fixture.path)), `${fixture.name} as stored`).toBe(true)
    }
  })

  it('decodes a multi-frame instance of 240 frames frame by frame into one Pixel Data of defined length', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const series = text(multiFrame.path, 0x0020000E)
    const res = await fetcher(`${url}/dicomweb/studies/${studyUID}/series/${series}/instances/${multiFrame.sopInstanceUID}`, {
      headers: { accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}` }
    })
    expect(res.status).toBe(200)
    const [part] = partsOf(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type')!)
    const path = join(work, 'multiframe.dcm')
    await writeFile(path, part!.body)
    const header = readHeader(path)
    expect(header.pixelDataLength).toBe(240 * 32 * 32 * 2)
    expect(pixelDataOf(path, part!.body).equals(multiFrame.pixels)).toBe(true)
  })

  it('WADO-RS frames of a compressed instance: decoded by default, the bitstream as stored with transfer-syntax=*', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const series = text(multiFrame.path, 0x0020000E)
    const base = `${url}/dicomweb/studies/${studyUID}/series/${series}/instances/${multiFrame.sopInstanceUID}/frames`
    const frameBytes = 32 * 32 * 2
    const decoded = await fetcher(`${base}/2,240`, { headers: { accept: 'multipart/related; type="application/octet-stream"' } })
    expect(decoded.status).toBe(200)
    const parts = partsOf(Buffer.from(await decoded.arrayBuffer()), decoded.headers.get('content-type')!)
    expect(parts.map((p) => p.type)).toEqual([`application/octet-stream; transfer-syntax=${EXPLICIT}`, `application/octet-stream; transfer-syntax=${EXPLICIT}`])
    expect(parts[0]!.body.equals(multiFrame.pixels.subarray(frameBytes, 2 * frameBytes))).toBe(true)
    expect(parts[1]!.body.equals(multiFrame.pixels.subarray(239 * frameBytes, 240 * frameBytes))).toBe(true)

    const stored = await fetcher(`${base}/1`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } })
    expect(stored.status).toBe(200)
    const [bitstream] = partsOf(Buffer.from(await stored.arrayBuffer()), stored.headers.get('content-type')!)
    expect(bitstream!.type).toBe(`application/octet-stream; transfer-syntax=${multiFrame.transferSyntaxUID}`)
    // A JPEG-LS codestream: SOI, then SOF55.
    expect(bitstream!.body.subarray(0, 4).equals(Buffer.from([0xFF, 0xD8, 0xFF, 0xF7]))).toBe(true)
  })

  it('C-GET of a study with an instance it cannot decode sends the others and fails that one with its reason and UID (0xB000)', async () => {
    const out = join(work, 'get-mixed')
    await mkdir(out)
    const got = await dcmtk('getscu', ['-v', '+B', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${mixed.studyInstanceUID}`, '127.0.0.1', String(dimse.port)])
    await expectDecoded(out, [mixed.decodable])
    const said = `${got.stdout}${got.stderr}`
    expect(said).toMatch(/Warning/)
    expect(said).toMatch(/Number of Failed Suboperations\s*:\s*1/i)
    // getscu (dcmtk 3.6.7) does not read the final answer's Identifier (the Failed SOP Instance UID
    // List): it then takes that P-DATA for a failed release and aborts, but has every file and exits 0.
    expect(got.code, got.stderr).toBe(0)
    const done = logs.find((l) => l.msg === 'retrieve done' && l.kind === 'get' && l.failed === 1)
    expect(String((done?.reasons as string[] | undefined)?.[0])).toContain(`${mixed.undecodable}: status 0x0122 BEELDNET_ERR_TRANSCODE_UNSUPPORTED`)
  })

  it('WADO-RS refuses an instance it cannot decode with 406 BEELDNET_ERR_TRANSCODE_UNSUPPORTED, and sends it as stored', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const path = `${url}/dicomweb/studies/${mixed.studyInstanceUID}/series/${mixed.undecodableSeries}/instances/${mixed.undecodable}`
    const refused = await fetcher(path, { headers: { accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}` } })
    expect(refused.status).toBe(406)
    expect((await refused.json() as { code: string }).code).toBe('BEELDNET_ERR_TRANSCODE_UNSUPPORTED')
    const stored = await fetcher(path, { headers: { accept: `multipart/related; type="application/dicom"; transfer-syntax=${MPEG2}` } })
    expect(stored.status).toBe(200)
  })

  it('streams a C-GET dataset as it decodes, and ends the association when the stored file no longer matches its hash', async () => {
    const colour = inStudy(colourStudyUID)[0]!
    const record = (await store.getStudy(colourStudyUID)).instances.find((i) => i.sopInstanceUID === colour.sopInstanceUID)
    const path = store.blobs.pathOf(record!.sha256)
    const original = await readFile(path)
    // A byte of the header changed: every frame still decodes, only the hash (checked after the last frame) can tell.
    const at = original.indexOf(Buffer.from(colour.sopInstanceUID)) - 20
    const damaged = Buffer.from(original)
    damaged[at] = damaged[at]! ^ 0x01
    await writeFile(path, damaged)
    try {
      const out = join(work, 'get-damaged')
      await mkdir(out)
      const got = await dcmtk('getscu', ['+B', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${colourStudyUID}`, '127.0.0.1', String(dimse.port)])
      // getscu sees the association end while it holds an incomplete instance, and writes nothing.
      expect(`${got.stdout}${got.stderr}`).toMatch(/Failed sending C-STORE response|Abort/i)
      // Whatever came before it is whole; the damaged instance never arrives, nor anything after it.
      expect((await readdir(out)).map((n) => text(join(out, n), 0x00080018))).not.toContain(colour.sopInstanceUID)
      const done = logs.find((l) => l.msg === 'retrieve done' && l.kind === 'get' && String((l.reasons as string[])[0]).includes('BEELDNET_ERR_STORE_FILE_CORRUPT'))
      expect(done).toBeDefined()
    } finally {
      await writeFile(path, original)
    }
  })

  it('refuses with 406 and a code what it cannot produce: a compressed syntax, or a native one an instance cannot be decoded to', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const compressed = await fetcher(`${url}/dicomweb/studies/${studyUID}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50' } })
    expect(compressed.status).toBe(406)
    expect((await compressed.json() as { code: string }).code).toBe('BEELDNET_ERR_NOT_ACCEPTABLE')
    const bigEndian = await fetcher(`${url}/dicomweb/studies/${studyUID}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.2' } })
    expect(bigEndian.status).toBe(406)
  })
})
