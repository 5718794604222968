// Hocuspocus with its default settings and no extensions, on 127.0.0.1.
// Usage: node hocuspocus.mjs [PORT]   (0 or nothing: any free port)
// Prints `hocuspocus listening on http://127.0.0.1:PORT` once it accepts.
import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2] ?? process.env.PORT ?? 0)
const server = new Server({ address: '127.0.0.1', port, quiet: true })

await server.listen()
console.log(`hocuspocus listening on http://127.0.0.1:${server.address.port}`)
