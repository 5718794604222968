// The reference y-websocket server (@y/websocket-server) with its default
// settings (no persistence, gc on), on 127.0.0.1. The document name is the
// URL path, as in its own bin script.
// Usage: node ywebsocket.mjs [PORT]   (0 or nothing: any free port)
// Prints `ywebsocket listening on http://127.0.0.1:PORT` once it accepts.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const port = Number(process.argv[2] ?? process.env.PORT ?? 0)
const wss = new WebSocketServer({ noServer: true })
wss.on('connection', setupWSConnection)

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' })
  res.end('okay')
})
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
})
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
server.listen(port, '127.0.0.1', () => {
  console.log(`ywebsocket listening on http://127.0.0.1:${server.address().port}`)
})
