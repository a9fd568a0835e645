// bench:wan's probes of the path itself, in a network namespace (`ip netns exec`), driven over IPC.
// `serve <host>` (the receiving side): an echo port and a sink port on <host>, announced as
// {type:'ready', echoPort, sinkPort}; the sink reads an 8-byte length, then that many bytes, and
// answers one JSON line {bytes, seconds} timed from its first payload byte to its last (the line
// rate, without the path's latency). `dial` (the sending side): {cmd:'ping', host, port, count}
// answers {type:'ping', rttMs: number[]} (one byte there and back, one after another, TCP_NODELAY);
// {cmd:'bulk', host, port, bytes} answers {type:'bulk', bytes, sinkSeconds, seconds}.
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

type Command =
  | { cmd: 'ping', host: string, port: number, count: number }
  | { cmd: 'bulk', host: string, port: number, bytes: number }
  | { cmd: 'stop' }

const [mode, host] = process.argv.slice(2)

function echo (socket: Socket): void {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  socket.pipe(socket)
}

function sink (socket: Socket): void {
  socket.on('error', () => {})
  let expected = -1
  let header = Buffer.alloc(0)
  let received = 0
  let first = 0
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      header = Buffer.concat([header, chunk])
      if (header.length < 8) return
      expected = Number(header.readBigUInt64BE(0))
      chunk = header.subarray(8)
      first = performance.now()
    }
    received += chunk.length
    if (received >= expected) {
      socket.end(JSON.stringify({ bytes: received, seconds: (performance.now() - first) / 1000 }) + '\n')
    }
  })
}

async function listen (handler: (socket: Socket) => void): Promise<number> {
  const server = createServer(handler)
  server.listen(0, host)
  await once(server, 'listening')
  return (server.address() as { port: number }).port
}

async function dial (target: { host: string, port: number }): Promise<Socket> {
  const socket = connect({ ...target, noDelay: true })
  await once(socket, 'connect')
  return socket
}

async function ping (target: { host: string, port: number }, count: number): Promise<number[]> {
  const socket = await dial(target)
  const rtts: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      socket.write(Buffer.of(i & 0xff))
      await once(socket, 'data')
      rtts.push(performance.now() - started)
    }
  } finally {
    socket.destroy()
  }
  return rtts
}

async function bulk (target: { host: string, port: number }, bytes: number): Promise<{ bytes: number, sinkSeconds: number, seconds: number }> {
  const started = performance.now()
  const socket = await dial(target)
  let answer = ''
  socket.on('data', (d: Buffer) => { answer += d.toString() })
  const ended = once(socket, 'end')
  const header = Buffer.alloc(8)
  header.writeBigUInt64BE(BigInt(bytes))
  socket.write(header)
  const block = Buffer.alloc(1024 * 1024, 0x5a)
  for (let left = bytes; left > 0; left -= block.length) {
    if (!socket.write(left >= block.length ? block : block.subarray(0, left))) await once(socket, 'drain')
  }
  await ended
  const seconds = (performance.now() - started) / 1000
  socket.destroy()
  const sink = JSON.parse(answer) as { bytes: number, seconds: number }
  return { bytes: sink.bytes, sinkSeconds: sink.seconds, seconds }
}

if (mode === 'serve') {
  process.send!({ type: 'ready', echoPort: await listen(echo), sinkPort: await listen(sink) })
} else {
  process.send!({ type: 'ready' })
}

process.on('message', (command: Command) => {
  void (async () => {
    try {
      if (command.cmd === 'ping') process.send!({ type: 'ping', rttMs: await ping(command, command.count) })
      else if (command.cmd === 'bulk') process.send!({ type: 'bulk', ...await bulk(command, command.bytes) })
      else if (command.cmd === 'stop') process.exit(0)
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message })
    }
  })()
})
