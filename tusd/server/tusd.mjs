// tusd's wire formats (tusd v2, pkg/handler): the FileInfo and HTTPRequest objects of a hook
// event, tusd's error responses and how hook HTTPResponses are merged into them. Field names,
// nulls and defaults follow what Go's encoding/json makes of tusd's structs, so that the hook
// receiver sees exactly what real tusd would send.

// tusd: NewError(code, message, status) -> body "CODE: message\n", text/plain.
export function tusdError(code, message, statusCode) {
  return {
    StatusCode: statusCode,
    Body: `${code}: ${message}\n`,
    Header: {'Content-Type': 'text/plain; charset=utf-8'},
  }
}

export const ERR_UPLOAD_REJECTED = tusdError(
  'ERR_UPLOAD_REJECTED',
  'upload creation has been rejected by server',
  400
)
export const ERR_UPLOAD_STOPPED = tusdError(
  'ERR_UPLOAD_STOPPED',
  'upload has been stopped by server',
  400
)
export const internalError = (message) =>
  tusdError('ERR_INTERNAL_SERVER_ERROR', message, 500)

// tusd HTTPResponse.MergeWith: non-zero status / non-empty body / each header of `extra` win.
export function mergeResponse(base, extra) {
  return {
    StatusCode: extra?.StatusCode || base.StatusCode,
    Body: extra?.Body || base.Body,
    Header: {...base.Header, ...extra?.Header},
  }
}

// tusd's FileInfo for an @tus/server Upload (or the plain copy post-receive gets). The
// @tus/s3-store keeps the object key in storage.path; tusd's s3store reports it as "Key".
export function fileInfo(upload) {
  const size = upload.size
  const metadata = {}
  for (const [key, value] of Object.entries(upload.metadata ?? {})) {
    // tus metadata keys may come without a value: @tus/server says null, tusd says "".
    metadata[key] = value ?? ''
  }
  return {
    ID: upload.id ?? '',
    Size: size ?? 0,
    SizeIsDeferred: size === undefined || size === null,
    Offset: upload.offset ?? 0,
    MetaData: metadata,
    // Concatenation is not offered, so uploads are never partial or final.
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: upload.storage
      ? {Type: 's3store', Bucket: upload.storage.bucket, Key: upload.storage.path}
      : null,
  }
}

// Go's textproto.CanonicalMIMEHeaderKey: "x-forwarded-for" -> "X-Forwarded-For".
function canonicalHeaderKey(name) {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return name
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase())
}

// A request's socket is gone once its connection closes, yet hooks about it may still be
// due (post-terminate after a stopped upload): describe each request once, on first use.
const described = new WeakMap()

// tusd's HTTPRequest of a hook event, from the Node.js request behind a srvx Request:
// URI is the raw request target (path and query, as Go's RequestURI), RemoteAddr is
// "ip:port" and Header maps canonical names to every value received, Host included.
export function httpRequest(request) {
  if (!described.has(request)) described.set(request, describe(request.runtime.node.req))
  return described.get(request)
}

function describe(req) {
  const header = {}
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const key = canonicalHeaderKey(req.rawHeaders[i])
    if (!header[key]) header[key] = []
    header[key].push(req.rawHeaders[i + 1])
  }
  const address = req.socket?.remoteAddress ?? ''
  const host = address.includes(':') ? `[${address}]` : address
  return {
    Method: req.method,
    URI: req.url,
    RemoteAddr: `${host}:${req.socket?.remotePort ?? 0}`,
    Header: header,
  }
}

// Turns a tusd HTTPResponse into the web Response sent to the client. The headers
// @tus/server already chose (Tus-Resumable, CORS) are kept, as tusd sets those on every
// response before any error is written.
export function toWebResponse(tusdResponse, baseHeaders) {
  const headers = new Headers(baseHeaders)
  headers.delete('Content-Length')
  headers.delete('Content-Type')
  for (const [key, value] of Object.entries(tusdResponse.Header ?? {})) headers.set(key, value)
  const bodyless = [204, 205, 304].includes(tusdResponse.StatusCode)
  const body = bodyless ? null : tusdResponse.Body || null
  if (body !== null) headers.set('Content-Length', String(Buffer.byteLength(body)))
  return new Response(body, {status: tusdResponse.StatusCode, headers})
}
