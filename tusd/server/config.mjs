// Configuration of the local tusd-compatible server, read once from the environment at start.
// Each field names the tusd flag it stands in for (see ../README.md), so that the same values
// can be given to real tusd in compose.

const MIB = 1024 * 1024

// tusd's default set of hooks (-hooks-enabled-events).
const DEFAULT_HOOKS = 'pre-create,post-create,post-receive,post-terminate,post-finish'
const KNOWN_HOOKS = new Set(DEFAULT_HOOKS.split(','))

function integer(env, name, fallback, min) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  }
  return value
}

function boolean(env, name, fallback) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false
  throw new Error(`${name} must be a boolean (true/false), got ${JSON.stringify(raw)}`)
}

function basePath(raw) {
  // tusd's -base-path is always "/x/"; normalise so "/files" and "files/" mean the same.
  const trimmed = raw.replace(/^\/+|\/+$/g, '')
  return trimmed === '' ? '/' : `/${trimmed}/`
}

function hookList(raw) {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of names) {
    if (!KNOWN_HOOKS.has(name)) throw new Error(`HOOKS_ENABLED_EVENTS: unknown hook ${name}`)
  }
  return new Set(names)
}

export function loadConfig(env = process.env) {
  const partSize = integer(env, 'TUS_PART_SIZE', 8 * MIB, 5 * MIB)
  return Object.freeze({
    // TUS_HOST: interface to listen on (tusd -host). Default 127.0.0.1.
    host: env.TUS_HOST || '127.0.0.1',
    // TUS_PORT: TCP port to listen on (tusd -port). Default 11080.
    port: integer(env, 'TUS_PORT', 11080, 1),
    // TUS_PATH: base path of the upload endpoint, with trailing slash (tusd -base-path).
    // Default /files/. Upload URLs are <base>/<id>.
    basePath: basePath(env.TUS_PATH || '/files/'),
    // TUS_MAX_SIZE: largest accepted upload in bytes, 0 = unlimited (tusd -max-size).
    // Announced as Tus-Max-Size; larger Upload-Length gets 413 before pre-create runs.
    maxSize: integer(env, 'TUS_MAX_SIZE', 0, 0),
    // TUS_BEHIND_PROXY: build upload URLs from Forwarded / X-Forwarded-Host / -Proto
    // (tusd -behind-proxy). Default true, as compose runs tusd with -behind-proxy; the
    // headers only change the Location the requesting client itself gets back.
    behindProxy: boolean(env, 'TUS_BEHIND_PROXY', true),
    // TUS_SHUTDOWN_GRACE_MS: on SIGTERM, how long running requests may finish before their
    // connections are cut (ms). Default 10000.
    shutdownGraceMs: integer(env, 'TUS_SHUTDOWN_GRACE_MS', 10_000, 0),

    s3: Object.freeze({
      // S3_ENDPOINT: S3 API URL (tusd -s3-endpoint). Default http://127.0.0.1:18333 (SeaweedFS).
      endpoint: env.S3_ENDPOINT || 'http://127.0.0.1:18333',
      // S3_ACCESS_KEY / S3_SECRET_KEY: credentials (tusd reads AWS_ACCESS_KEY_ID /
      // AWS_SECRET_ACCESS_KEY). Required.
      accessKey: env.S3_ACCESS_KEY || '',
      secretKey: env.S3_SECRET_KEY || '',
      // S3_REGION: signing region (tusd reads AWS_REGION). Default us-east-1.
      region: env.S3_REGION || 'us-east-1',
      // UPLOADS_BUCKET: bucket the uploads land in, key = upload id (tusd -s3-bucket).
      // Default uploads.
      bucket: env.UPLOADS_BUCKET || 'uploads',
      // TUS_PART_SIZE: preferred S3 multipart part size in bytes, at least 5 MiB
      // (tusd -s3-part-size). Default 8 MiB.
      partSize,
    }),

    hooks: Object.freeze({
      // HOOKS_HTTP: full URL hooks are POSTed to, secret query included, used verbatim
      // (tusd -hooks-http). Empty = no hooks: every upload is accepted.
      url: env.HOOKS_HTTP || '',
      // HOOKS_ENABLED_EVENTS: comma-separated hooks to send (tusd -hooks-enabled-events).
      // Default pre-create,post-create,post-receive,post-terminate,post-finish.
      enabled: hookList(env.HOOKS_ENABLED_EVENTS || DEFAULT_HOOKS),
      // HOOKS_RETRY: attempts per hook on a network error or 5xx answer (tusd
      // -hooks-http-retry; tusd's HTTP client counts the first try as one). Default 3.
      retry: integer(env, 'HOOKS_RETRY', 3, 1),
      // HOOKS_BACKOFF_MS: wait between those attempts in ms (tusd -hooks-http-backoff).
      // Default 1000.
      backoffMs: integer(env, 'HOOKS_BACKOFF_MS', 1000, 0),
      // HOOKS_TIMEOUT_MS: limit for one hook attempt in ms (tusd -hooks-http-timeout).
      // Default 15000.
      timeoutMs: integer(env, 'HOOKS_TIMEOUT_MS', 15_000, 1),
      // HOOKS_PROGRESS_INTERVAL_MS: post-receive is sent at most this often per upload
      // while data flows (tusd -progress-hooks-interval). Default 1000.
      progressIntervalMs: integer(env, 'HOOKS_PROGRESS_INTERVAL_MS', 1000, 1),
    }),
  })
}
