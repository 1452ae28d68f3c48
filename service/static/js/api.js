// Talking to the synnet REST API: GET requests, the synthesis upload, and turning every failure
// into one readable sentence (the API's own `detail`, never a stack trace).

export const API_KEY_HEADER = "X-API-Key";

/** A request that failed: `message` is meant for people; `status` and `code` for the page. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "network_error" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The sentence to show for a failed response: the API's `detail`, then its status and code. */
export function errorFromResponse(status, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: a proxy's or server's plain error page. Show its first words, not all of it.
  }
  if (body && typeof body.detail === "string") {
    let message = body.detail;
    if (Array.isArray(body.available) && body.available.length) {
      message += `. Available: ${body.available.join(", ")}`;
    }
    if (body.request_id) message += ` (request id ${body.request_id})`;
    return new ApiError(`${message} [${status} ${body.error}]`, { status, code: body.error });
  }
  const snippet = (text || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200);
  return new ApiError(`The service answered ${status}${snippet ? `: ${snippet}` : ""}`, {
    status,
    code: "http_error",
  });
}

function headersFor(apiKey) {
  return apiKey ? { [API_KEY_HEADER]: apiKey } : {};
}

/** GET `path`; a failed request or a non-2xx answer rejects with an ApiError. */
async function get(path, apiKey) {
  let response;
  try {
    response = await fetch(path, { headers: headersFor(apiKey) });
  } catch (error) {
    throw new ApiError(`Could not reach the service (${error.message}).`);
  }
  if (!response.ok) throw errorFromResponse(response.status, await response.text());
  return response;
}

/** GET a JSON resource; rejects with an ApiError. */
export async function getJSON(path, apiKey = "") {
  return (await get(path, apiKey)).json();
}

/** GET a binary resource (a card's figure) as a Blob; rejects with an ApiError. */
export async function getBlob(path, apiKey = "") {
  return (await get(path, apiKey)).blob();
}

/**
 * POST a multipart form with XMLHttpRequest, which (unlike fetch) reports upload progress.
 *
 * Returns `{ done, abort }`: `done` resolves to the parsed JSON body or rejects with an ApiError
 * (code "aborted" after `abort()`). `onProgress(phase, fraction)` gets ("upload", 0..1) while
 * the body is sent, then ("server", null) while the service works.
 */
export function postForm(url, form, { apiKey = "", onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(headersFor(apiKey))) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress("upload", event.loaded / event.total);
    };
    xhr.upload.onload = () => onProgress("server", null);
    xhr.onload = () => {
      if (xhr.status === 200) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError("The service sent an answer that is not JSON.", { status: 200, code: "bad_answer" }));
        }
      } else {
        reject(errorFromResponse(xhr.status, xhr.responseText));
      }
    };
    // A 413 answered before the upload ends may reach us as a network error: say what is likely.
    xhr.onerror = () =>
      reject(new ApiError("The upload was cut off or the service could not be reached (files too large?)."));
    xhr.onabort = () => reject(new ApiError("Cancelled.", { code: "aborted" }));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/** Bytes of a base64 string (the `data` of a synthesized target). */
export function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
