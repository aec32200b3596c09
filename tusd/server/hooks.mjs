// Client for tusd's HTTP hook protocol (tusd v2, pkg/hooks/http): POST {"Type", "Event"} as
// JSON to the configured URL; retry on network errors and 5xx answers; any other non-2xx
// answer, or a 2xx one that is not JSON, is a failed hook.

import {setTimeout as sleep} from 'node:timers/promises'

export class HookError extends Error {}

export function createHookClient(config, log) {
  const {url, enabled, retry, backoffMs, timeoutMs} = config
  // Non-blocking hooks still in flight; shutdown waits for them so a post-finish sent
  // just before SIGTERM is not lost.
  const pending = new Set()

  async function attempt(body) {
    const response = await fetch(url, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body,
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await response.text()
    return {status: response.status, type: response.headers.get('content-type'), text}
  }

  // Resolves to the parsed hook response; rejects with HookError when the hook failed.
  async function invoke(type, upload, httpRequest) {
    const body = JSON.stringify({Type: type, Event: {Upload: upload, HTTPRequest: httpRequest}})
    let failure
    for (let i = 1; i <= retry; i++) {
      if (i > 1) await sleep(backoffMs)
      let answer
      try {
        answer = await attempt(body)
      } catch (error) {
        failure = `hook endpoint unreachable: ${error.cause?.message ?? error.message}`
        continue
      }
      if (answer.status >= 500) {
        failure = `unexpected response code from hook endpoint (${answer.status}): ${answer.text}`
        continue
      }
      if (answer.status < 200 || answer.status >= 300) {
        throw new HookError(
          `unexpected response code from hook endpoint (${answer.status}): ${answer.text}`
        )
      }
      if (!/^application\/json\s*(;|$)/i.test(answer.type ?? '')) {
        throw new HookError(
          `expected hook response Content-Type to be application/json, got '${answer.type}'`
        )
      }
      try {
        return JSON.parse(answer.text || '{}') ?? {}
      } catch (error) {
        throw new HookError(`failed to parse hook response: ${error.message}`)
      }
    }
    throw new HookError(failure)
  }

  return {
    isEnabled: (type) => url !== '' && enabled.has(type),

    // Blocking hooks (pre-create): the caller decides from the response or the error.
    invoke,

    // Non-blocking hooks: like tusd, a failure is only logged. `then` receives the response.
    notify(type, upload, httpRequest, then) {
      const task = invoke(type, upload, httpRequest)
        .then(then)
        .catch((error) => log.error(`hook ${type} for upload ${upload.ID} failed: ${error.message}`))
        .finally(() => pending.delete(task))
      pending.add(task)
    },

    drain: () => Promise.allSettled([...pending]),
  }
}
