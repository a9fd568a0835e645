import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * The web app's files and the links into it, on a node over real HTTP (a built app of our own, so
 * the test does not depend on `npm run build:web`): the content security policy every answer
 * carries, and /viewer/studies/:uid sending a browser to the app's viewer route, before any login.
 */

const POLICY = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"

describe('the web app and its deep links', () => {
  let work: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-web-app-'))
    const dist = join(work, 'dist')
    await mkdir(join(dist, 'assets'), { recursive: true })
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>Beeldnet</title><script type="module" src="/assets/index-abc123.js"></script>')
    await writeFile(join(dist, 'assets', 'index-abc123.js'), 'new Worker(new URL("./decode-def456.js", import.meta.url), { type: "module" })')
    await writeFile(join(dist, 'assets', 'decode-def456.js'), 'await WebAssembly.instantiateStreaming(fetch("/assets/openjpeg-0123.wasm"))')
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(join(work, 'node', 'users.json')) }, { nodeName: 'test', peerId: 'test', webAppDir: dist })
    url = await listenOnLoopback(app)
  })

  afterAll(async () => {
    await app.close()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('serves the app and its scripts, the decoder worker\'s too, under a policy that allows WebAssembly and no eval or inline script', async () => {
    for (const path of ['/', '/assets/index-abc123.js', '/assets/decode-def456.js']) {
      const res = await fetch(`${url}${path}`)
      expect(res.status, path).toBe(200)
      // A worker runs under the policy of its own script's answer, not the page's: every answer carries it.
      expect(res.headers.get('content-security-policy'), path).toBe(POLICY)
      expect(res.headers.get('content-security-policy'), path).not.toMatch(/'unsafe-eval'|'unsafe-inline'/)
    }
  })

  it('sends /viewer/studies/:uid to the app\'s viewer route, without a login', async () => {
    const res = await fetch(`${url}/viewer/studies/1.2.826.0.1.3680043.8.498.1`, { redirect: 'manual' })
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('/#/viewer/studies/1.2.826.0.1.3680043.8.498.1')
    expect(res.headers.get('content-security-policy')).toBe(POLICY)
    // A browser follows it to the app (the part after # stays in the browser), which logs in and keeps the route.
    const followed = await fetch(`${url}/viewer/studies/1.2.3`)
    expect(followed.status).toBe(200)
    expect(await followed.text()).toContain('<title>Beeldnet</title>')
  })

  it('refuses a link whose study is not a UID, with the code other bad input gets', async () => {
    for (const uid of ['not-a-uid', '1..2', '1.2.', '1'.repeat(65), '1.2%2F..%2F3', '%3Cscript%3E', '1.2%23x']) {
      const res = await fetch(`${url}/viewer/studies/${uid}`, { redirect: 'manual' })
      expect(res.status, uid).toBe(400)
      expect((await res.json() as { code: string }).code, uid).toBe('BEELDNET_ERR_BAD_REQUEST')
    }
  })
})
