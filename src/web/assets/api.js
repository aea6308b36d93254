// The API client: JSON in and out, the CSRF header on every change, problem+json errors as
// ApiError with the server's `detail`, and the connection's state reported to the console.

export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail || ('HTTP ' + status));
    this.name = 'ApiError';
    this.status = status; // 0: the server could not be reached
    this.detail = detail || '';
    this.code = code || '';
  }
}

/** Whether an error is an abort (a newer request replaced this one): never shown. */
export function isAbort(e) {
  return !!e && (e.name === 'AbortError' || (e.cause && e.cause.name === 'AbortError'));
}

async function problemOf(response) {
  let detail = '';
  let code = '';
  try {
    const type = response.headers.get('content-type') || '';
    if (type.includes('json')) {
      const body = await response.json();
      detail = body.detail || body.title || '';
      code = body.code || '';
    } else {
      detail = (await response.text()).slice(0, 300);
    }
  } catch { /* no body */ }
  return new ApiError(response.status, detail || response.statusText, code);
}

export function createApi({ fetchImpl = (...a) => fetch(...a), csrf = () => null, onUnauthorized = () => {}, onUnreachable = () => {}, onReachable = () => {} } = {}) {
  async function request(method, path, { json, body, contentType, signal, quiet401 = false } = {}) {
    const headers = { accept: 'application/json' };
    const init = { method, headers, signal, credentials: 'same-origin', cache: 'no-store' };
    if (json !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      headers['content-type'] = contentType || 'application/octet-stream';
      init.body = body;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      const token = csrf();
      if (token) headers['x-csrf-token'] = token;
    }
    let response;
    try {
      response = await fetchImpl(path, init);
    } catch (e) {
      if (isAbort(e)) throw e;
      onUnreachable(e);
      throw new ApiError(0, '', 'unreachable');
    }
    onReachable();
    if (response.status === 401 && !quiet401) {
      const error = await problemOf(response);
      onUnauthorized(error);
      throw error;
    }
    if (!response.ok) throw await problemOf(response);
    if (response.status === 204) return null;
    const type = response.headers.get('content-type') || '';
    return type.includes('json') ? response.json() : response.text();
  }
  return {
    get: (path, opts) => request('GET', path, opts),
    put: (path, json, opts) => request('PUT', path, { ...opts, json }),
    post: (path, json, opts) => request('POST', path, { ...opts, json }),
    del: (path, opts) => request('DELETE', path, opts),
    upload: (path, body, opts) => request('POST', path, { ...opts, body, contentType: 'application/octet-stream' }),
    request,
  };
}
