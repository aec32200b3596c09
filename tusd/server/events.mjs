// Wires @tus/server's callbacks and events to tusd's hooks, so the hook receiver cannot tell
// this server from tusd:
//   pre-create     blocking, from namingFunction: it is the only @tus/server callback that
//                  runs before the upload id is fixed, and ChangeFileInfo.ID must become it.
//   post-create    EVENTS.POST_CREATE
//   post-receive   EVENTS.POST_RECEIVE (throttled by @tus/server's postReceiveInterval)
//   post-finish    EVENTS.POST_FINISH, emitted after the S3 multipart upload is completed
//   post-terminate EVENTS.POST_TERMINATE, with the upload info read before the DELETE
// @tus/server builds the HTTP responses; where a hook decides the response (a rejected
// pre-create, a stopped upload, headers added by pre-create) `finish` rewrites it.

import crypto from 'node:crypto'
import {ERRORS, EVENTS} from '@tus/server'
import {
  ERR_UPLOAD_REJECTED,
  ERR_UPLOAD_STOPPED,
  fileInfo,
  httpRequest,
  internalError,
  mergeResponse,
  toWebResponse,
} from './tusd.mjs'

// tusd's validateUploadId, minus "/": @tus/server cannot address ids containing one.
const VALID_ID = /^[A-Za-z0-9\-._~%!$'()*+,;=:@]+$/

export function createAdapter({config, hooks, store, log}) {
  const {basePath, maxSize} = config
  // Per request: a tusd HTTPResponse that replaces (`replace`) or is merged into (`merge`)
  // the response @tus/server produced.
  const overrides = new WeakMap()
  // Per POST request: the metadata pre-create's ChangeFileInfo.MetaData chose.
  const changedMetadata = new WeakMap()
  // Per DELETE request: the upload as it was before termination, for post-terminate.
  const terminated = new WeakMap()
  // Upload id -> the request currently writing data to it (the locker allows one), so
  // post-receive can report that request and StopUpload can reach it; and back.
  const writers = new Map()
  const writing = new WeakMap()

  // Rejects the POST with a tusd response; @tus/server sees an error and creates nothing.
  function refuse(request, response) {
    overrides.set(request, {replace: response})
    return Object.assign(new Error(response.Body), {
      status_code: response.StatusCode,
      body: response.Body,
    })
  }

  async function namingFunction(request, metadata) {
    // tusd refuses an oversized upload before asking pre-create; @tus/server would check
    // after naming it.
    const length = request.headers.get('upload-length')
    if (maxSize > 0 && length !== null && Number(length) > maxSize) {
      throw ERRORS.ERR_MAX_SIZE_EXCEEDED
    }
    const randomId = crypto.randomBytes(16).toString('hex')
    if (!hooks.isEnabled('pre-create')) return randomId

    const upload = fileInfo({
      id: '',
      size: length === null ? undefined : Number(length),
      offset: 0,
      metadata,
    })
    let answer
    try {
      answer = await hooks.invoke('pre-create', upload, httpRequest(request))
    } catch (error) {
      log.error(`hook pre-create failed: ${error.message}`)
      throw refuse(request, internalError(error.message))
    }
    if (answer.RejectUpload) {
      throw refuse(request, mergeResponse(ERR_UPLOAD_REJECTED, answer.HTTPResponse))
    }
    const changes = answer.ChangeFileInfo ?? {}
    if (changes.ID && !VALID_ID.test(changes.ID)) {
      const message = `validation error in FileInfoChanges: ID must contain only URL-safe characters (got: ${changes.ID})`
      throw refuse(request, internalError(message))
    }
    // null/absent keeps the client's metadata; {} drops it all (tusd semantics).
    if (changes.MetaData) changedMetadata.set(request, changes.MetaData)
    if (answer.HTTPResponse) overrides.set(request, {merge: answer.HTTPResponse})
    return changes.ID || randomId
  }

  async function onUploadCreate(request, upload) {
    return {metadata: changedMetadata.get(request) ?? upload.metadata}
  }

  async function onIncomingRequest(request, id) {
    httpRequest(request) // describe it while its connection is surely open
    if (request.method === 'DELETE') {
      // Throws FILE_NOT_FOUND (404) for an unknown upload, as the DELETE itself would.
      terminated.set(request, await store.getUpload(id))
    } else if (request.method === 'PATCH' || request.method === 'POST') {
      writers.set(id, {request, stopped: null})
      writing.set(request, id)
    }
  }

  // Only ids directly under the base path address uploads (tusd routes <base-path><id>);
  // the query string is never part of the id.
  function getFileIdFromRequest(request) {
    const {pathname} = new URL(request.url)
    if (!pathname.startsWith(basePath)) return undefined
    let id
    try {
      id = decodeURIComponent(pathname.slice(basePath.length))
    } catch {
      return undefined
    }
    return VALID_ID.test(id) ? id : undefined
  }

  function onPostReceive(body, upload) {
    const writer = writers.get(upload.id)
    if (!writer || !hooks.isEnabled('post-receive')) return
    hooks.notify('post-receive', fileInfo(upload), httpRequest(writer.request), (answer) => {
      if (!answer?.StopUpload || writers.get(upload.id) !== writer || writer.stopped) return
      log.info(`upload ${upload.id} stopped by post-receive hook`)
      writer.stopped = {upload, response: mergeResponse(ERR_UPLOAD_STOPPED, answer.HTTPResponse)}
      // Fails the body stream as a broken connection would: @tus/server stops writing and
      // answers, and `finish` terminates the upload and answers as tusd does instead.
      // Not destroy(): that would also close the socket the answer must go out on.
      body.emit('error', new Error('upload stopped by post-receive hook'))
    })
  }

  function attach(server) {
    server.on(EVENTS.POST_CREATE, (request, upload) => {
      if (hooks.isEnabled('post-create')) {
        hooks.notify('post-create', fileInfo(upload), httpRequest(request))
      }
    })
    server.on(EVENTS.POST_RECEIVE, onPostReceive)
    server.on(EVENTS.POST_FINISH, (request, _response, upload) => {
      if (hooks.isEnabled('post-finish')) {
        hooks.notify('post-finish', fileInfo(upload), httpRequest(request))
      }
    })
    server.on(EVENTS.POST_TERMINATE, (request) => {
      const upload = terminated.get(request)
      if (upload && hooks.isEnabled('post-terminate')) {
        hooks.notify('post-terminate', fileInfo(upload), httpRequest(request))
      }
    })
  }

  // tusd terminates an upload that a post-receive hook stopped, and says so with
  // post-terminate.
  async function terminateStopped(request, upload) {
    try {
      await store.remove(upload.id)
    } catch (error) {
      log.error(`terminating stopped upload ${upload.id} failed: ${error.message}`)
      return
    }
    if (hooks.isEnabled('post-terminate')) {
      hooks.notify('post-terminate', fileInfo(upload), httpRequest(request))
    }
  }

  // Called with every response @tus/server produced, before it is sent.
  async function finish(request, response) {
    const id = writing.get(request)
    const writer = writers.get(id)
    if (writer?.request === request) {
      writers.delete(id)
      if (writer.stopped) {
        await terminateStopped(request, writer.stopped.upload)
        return toWebResponse(writer.stopped.response, response.headers)
      }
    }
    const override = overrides.get(request)
    if (override?.replace) return toWebResponse(override.replace, response.headers)
    if (override?.merge && response.status === 201) {
      const created = {StatusCode: 201, Body: '', Header: {}}
      return toWebResponse(mergeResponse(created, override.merge), response.headers)
    }
    return response
  }

  return {
    options: {namingFunction, onUploadCreate, onIncomingRequest, getFileIdFromRequest},
    attach,
    finish,
  }
}
