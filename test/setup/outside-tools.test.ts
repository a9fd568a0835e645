import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useTempDirs } from '../helpers/temp-dir.ts'
import { DCMTK_TOOLS, ensureDcmtk, ensureGdcm, ensureOrthanc, findChromium, MissingToolError, onPath } from './outside-tools.ts'

/*
 * The check the global setup runs: on a machine without the tools, where this user may not
 * install them, the run stops with one sentence that says what to install.
 */

describe('the tools the suites need from outside npm', () => {
  const tempDir = useTempDirs()

  it('without dcmtk and without leave to install, says in one sentence to install dcmtk', async () => {
    const err = await ensureDcmtk({ env: { PATH: await tempDir('no-tools') }, mayInstall: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingToolError)
    expect((err as Error).message).toMatch(/^The tests need dcmtk's tools \(.*storescu.*\): install them with `sudo apt-get install dcmtk` and run npm test again\.$/)
  })

  it('names only the dcmtk tools that are missing, and passes once all are on PATH', async () => {
    const bin = await tempDir('bin')
    for (const tool of DCMTK_TOOLS.filter((t) => t !== 'getscu')) {
      await writeFile(join(bin, tool), '#!/bin/sh\n')
      await chmod(join(bin, tool), 0o755)
    }
    const err = await ensureDcmtk({ env: { PATH: bin }, mayInstall: false }).catch((e: unknown) => e)
    expect((err as Error).message).toContain('(getscu not found)')
    await writeFile(join(bin, 'getscu'), '#!/bin/sh\n', { mode: 0o755 })
    expect(await ensureDcmtk({ env: { PATH: bin }, mayInstall: false })).toBeUndefined()
    // A file that is there but not executable is not a tool.
    await chmod(join(bin, 'getscu'), 0o644)
    expect(await onPath('getscu', { PATH: bin })).toBeUndefined()
  })

  it('without GDCM and without leave to install, says in one sentence to install libgdcm-tools', async () => {
    const err = await ensureGdcm({ env: { PATH: await tempDir('no-gdcm') }, mayInstall: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingToolError)
    expect((err as Error).message).toBe('The tests need GDCM\'s tools (gdcmconv not found): install them with `sudo apt-get install libgdcm-tools` and run npm test again.')
  })

  it('without any browser that runs headless, says in one sentence to install chromium', async () => {
    const dir = await tempDir('no-browser')
    const notABrowser = join(dir, 'chromium')
    await writeFile(notABrowser, '#!/bin/sh\nexit 1\n')
    await chmod(notABrowser, 0o755)
    const err = await findChromium({ env: { PATH: dir, BEELDNET_CHROMIUM: notABrowser }, mayInstall: false, tryNpmBrowser: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingToolError)
    expect((err as Error).message).toMatch(/^The web app's tests need a headless Chromium and none runs here: install one with `sudo apt-get install chromium`.*\.$/)
  })

  it('takes the browser npm brings when it runs headless here', async () => {
    const found = await findChromium({ env: { PATH: '' }, mayInstall: false })
    expect(found.source).toBe('@sparticuz/chromium (npm)')
    expect(found.version).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
  })

  it('without Orthanc or its DICOMweb plugin and without leave to install, says in one sentence to install both', async () => {
    const dir = await tempDir('no-orthanc')
    const places = { binaries: [join(dir, 'sbin')], pluginDirs: [join(dir, 'plugins')] }
    const sentence = /^The tests need Orthanc with its DICOMweb plugin \(.*\): install them with `sudo apt-get install orthanc orthanc-dicomweb` and run npm test again\.$/
    const noServer = await ensureOrthanc({ env: { PATH: '' }, places, mayInstall: false }).catch((e: unknown) => e)
    expect(noServer).toBeInstanceOf(MissingToolError)
    expect((noServer as Error).message).toMatch(sentence)
    expect((noServer as Error).message).toContain('(Orthanc not found)')

    await mkdir(join(dir, 'sbin'))
    await writeFile(join(dir, 'sbin', 'Orthanc'), '#!/bin/sh\necho "Orthanc 1.10.1"\n', { mode: 0o755 })
    const noPlugin = await ensureOrthanc({ env: { PATH: '' }, places, mayInstall: false }).catch((e: unknown) => e)
    expect((noPlugin as Error).message).toMatch(sentence)
    expect((noPlugin as Error).message).toContain('DICOMweb plugin (libOrthancDicomWeb.so) not found')

    // Debian's orthanc-dicomweb may leave only the versioned library in a directory.
    await mkdir(join(dir, 'plugins'))
    await writeFile(join(dir, 'plugins', 'libOrthancDicomWeb.so.1.7'), '')
    expect(await ensureOrthanc({ env: { PATH: '' }, places, mayInstall: false })).toEqual({
      binary: join(dir, 'sbin', 'Orthanc'), dicomWebPlugin: join(dir, 'plugins', 'libOrthancDicomWeb.so.1.7'), version: '1.10.1'
    })
  })

  it('does not take a binary named Orthanc that cannot say its version', async () => {
    const dir = await tempDir('broken-orthanc')
    await writeFile(join(dir, 'Orthanc'), '#!/bin/sh\nexit 1\n', { mode: 0o755 })
    await writeFile(join(dir, 'libOrthancDicomWeb.so'), '')
    const err = await ensureOrthanc({ env: { PATH: dir }, places: { binaries: [], pluginDirs: [dir] }, mayInstall: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingToolError)
    expect((err as Error).message).toContain(`${join(dir, 'Orthanc')} --version did not say its version`)
  })

  it('finds Orthanc where Debian installs it, outside a user\'s PATH', async () => {
    const found = await ensureOrthanc({ env: { PATH: '' }, mayInstall: false })
    expect(found.binary).toBe('/usr/sbin/Orthanc')
    expect(found.dicomWebPlugin).toMatch(/\/libOrthancDicomWeb\.so/)
    expect(found.version).toMatch(/^\d+\.\d+\.\d+$/)
  })
})
