import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { writeOrWait } from '../../../node/net/socket-write.ts'

/*
 * The C-STORE SCU (C-MOVE, export), C-GET's streamed sub-operations and the syslog export wait for
 * a full socket to drain, thousands of times on a large instance or a long trail: each wait is taken
 * off the socket once it is over, so nothing piles up on a connection that lives long.
 */

async function connectedPair (): Promise<{ client: Socket, received: () => number }> {
  let bytes = 0
  const server = createServer((peer) => { peer.on('data', (d: Buffer) => { bytes += d.length }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(client, 'connect')
  onTestFinished(async () => {
    client.destroy()
    server.close()
    await once(server, 'close')
  })
  return { client, received: () => bytes }
}

describe('writing to a socket that fills up', () => {
  it('leaves no drain or close listener behind, however often it waits', async () => {
    const { client, received } = await connectedPair()
    const before = { close: client.listenerCount('close'), error: client.listenerCount('error'), drain: client.listenerCount('drain') }
    const chunk = Buffer.alloc(1024 * 1024, 7)
    // 1 MiB is far above the socket's high-water mark: every write waits for a drain.
    for (let i = 0; i < 40; i++) await writeOrWait(client, chunk)
    expect({ close: client.listenerCount('close'), error: client.listenerCount('error'), drain: client.listenerCount('drain') }).toEqual(before)
    await expect.poll(received).toBe(40 * chunk.length)
  })

  it('ends its wait when the socket closes before it drains', async () => {
    const { client } = await connectedPair()
    const waiting = writeOrWait(client, Buffer.alloc(8 * 1024 * 1024, 7))
    client.destroy()
    await waiting
    expect(client.listenerCount('drain')).toBe(0)
  })
})
