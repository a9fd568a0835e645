import { describe, expect, it } from 'vitest'
import { PduProtocolError, PduRouter } from '../../../node/dimse/pdu-router.ts'

/*
 * Our PDU reader in front of the DIMSE library: whatever the chunking of the socket, the library
 * gets whole PDUs of one PDV each, and the dataset of a C-STORE being received goes to its sink
 * uncopied, the library seeing only an empty last fragment for it.
 */

function pdu (type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6)
  head.writeUInt8(type, 0)
  head.writeUInt32BE(body.length, 2)
  return Buffer.concat([head, body])
}

function pdv (contextId: number, command: boolean, last: boolean, data: Buffer): Buffer {
  const head = Buffer.alloc(6)
  head.writeUInt32BE(data.length + 2, 0)
  head.writeUInt8(contextId, 4)
  head.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 5)
  return Buffer.concat([head, data])
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 256))

/** Feeds `stream` in chunks of `size`; the sink opens once the library has seen a first data fragment, as the library does. */
function run (stream: Buffer, size: number): { library: Buffer[], sunk: Buffer } {
  const library: Buffer[] = []
  const sunk: Buffer[] = []
  let open = false
  const router = new PduRouter({
    library: (p) => {
      library.push(Buffer.from(p))
      const control = p.length >= 12 && p[0] === 0x04 ? p[11]! : 0x01
      if ((control & 0x01) === 0) open = (control & 0x02) === 0
    },
    storeSink: () => open ? { write: (b: Buffer) => sunk.push(Buffer.from(b)) } : undefined
  }, 1024 * 1024)
  for (let at = 0; at < stream.length; at += size) router.push(stream.subarray(at, at + size))
  return { library, sunk: Buffer.concat(sunk) }
}

describe('PduRouter', () => {
  const associate = pdu(0x01, bytes(70, 1))
  const command = pdu(0x04, pdv(3, true, true, bytes(40, 2)))
  const first = pdu(0x04, pdv(3, false, false, bytes(100, 3)))
  // One PDU with two fragments, then the last fragment in a PDU of its own.
  const middle = pdu(0x04, Buffer.concat([pdv(3, false, false, bytes(300, 4)), pdv(3, false, false, bytes(50, 5))]))
  const last = pdu(0x04, pdv(3, false, true, bytes(20, 6)))
  const release = pdu(0x05, Buffer.alloc(4))
  const stream = Buffer.concat([associate, command, first, middle, last, release])

  for (const size of [1, 2, 5, 6, 7, 13, 64, 1000, stream.length]) {
    it(`in chunks of ${size} bytes: the library gets whole PDUs, the dataset after its first fragment goes to the sink`, () => {
      const { library, sunk } = run(stream, size)
      expect(library).toEqual([associate, command, first, pdu(0x04, pdv(3, false, true, Buffer.alloc(0))), release])
      expect(sunk).toEqual(Buffer.concat([bytes(300, 4), bytes(50, 5), bytes(20, 6)]))
    })
  }

  it('a command set taken by the caller never reaches the library; its dataset goes to the sink, which is told of the last fragment', () => {
    for (const size of [1, 7, 64, stream.length]) {
      const library: Buffer[] = []
      const sunk: Buffer[] = []
      const offered: Buffer[] = []
      let finished = 0
      let open = false
      const router = new PduRouter({
        library: (p) => { library.push(Buffer.from(p)) },
        storeSink: () => open ? { write: (b: Buffer) => sunk.push(Buffer.from(b)), finish: () => { finished++; open = false } } : undefined,
        command: (_contextId, bytes) => { offered.push(Buffer.from(bytes)); open = true; return true }
      }, 1024 * 1024)
      for (let at = 0; at < stream.length; at += size) router.push(stream.subarray(at, at + size))
      expect(offered).toEqual([bytes(40, 2)])
      expect(library).toEqual([associate, release])
      expect(Buffer.concat(sunk)).toEqual(Buffer.concat([bytes(100, 3), bytes(300, 4), bytes(50, 5), bytes(20, 6)]))
      expect(finished).toBe(1)
    }
  })

  it('refuses a PDU longer than it takes and a PDV item longer than its PDU', () => {
    const router = new PduRouter({ library: () => {}, storeSink: () => undefined }, 1000)
    expect(() => { router.push(pdu(0x04, bytes(1001, 7))) }).toThrow(PduProtocolError)
    const other = new PduRouter({ library: () => {}, storeSink: () => undefined }, 1000)
    const lying = pdu(0x04, pdv(1, false, true, bytes(10, 8)))
    lying.writeUInt32BE(500, 6)
    expect(() => { other.push(lying) }).toThrow(PduProtocolError)
  })
})
