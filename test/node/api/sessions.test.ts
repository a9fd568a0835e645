import { describe, expect, it } from 'vitest'
import { UserStore } from '../../../node/users/user-store.ts'
import { DEMO_PASSWORD } from '../../../simulations/scenarios/demo-accounts.ts'
import type { LocalNetworkNode } from '../../../simulations/scenarios/local-network.ts'
import { useLocalNetwork } from '../../helpers/local-network.ts'

/*
 * A session lasts only as long as the person may: logging out, disabling the account or giving it
 * a new password ends it, and a live event stream opened with it stops too. IT keeps transfers
 * running but does not send studies or see the patients in them.
 */

async function logIn (url: string, username: string): Promise<{ cookie: string, csrf: string }> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: DEMO_PASSWORD }) })
  expect(res.status).toBe(200)
  return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: (await res.json() as { csrfToken: string }).csrfToken }
}

describe('sessions and what IT may do with transfers', () => {
  const suite = useLocalNetwork('sessions', 1, { demoAccounts: true })

  it('ends a session on logout (its event stream too), on disabling the account and on a new password', async () => {
    const node = suite.nodes[0] as LocalNetworkNode
    const users = new UserStore(`${node.dataDir}/users.json`)

    const first = await logIn(node.url, 'arts')
    const stream = await fetch(`${node.url}/api/transfers/events`, { headers: { cookie: first.cookie } })
    expect(stream.headers.get('x-content-type-options')).toBe('nosniff')
    const reading = (async () => { for await (const _ of stream.body!) { /* until the node ends it */ } return 'ended' })()
    expect((await fetch(`${node.url}/api/logout`, { method: 'POST', headers: { cookie: first.cookie, 'x-csrf-token': first.csrf } })).status).toBe(200)
    expect(await reading).toBe('ended')

    const second = await logIn(node.url, 'arts')
    expect((await fetch(`${node.url}/api/studies`, { headers: { cookie: second.cookie } })).status).toBe(200)
    await users.resetPassword('arts', 'a brand new password')
    expect((await fetch(`${node.url}/api/studies`, { headers: { cookie: second.cookie } })).status).toBe(401)

    const third = await logIn(node.url, 'beheer')
    await users.disable('beheer')
    expect((await fetch(`${node.url}/api/transfers`, { headers: { cookie: third.cookie } })).status).toBe(401)
  })

  it('lets IT list transfers but not send a study or open the inbox with its patients', async () => {
    const node = suite.nodes[0] as LocalNetworkNode
    const admin = { authorization: `Bearer ${(await new UserStore(`${node.dataDir}/users.json`).addToken('IT console', 'it-admin')).token}`, 'content-type': 'application/json' }
    expect((await fetch(`${node.url}/api/transfers`, { headers: admin })).status).toBe(200)
    const send = await fetch(`${node.url}/api/transfers`, { method: 'POST', headers: admin, body: JSON.stringify({ studyInstanceUID: node.sampleStudies[0], to: { ura: node.ura, department: 'RAD' }, reason: 'test' }) })
    expect(send.status).toBe(403)
    expect((await fetch(`${node.url}/api/inbox`, { headers: admin })).status).toBe(403)
    expect((await fetch(`${node.url}/api/pacs/held`, { headers: admin })).status).toBe(403)
  })
})
