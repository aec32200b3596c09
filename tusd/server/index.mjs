// Entry point: `node tusd/server/index.mjs`. A tus server that stands in for tusd on hosts
// where the tusd binary cannot be had: @tus/server + @tus/s3-store, speaking tusd's v2 HTTP
// hooks. Configuration: environment variables, see config.mjs.

import http from 'node:http'
import {Server} from '@tus/server'
import {NodeRequest, sendNodeResponse} from 'srvx/node'
import {loadConfig} from './config.mjs'
import {createAdapter} from './events.mjs'
import {createHookClient} from './hooks.mjs'
import {createStore} from './store.mjs'

const log = {
  info: (message) => console.log(`${new Date().toISOString()} INFO ${message}`),
  error: (message) => console.error(`${new Date().toISOString()} ERROR ${message}`),
}

const config = loadConfig()
if (!config.s3.accessKey || !config.s3.secretKey) {
  log.error('S3_ACCESS_KEY and S3_SECRET_KEY must be set')
  process.exit(2)
}

const store = createStore(config.s3)
const hooks = createHookClient(config.hooks, log)
const adapter = createAdapter({config, hooks, store, log})
const tus = new Server({
  // @tus/server appends "/<id>" itself.
  path: config.basePath.replace(/\/$/, ''),
  datastore: store,
  maxSize: config.maxSize,
  respectForwardedHeaders: config.behindProxy,
  postReceiveInterval: config.hooks.progressIntervalMs,
  ...adapter.options,
})
adapter.attach(tus)

const uploadsRoot = config.basePath.replace(/\/$/, '')

async function handle(req, res) {
  const {pathname} = new URL(req.url, 'http://localhost')
  if (pathname === '/health') {
    // Readiness for the supervisor: the process is up and listening.
    res.writeHead(200, {'Content-Type': 'text/plain'}).end('ok\n')
    return
  }
  if (pathname !== uploadsRoot && !pathname.startsWith(config.basePath)) {
    res.writeHead(404, {'Content-Type': 'text/plain'}).end('404 page not found\n')
    return
  }
  // Same as Server.handle(), but the response passes through the adapter first.
  const request = new NodeRequest({req, res})
  const response = await adapter.finish(request, await tus.handleWeb(request))
  await sendNodeResponse(res, response)
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => {
    log.error(`${req.method} ${req.url}: ${error.stack ?? error}`)
    if (!res.headersSent) res.writeHead(500).end()
    else res.destroy()
  })
})

server.listen(config.port, config.host, () => {
  log.info(`tus server on http://${config.host}:${config.port}${config.basePath} -> s3 ` +
    `${config.s3.endpoint}/${config.s3.bucket}, hooks ${config.hooks.url ? 'on' : 'off'}`)
})

// SIGTERM: stop accepting, let running uploads finish (their data is kept either way, as
// the store saves what arrived), then wait for hooks already under way, e.g. post-finish.
let stopping = false
function shutdown(signal) {
  if (stopping) return
  stopping = true
  log.info(`${signal}: shutting down`)
  const cut = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs)
  server.close(async () => {
    clearTimeout(cut)
    await hooks.drain()
    process.exit(0)
  })
  server.closeIdleConnections()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
