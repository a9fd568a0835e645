// The floor for serving the directory: Node's own http server answering every request with the
// same gzipped bytes from memory, with nothing else in the way. Prints its URL on stdout.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'

const [file, contentType] = process.argv.slice(2)
const body = await readFile(file!)
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': contentType ?? 'application/json', 'content-encoding': 'gzip', 'content-length': body.length })
  res.end(body)
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number }
  process.stdout.write(`http://127.0.0.1:${address.port}\n`)
})
process.once('SIGTERM', () => { server.close(); server.closeAllConnections() })
