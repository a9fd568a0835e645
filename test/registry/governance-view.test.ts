import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import type { Institution, SignedDirectory } from '../../protocol/registry/documents.ts'
import { diffInstitutions } from '../../registry/governance-view/diff.ts'
import { escapeHtml, html } from '../../registry/governance-view/html.ts'
import { pickLanguage } from '../../registry/governance-view/i18n.ts'
import { GOVERNANCE_CSP } from '../../registry/governance-view/routes.ts'
import { makeEnrolment, makeNodeKey, type TestNodeKey } from '../helpers/registry-fixtures.ts'
import { NETWORK, propose, publishRootV1, signCandidate, useRegistries, type TestRegistry } from './helpers.ts'

interface Page { status: number, headers: Headers, html: string }

async function page (t: TestRegistry, path = '/', headers: Record<string, string> = {}): Promise<Page> {
  const res = await fetch(`${t.registry.url}${path}`, { headers })
  return { status: res.status, headers: res.headers, html: await res.text() }
}

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': '\'', '&amp;': '&' }

/** What a reader sees: tags dropped (inline ones without a space), entities decoded, whitespace collapsed. */
function textOf (markup: string): string {
  return markup.replace(/<\/?(?:span|code|strong|abbr|time|a)\b[^>]*>/g, '').replace(/<[^>]*>/g, ' ').replace(/&(lt|gt|quot|#39|amp);/g, (e) => ENTITIES[e]!).replace(/\s+/g, ' ').trim()
}

/** The markup of the element that opens with `opening` up to the first `</tag>` after it. */
function element (markup: string, opening: string, tag: string): string {
  const start = markup.indexOf(opening)
  if (start < 0) throw new Error(`no ${opening} in the page`)
  const end = markup.indexOf(`</${tag}>`, start)
  return markup.slice(start, end + tag.length + 3)
}

/** A top-level section by id (its nested sections included). */
function section (markup: string, id: string): string {
  const start = markup.indexOf(`<section id="${id}"`)
  if (start < 0) throw new Error(`no section ${id}`)
  const next = markup.slice(start + 1).search(/<section id="|<\/main>/)
  return markup.slice(start, start + 1 + next)
}

/** The text of the table row (in the given markup) that mentions `needle`. */
function rowWith (markup: string, needle: string): string {
  const row = markup.split('<tr>').find((r) => textOf(r).includes(needle))
  if (row === undefined) throw new Error(`no row with ${needle}`)
  return textOf(row.split('</tr>')[0]!)
}

async function publish (t: TestRegistry, changes: Array<Parameters<typeof propose>[0]>, proposer = 0): Promise<void> {
  for (const change of changes) {
    const answer = await t.http.post('/v1/proposals', propose(change, t.keys[proposer]!))
    if (answer.status !== 201) throw new Error(`proposal refused: ${JSON.stringify(answer.body)}`)
  }
  const signed = await signCandidate(t, t.keys.slice(0, 3))
  if (signed.body.published !== true) throw new Error('not published')
}

const admit = (ura: string, key: TestNodeKey, name?: string) => ({ action: 'admit' as const, enrolment: makeEnrolment(NETWORK, ura, key, name) })

describe('governance view (pure parts)', () => {
  it('escapes every interpolated value unless it is markup made by html itself', () => {
    expect(escapeHtml('<a href="x" title=\'y\'>&</a>')).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
    const name = '<script>alert(1)</script>'
    expect(html`<td title="${name}">${name}${html`<b>${name}</b>`}${[name, null, undefined, false]}</td>`.value)
      .toBe('<td title="&lt;script&gt;alert(1)&lt;/script&gt;">&lt;script&gt;alert(1)&lt;/script&gt;<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>&lt;script&gt;alert(1)&lt;/script&gt;</td>')
  })

  it('picks ?lang, then Accept-Language by weight, then Dutch', () => {
    expect(pickLanguage('en', 'nl')).toBe('en')
    expect(pickLanguage('nl', 'en-GB,en;q=0.9')).toBe('nl')
    expect(pickLanguage('fr', 'en-GB,en;q=0.9')).toBe('en')
    expect(pickLanguage(undefined, 'de-DE, en;q=0.5, nl;q=0.8')).toBe('nl')
    expect(pickLanguage(undefined, 'en;q=0, fr')).toBe('nl')
    expect(pickLanguage(['en', 'nl'], undefined)).toBe('nl')
  })

  it('tells admissions, status changes and key rotations apart', () => {
    const at = '2026-01-01T00:00:00.000Z'
    const node = (peerId: string, notAfter?: string): Institution['nodes'][number] =>
      ({ peerId, publicKey: 'A'.repeat(43) + '=', addresses: [], notBefore: at, status: 'active', ...(notAfter === undefined ? {} : { notAfter }) })
    const inst = (state: Institution['status']['state'], nodes: Institution['nodes']): Institution =>
      ({ ura: '12345678', name: 'Z', kind: 'hospital', departments: [], status: { state, since: at, reason: 'r' }, nodes })
    expect(diffInstitutions([], [inst('active', [node('p1')])]).map((c) => c.type)).toEqual(['institution-added', 'key-added'])
    expect(diffInstitutions([inst('active', [node('p1')])], [inst('suspended', [node('p1')])])).toEqual([
      { type: 'status-changed', ura: '12345678', name: 'Z', from: 'active', to: 'suspended', reason: 'r' }
    ])
    expect(diffInstitutions([inst('active', [node('p1')])], [inst('active', [node('p1', '2026-01-08T00:00:00.000Z'), node('p2')])])).toEqual([
      { type: 'key-rotated', ura: '12345678', name: 'Z', oldPeerId: 'p1', peerId: 'p2', until: '2026-01-08T00:00:00.000Z' }
    ])
  })
})

describe('governance view (served by a real registry)', () => {
  const startRegistry = useRegistries()

  it('lists the institutions with status, keys, addresses and a history derived from the published versions', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    const a = makeNodeKey()
    const b = makeNodeKey()
    const a2 = makeNodeKey()
    await publish(t, [admit('11111111', a, 'Ziekenhuis Amstel'), admit('22222222', b, 'Ziekenhuis Berkel')]) // v1
    await publish(t, [{ action: 'suspend', ura: '11111111', reason: 'node gecompromitteerd' }]) // v2
    // Seen now, and again after more versions: the walk kept between requests goes on from v2.
    expect(rowWith(section((await page(t)).html, 'institutions'), '11111111')).toContain('geschorst')
    await publish(t, [{ action: 'reinstate', ura: '11111111', reason: 'nieuwe sleutel volgt' }]) // v3
    await publish(t, [{ action: 'rotate-node-key', ura: '11111111', oldPeerId: a.peerId, enrolment: makeEnrolment(NETWORK, '11111111', a2, 'Ziekenhuis Amstel'), overlapDays: 7 }]) // v4
    await publish(t, [{ action: 'revoke', ura: '22222222', reason: 'gefuseerd' }]) // v5

    const p = await page(t)
    expect(p.status).toBe(200)
    expect(p.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(p.html).toMatch(/^<!doctype html>\n<html lang="nl">/)

    // Root and governance at the top.
    const root = textOf(section(p.html, 'root'))
    expect(root).toContain(NETWORK)
    expect(root).toContain('Root v1')
    expect(root).toContain('3 van 5 governance-sleutels')
    for (let i = 1; i <= 5; i++) expect(root).toContain(`member ${i}`)
    expect(root).toContain('1 actief, 0 geschorst, 1 ingetrokken')

    const institutions = section(p.html, 'institutions')
    expect(textOf(institutions)).toContain('Instellingen in directory v5')
    const amstel = rowWith(institutions, '11111111')
    expect(amstel).toContain('Ziekenhuis Amstel')
    expect(amstel).toContain('actief')
    expect(amstel).toContain('RAD Radiologie')
    expect(amstel).toContain('/ip4/127.0.0.1/tcp/4001')
    expect(amstel).toMatch(/geldig tot/) // the old key, through the overlap
    const berkel = rowWith(institutions, '22222222')
    expect(berkel).toContain('ingetrokken')
    expect(berkel).toContain('gefuseerd')
    // Peer ids shortened, whole in the title.
    expect(institutions).toContain(`<code class="id" title="${a2.peerId}">${a2.peerId.slice(0, 12)}…${a2.peerId.slice(-6)}</code>`)
    expect(institutions).not.toContain(`>${a2.peerId}<`)

    const history = element(p.html, '<section class="history" aria-labelledby="history-11111111">', 'section')
    const events = history.split('<tr>').slice(2).map((r) => textOf(r.split('</tr>')[0]!))
    expect(events.map((e) => e.split(' ')[0])).toEqual(['v1', 'v1', 'v2', 'v3', 'v4'])
    expect(events[0]).toContain('toegelaten tot de directory (actief)')
    expect(events[1]).toContain(`node-sleutel ${a.peerId.slice(0, 12)}`)
    expect(events[2]).toContain('geschorst (reden: node gecompromitteerd)')
    expect(events[3]).toContain('hersteld (weer actief) (reden: nieuwe sleutel volgt)')
    expect(events[4]).toMatch(/node-sleutel vervangen: 12D3KooW.*→ 12D3KooW.*; de oude blijft geldig tot/)
    const berkelHistory = textOf(element(p.html, '<section class="history" aria-labelledby="history-22222222">', 'section'))
    expect(berkelHistory).toContain('ingetrokken (definitief) (reden: gefuseerd)')
    // The institution's revocation says it once, not again for each of its keys.
    expect(berkelHistory).not.toContain('node-sleutel 12D3KooW' + b.peerId.slice(8, 12) + '… ingetrokken')
    expect(institutions).toContain('href="#history-11111111"')

    const versions = section(p.html, 'versions')
    expect(versions.split('<tr>').slice(2).map((r) => textOf(r).split(' ')[0])).toEqual(['v5', 'v4', 'v3', 'v2', 'v1'])
    const history5 = (await t.http.get('/v1/directories')).body.at(-1)
    expect(rowWith(versions, 'v5')).toContain('in gebruik')
    expect(versions).toContain(`title="${history5.hash}"`)
    expect(rowWith(versions, 'v5')).toMatch(/member 1 [0-9a-f]{8}…[0-9a-f]{4} member 2 .*member 3 /)

    // Read-only: no forms, no scripts, and it says where signing happens.
    expect(p.html).not.toMatch(/<form|<input|<button|<script|<style|\sstyle=|\son[a-z]+=/i)
    expect(textOf(p.html)).toContain('Alleen-lezen')
    expect(textOf(p.html)).toContain('beeldnet governance')
  })

  it('shows the frozen candidate with its diff and signatures, and the pending proposals with their effect, without freezing anything itself', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    await publish(t, [admit('11111111', makeNodeKey(), 'Ziekenhuis Amstel'), admit('22222222', makeNodeKey(), 'Ziekenhuis Berkel')])
    await publish(t, [{ action: 'suspend', ura: '11111111', reason: 'onderhoud' }])

    // Proposals waiting, no candidate frozen: the page previews them and leaves them unfrozen.
    const c = makeNodeKey()
    await t.http.post('/v1/proposals', propose({ action: 'reinstate', ura: '11111111', reason: 'onderhoud klaar' }, t.keys[1]!))
    await t.http.post('/v1/proposals', propose(admit('33333333', c, 'Kliniek Castricum'), t.keys[2]!))
    const before = await page(t)
    expect(textOf(section(before.html, 'candidate'))).toContain('Er is geen bevroren kandidaat')
    const waiting = section(before.html, 'proposals')
    expect(rowWith(waiting, 'URA 11111111 herstellen')).toContain('Ziekenhuis Amstel (URA 11111111): hersteld (weer actief) (reden: onderhoud klaar)')
    expect(rowWith(waiting, 'URA 11111111 herstellen')).toMatch(/member 2 [0-9a-f]{8}…/) // who proposed it
    expect(waiting).toContain('data-label="Voorgesteld door"')
    expect(rowWith(waiting, 'Kliniek Castricum (URA 33333333) toelaten')).toContain('toegelaten tot de directory (actief)')
    expect((await t.http.get('/v1/status')).body.candidate).toBeNull()

    // A member fetches (freezes) the candidate and signs; a later proposal waits for the next one.
    await signCandidate(t, [t.keys[0]!])
    await t.http.post('/v1/proposals', propose({ action: 'revoke', ura: '22222222', reason: 'gefuseerd' }, t.keys[3]!))
    const after = await page(t)
    const candidate = section(after.html, 'candidate')
    const text = textOf(candidate)
    expect(text).toContain('Kandidaat: directory v3')
    expect(text).toContain('1 van 3 nodig')
    expect(candidate).toMatch(/<progress max="3" value="1"/)
    expect(text).toMatch(/Getekend door member 1 [0-9a-f]{8}…/)
    expect(text).toMatch(/Nog niet getekend door member 2 .*member 3 .*member 4 .*member 5/)
    expect(text).toContain('Ziekenhuis Amstel (URA 11111111): hersteld (weer actief)')
    expect(text).toContain('Kliniek Castricum (URA 33333333): toegelaten tot de directory (actief)')
    expect(text).toContain(`Kliniek Castricum (URA 33333333): node-sleutel ${c.peerId.slice(0, 12)}`)
    expect(text).not.toContain('Berkel')
    expect(text).toContain('Volgt op v2')
    const candidateHash = (await t.http.get('/v1/status')).body.candidate.hash as string
    expect(candidate).toContain(`title="${candidateHash}"`)
    const later = section(after.html, 'proposals')
    expect(rowWith(later, 'URA 22222222 intrekken')).toContain('Ziekenhuis Berkel (URA 22222222): ingetrokken (definitief) (reden: gefuseerd)')
    expect(textOf(later)).not.toContain('Castricum')
    // The nav counts what waits.
    expect(textOf(element(after.html, '<nav class="toc"', 'nav'))).toContain('Openstaande voorstellen (1)')
  })

  it('shows a root candidate before root v1 is published, and pending enrolments', async () => {
    const t = await startRegistry()
    const p = await page(t, '/governance')
    expect(p.status).toBe(200)
    expect(textOf(section(p.html, 'root'))).toContain('Nog geen root gepubliceerd')
    const candidate = textOf(section(p.html, 'candidate'))
    expect(candidate).toContain('Kandidaat: root v1')
    expect(candidate).toContain('0 van 3 nodig')
    expect(candidate).toContain('drempel – → 3 van 5 sleutels')
    expect(candidate).toContain('eerste versie')
    expect(textOf(section(p.html, 'versions'))).toContain('Nog geen directoryversie gepubliceerd')

    await publishRootV1(t)
    await publish(t, [admit('11111111', makeNodeKey())])
    const key = makeNodeKey()
    expect((await t.http.post('/v1/enrolments', makeEnrolment(NETWORK, '44444444', key, 'Ziekenhuis Delft'))).status).toBe(201)
    expect((await t.http.post('/v1/enrolments', makeEnrolment(NETWORK, '11111111', makeNodeKey()))).status).toBe(201)
    const enrolments = section((await page(t)).html, 'enrolments')
    expect(rowWith(enrolments, '44444444')).toContain('Ziekenhuis Delft')
    expect(rowWith(enrolments, '44444444')).toContain('nieuwe instelling')
    expect(rowWith(enrolments, '44444444')).toContain(key.peerId.slice(0, 12))
    expect(rowWith(enrolments, 'Ziekenhuis 11111111')).toContain('sleutel voor een instelling die al in de directory staat')
  })

  it('speaks English on ?lang=en or Accept-Language, Dutch by default, and links both ways', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    await publish(t, [admit('11111111', makeNodeKey(), 'Ziekenhuis Amstel')])
    await publish(t, [{ action: 'suspend', ura: '11111111', reason: 'audit' }])

    const nl = await page(t)
    expect(nl.html).toContain('<html lang="nl">')
    expect(textOf(nl.html)).toContain('Instellingen in directory v2')
    expect(rowWith(section(nl.html, 'institutions'), '11111111')).toContain('geschorst')
    expect(nl.html).toContain('<a href="?lang=en" hreflang="en" lang="en">English</a>')
    expect(nl.html).toContain('<a href="?lang=nl" hreflang="nl" lang="nl" aria-current="true">Nederlands</a>')
    expect(nl.headers.get('vary')).toMatch(/accept-language/i)

    for (const en of [await page(t, '/?lang=en'), await page(t, '/governance', { 'accept-language': 'en-GB,en;q=0.9,nl;q=0.5' })]) {
      expect(en.html).toContain('<html lang="en">')
      const text = textOf(en.html)
      expect(text).toContain('Institutions in directory v2')
      expect(text).toContain('Read-only')
      expect(text).toContain('3 of 5 governance keys')
      expect(rowWith(section(en.html, 'institutions'), '11111111')).toContain('suspended')
      expect(textOf(element(en.html, '<section class="history" aria-labelledby="history-11111111">', 'section'))).toContain('suspended (reason: audit)')
      expect(en.html).toContain('<a href="?lang=nl" hreflang="nl" lang="nl">Nederlands</a>')
      expect(text).not.toContain('Instellingen')
    }
    // ?lang wins over the header; an unknown one falls back to it.
    expect((await page(t, '/?lang=nl', { 'accept-language': 'en' })).html).toContain('<html lang="nl">')
    expect((await page(t, '/?lang=fr', { 'accept-language': 'en' })).html).toContain('<html lang="en">')
  })

  it('escapes what documents say: a name with <script> shows as text', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    const evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    await publish(t, [admit('66666666', makeNodeKey(), evil)])
    await publish(t, [{ action: 'suspend', ura: '66666666', reason: '</td><script>alert(2)</script>' }])
    await t.http.post('/v1/enrolments', makeEnrolment(NETWORK, '77777777', makeNodeKey(), '"><script>alert(3)</script>'))
    await t.http.post('/v1/proposals', propose({ action: 'revoke', ura: '66666666', reason: '<b>weg</b>' }, t.keys[0]!))

    const p = await page(t)
    expect(p.html).not.toMatch(/<script|<img|<b>/i)
    expect(p.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;')
    expect(p.html).toContain('&lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;')
    expect(p.html).toContain('&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;')
    expect(p.html).toContain('&lt;b&gt;weg&lt;/b&gt;')
    // Read back as text, the reader sees exactly what the document says.
    expect(rowWith(section(p.html, 'institutions'), '66666666')).toContain(evil)
    expect(textOf(section(p.html, 'enrolments'))).toContain('"><script>alert(3)</script>')
  })

  it('sets a strict CSP, serves its own stylesheet and links nothing outside the registry', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    await publish(t, [admit('11111111', makeNodeKey())])
    for (const path of ['/', '/governance', '/?lang=en', '/governance.css']) {
      const res = await page(t, path)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-security-policy')).toBe(GOVERNANCE_CSP)
      expect(GOVERNANCE_CSP).toBe("default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('x-frame-options')).toBe('DENY')
    }
    const css = await page(t, '/governance.css')
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(css.html).toContain(':focus-visible')
    expect(css.html).not.toMatch(/url\(|@import|http/i)
    expect((await page(t)).headers.get('cache-control')).toBe('no-store')

    const p = await page(t)
    const refs = [...p.html.matchAll(/\s(?:src|href|action|srcset|poster|data)="([^"]*)"/g)].map((m) => m[1]!)
    expect(refs).toContain('governance.css')
    for (const ref of refs) {
      expect(ref).not.toMatch(/http|\/\/|:/i)
      expect(ref).toMatch(/^(#[a-z0-9-]+|\?lang=(nl|en)|governance\.css)$/)
    }
    // Every in-page link lands on an element that exists.
    for (const ref of refs.filter((r) => r.startsWith('#'))) expect(p.html).toContain(`id="${ref.slice(1)}"`)
    // Labelled: tables have captions and header cells, scrolling regions are named and focusable.
    expect(p.html).toMatch(/<div class="table-wrap" role="region" aria-labelledby="institutions-table-caption" tabindex="0">/)
    expect(p.html).toContain('<caption id="institutions-table-caption">')
    expect(p.html).toContain('<th scope="col">')
    expect(p.html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">')
  })

  it('still renders from a store that does not verify (served read-only), under a warning', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    await publish(t, [admit('11111111', makeNodeKey(), 'Ziekenhuis Amstel')])
    await t.registry.stop()
    const db = new Level<string, unknown>(join(t.dir, 'db'), { valueEncoding: 'json' })
    const directories = db.sublevel<string, SignedDirectory>('directories', { valueEncoding: 'json' })
    const stored = (await directories.get('0000000001'))!
    stored.institutions[0]!.nodes[0]!.addresses = ['/ip4/203.0.113.66/tcp/4001']
    await directories.put('0000000001', stored)
    await db.close()

    await t.restart({ onTamper: 'serve' })
    const p = await page(t)
    expect(p.status).toBe(200)
    expect(textOf(element(p.html, '<div class="alert">', 'div'))).toContain('De opslag van het register verifieert niet')
    expect(textOf(element(p.html, '<div class="alert">', 'div'))).toContain('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect(rowWith(section(p.html, 'institutions'), '11111111')).toContain('/ip4/203.0.113.66/tcp/4001')
  })
})
