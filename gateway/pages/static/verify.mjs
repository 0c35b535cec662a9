// The trace page checks itself, in the shopper's browser.
//
// It fetches the page's answer (the same URL as JSON) and checks, trusting nothing but
// the keys pinned in the page (the data-* attributes of #proof-status):
//   - the checkpoint's signature by the log's key (C2SP signed note, Ed25519), and the
//     witnesses' cosignatures when witnesses are pinned (c2sp.org/tlog-cosignature);
//   - every record's inclusion proof in that checkpoint's tree (RFC 9162);
//   - every record's payload against the digest its leaf commits to, and that what the
//     answer and the page say about the record is what was signed;
// then shows "Verified: ..." or "Could not verify: <what failed>" in #proof-status,
// whose data-state goes from "checking" to "verified" or "failed".
//
// Nothing here writes HTML (the page's Content-Security-Policy requires Trusted Types
// for every HTML sink): only text. Ed25519 and SHA-256 come from Web Crypto.
// The pure parts are exported for tests; the page part runs only in a browser.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const ED25519 = 0x01; // signature type of a log's (or any note signer's) key
const COSIGNATURE = 0x04; // signature type of a witness's cosignature/v1 key

export class Failure extends Error {
  // `code` names a message of the page (data-msg-<code>); `params` fill it in.
  constructor(code, params = {}) {
    super(`${code} ${JSON.stringify(params)}`);
    this.code = code;
    this.params = params;
  }
}

const malformed = (detail) => new Failure("data", { detail });

// --- bytes -------------------------------------------------------------------------------

export function b64decode(text) {
  if (typeof text !== "string") throw malformed("not base64");
  let raw;
  try {
    raw = atob(text);
  } catch {
    throw malformed("not base64");
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw malformed("base64 not in canonical form");
  return bytes;
}

export function b64encode(bytes) {
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

// --- signed notes (c2sp.org/signed-note) ---------------------------------------------------

const SIGNATURE_PREFIX = "\u2014 "; // em dash, space

function validName(name) {
  return name !== "" && !/[\s+]/u.test(name) && !/[\u0000-\u001f]/u.test(name);
}

export function parseNote(note) {
  if (typeof note !== "string") throw malformed("no checkpoint");
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw malformed("not a signed note");
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed("bad signature line");
      const [name, b64, ...rest] = line.slice(SIGNATURE_PREFIX.length).split(" ");
      if (rest.length || !validName(name)) throw malformed("bad signature line");
      const raw = b64decode(b64);
      if (raw.length <= 4) throw malformed("bad signature line");
      return { name, keyHash: raw.slice(0, 4), signature: raw.slice(4) };
    });
  return { text, signatures };
}

async function keyHash(name, type, publicKey) {
  return (await sha256(encoder.encode(`${name}\n`), Uint8Array.of(type), publicKey)).slice(0, 4);
}

// A verifier key "<name>+<key ID as 8 hex digits>+<base64(type || 32-byte public key)>".
export async function parseVerifierKey(vkey, type = ED25519) {
  // The name holds no "+"; base64 may.
  const [, name, hash, key] = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(String(vkey)) ?? [];
  if (!validName(name ?? "") || !/^[0-9a-f]{8}$/i.test(hash ?? "")) {
    throw malformed("bad verifier key");
  }
  const raw = b64decode(key);
  if (raw.length !== 33 || raw[0] !== type) throw malformed("bad verifier key");
  const publicKey = raw.slice(1);
  const id = await keyHash(name, type, publicKey);
  if (Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") !== hash.toLowerCase()) {
    throw malformed("verifier key hash does not match");
  }
  let cryptoKey;
  try {
    cryptoKey = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch {
    throw new Failure("crypto");
  }
  return { name, keyHash: id, cryptoKey };
}

async function ed25519(key, signature, message) {
  if (signature.length !== 64) return false;
  return crypto.subtle.verify({ name: "Ed25519" }, key.cryptoKey, signature, message);
}

// --- checkpoints (c2sp.org/tlog-checkpoint) -------------------------------------------------

export function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  const [origin, size, root] = lines;
  if (lines.length < 3 || !origin || !/^(0|[1-9][0-9]{0,19})$/.test(size ?? "")) {
    throw malformed("bad checkpoint");
  }
  const rootHash = b64decode(root);
  if (rootHash.length !== 32) throw malformed("bad checkpoint");
  return { origin, size: Number(size), root: rootHash };
}

// The checkpoint of `note` if `key` (the log's) signed it; every line claiming the key
// must verify, as c2sp.org/signed-note asks.
export async function openCheckpoint(note, key) {
  const { text, signatures } = parseNote(note);
  const message = encoder.encode(text);
  const own = signatures.filter((s) => s.name === key.name && equal(s.keyHash, key.keyHash));
  for (const line of own) {
    if (!(await ed25519(key, line.signature, message))) {
      throw new Failure("signature", { log: key.name });
    }
  }
  const checkpoint = parseCheckpoint(text);
  if (!own.length || checkpoint.origin !== key.name) {
    throw new Failure("signature", { log: key.name });
  }
  return checkpoint;
}

// How many of the pinned witnesses cosigned `note`, and the newest cosignature's time.
export async function cosignatures(note, witnesses) {
  const { text, signatures } = parseNote(note);
  const signed = new Set();
  let newest = 0;
  for (const line of signatures) {
    const witness = witnesses.find((w) => w.name === line.name && equal(w.keyHash, line.keyHash));
    if (!witness) continue;
    if (line.signature.length !== 72) throw new Failure("witness", { k: 0, quorum: 0 });
    const time = new DataView(line.signature.buffer, line.signature.byteOffset).getBigUint64(0);
    const message = encoder.encode(`cosignature/v1\ntime ${time}\n${text}`);
    if (!(await ed25519(witness, line.signature.slice(8), message))) {
      throw new Failure("witness", { k: signed.size, quorum: witnesses.length });
    }
    signed.add(witness.name);
    newest = Math.max(newest, Number(time));
  }
  return { count: signed.size, newest };
}

// --- Merkle trees (RFC 9162) -----------------------------------------------------------------

export const leafHash = (leaf) => sha256(Uint8Array.of(0), leaf);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

// RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, compared with `root`.
export async function verifyInclusion(hash, index, size, proof, root) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// --- leaves -------------------------------------------------------------------------------

// The MessagePack a leaf uses: arrays, unsigned integers, byte strings and nil.
export function unpack(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const take = (n) => {
    if (at + n > bytes.length) throw malformed("leaf is cut short");
    at += n;
    return at - n;
  };
  const uint = (n) => {
    const from = take(n);
    if (n === 8) {
      const big = view.getBigUint64(from);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed("number too large");
      return Number(big);
    }
    return n === 1 ? view.getUint8(from) : n === 2 ? view.getUint16(from) : view.getUint32(from);
  };
  const item = () => {
    const head = bytes[take(1)];
    if (head <= 0x7f) return head;
    if (head >= 0x90 && head <= 0x9f) return Array.from({ length: head & 0x0f }, item);
    const sized = { 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8 }[head];
    if (sized) return uint(sized);
    const binary = { 0xc4: 1, 0xc5: 2, 0xc6: 4 }[head];
    if (binary) {
      const length = uint(binary);
      return bytes.slice(take(length), at);
    }
    if (head === 0xc0) return null;
    throw malformed("leaf holds an unexpected MessagePack type");
  };
  const value = item();
  if (at !== bytes.length) throw malformed("leaf has trailing bytes");
  return value;
}

const isHash = (value) => value instanceof Uint8Array && value.length === 32;

// Each leaf version: how to read its fields, and how to check an event's content
// against them. Another version (salted field digests, say) is one more entry.
export const LEAF_VERSIONS = {
  // [1, index, prev_leaf_hash, record_time_us, identity, payload_hash, envelope_hash]
  1: {
    read(fields) {
      const [, index, prev, recordTime, identity, payloadHash, envelopeHash] = fields;
      const ok =
        fields.length === 7 &&
        Number.isSafeInteger(index) &&
        Number.isSafeInteger(recordTime) &&
        [prev, identity, payloadHash].every(isHash) &&
        (envelopeHash === null || isHash(envelopeHash));
      if (!ok) throw malformed("leaf fields have the wrong types");
      return { index, recordTime, payloadHash };
    },
    async contentMatches(leaf, payload) {
      return equal(await sha256(payload), leaf.payloadHash);
    },
  },
  // The same array; payload_hash is SHA-256 over the event's salted field digests,
  // sorted bytewise (docs/selective-disclosure.md). Records disclose fields, not payloads.
  2: {
    read(fields) {
      return LEAF_VERSIONS[1].read(fields);
    },
    async contentMatches() {
      return false; // a version-2 record is checked by its disclosures
    },
  },
};

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// A version-2 record's disclosed fields ({name: value}), each proven with its salt
// against the leaf together with the withheld digests; null if they do not add up.
export async function disclosedFields(event, leaf) {
  const fields = {};
  const digests = [];
  for (const item of event.disclosures ?? []) {
    if (!Array.isArray(item) || item.length !== 3) return null;
    const [saltText, name, text] = item;
    const salt = b64decode(saltText);
    if (salt.length !== 16 || typeof name !== "string" || typeof text !== "string") return null;
    if (Object.hasOwn(fields, name)) return null;
    const nameBytes = encoder.encode(name);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, nameBytes.length);
    digests.push(await sha256(salt, length, nameBytes, encoder.encode(text)));
    try {
      fields[name] = JSON.parse(text);
    } catch {
      return null;
    }
  }
  for (const digest of event.withheldDigests ?? []) digests.push(b64decode(digest));
  digests.sort(compareBytes);
  return equal(await sha256(...digests), leaf.payloadHash) ? fields : null;
}

export function readLeaf(bytes) {
  const fields = unpack(bytes);
  const version = Array.isArray(fields) ? LEAF_VERSIONS[fields[0]] : undefined;
  if (!version) throw malformed("unknown leaf version");
  return { ...version.read(fields), version };
}

// --- the answer -------------------------------------------------------------------------------

// A CBV value's short name, whatever spelling the sender used (traceledger/standards/cbv.py).
export function cbvShortName(value, web, legacy) {
  if (typeof value !== "string") return null;
  const uri = /^(?:[hH][tT][tT][pP][sS]?:\/\/(?:ref|ns)\.gs1\.org\/cbv\/|cbv:)([A-Za-z]+)-(.*)$/.exec(
    value,
  );
  if (uri && uri[1].toLowerCase() === web) return uri[2];
  const urn = /^[uU][rR][nN]:[eE][pP][cC][gG][lL][oO][bB][aA][lL]:[cC][bB][vV]:([A-Za-z]+):(.*)$/.exec(
    value,
  );
  if (urn && urn[1].toLowerCase() === legacy) return urn[2];
  return value;
}

const sameTime = (a, b) => Math.abs(Date.parse(a) - Date.parse(b)) < 1;

// Whether the answer's (and the page's) account of an event is what its payload says.
function sameEvent(stored, event) {
  return (
    stored.eventID === event.eventID &&
    stored.type === event.type &&
    cbvShortName(stored.bizStep, "bizstep", "bizstep") === (event.bizStep ?? null) &&
    cbvShortName(stored.disposition, "disp", "disp") === (event.disposition ?? null) &&
    (Number.isNaN(Date.parse(stored.eventTime)) || sameTime(stored.eventTime, event.eventTime))
  );
}

async function checkEvent(event, tree) {
  const where = { index: event.index };
  const leafBytes = b64decode(event.leaf);
  const leaf = readLeaf(leafBytes);
  const proof = (event.inclusionProof ?? []).map(b64decode);
  const included =
    leaf.index === event.index &&
    (await verifyInclusion(await leafHash(leafBytes), leaf.index, tree.size, proof, tree.root));
  if (!included) throw new Failure("proof", where);
  if (leaf.version === LEAF_VERSIONS[2]) {
    const fields = await disclosedFields(event, leaf);
    if (fields === null || !sameEvent(fields, event)) throw new Failure("payload", where);
    return { leaf, shown: true };
  }
  if (event.payload === null || event.payload === undefined) return { leaf, shown: false };
  const payload = b64decode(event.payload);
  if (!(await leaf.version.contentMatches(leaf, payload))) throw new Failure("payload", where);
  let stored;
  try {
    stored = JSON.parse(decoder.decode(payload));
  } catch {
    throw new Failure("payload", where);
  }
  if (!sameEvent(stored, event)) throw new Failure("payload", where);
  return { leaf, shown: true };
}

// Each log's checkpoint, verified with its pinned key: the current log's (the answer's
// top-level checkpoint, signed by the first pinned key) and each earlier shard's.
async function checkpoints(answer, keys) {
  const [current] = keys;
  const top = await openCheckpoint(answer.checkpoint, current);
  if (answer.treeSize !== top.size) throw new Failure("signature", { log: current.name });
  const trees = new Map([[top.origin, top]]);
  for (const log of answer.logs ?? []) {
    if (log.origin === top.origin) continue;
    const key = keys.find((k) => k.name === log.origin);
    if (!key) continue; // only a failure if an event of that log is shown
    const tree = await openCheckpoint(log.checkpoint, key);
    if (log.treeSize !== tree.size) throw new Failure("signature", { log: key.name });
    trees.set(tree.origin, tree);
  }
  return { top, trees };
}

// Check a whole answer against the pins; `shown` lists the page's records
// ({log, index, step, disposition, time}). Returns what was verified, or throws Failure.
export async function verifyAnswer(answer, pins, shown = []) {
  if (!answer || typeof answer !== "object" || !Array.isArray(answer.events)) {
    throw malformed("not a trace answer");
  }
  const keys = await Promise.all(pins.logKeys.map((k) => parseVerifierKey(k)));
  if (!keys.length) throw new Failure("key", { log: "?" });
  const { top, trees } = await checkpoints(answer, keys);
  let witnesses = { count: 0, newest: 0 };
  if (pins.witnessKeys.length) {
    const known = await Promise.all(pins.witnessKeys.map((k) => parseVerifierKey(k, COSIGNATURE)));
    witnesses = await cosignatures(answer.checkpoint, known);
    if (witnesses.count < pins.quorum) {
      throw new Failure("witness", { k: witnesses.count, quorum: pins.quorum });
    }
  }
  const byRecord = new Map();
  let withheld = 0;
  let newest = 0;
  for (const event of answer.events) {
    const log = event.log ?? top.origin;
    const tree = trees.get(log);
    if (!tree) throw new Failure("key", { log });
    const { leaf, shown: checked } = await checkEvent(event, tree);
    if (!checked) withheld += 1;
    newest = Math.max(newest, leaf.recordTime);
    byRecord.set(`${log} ${event.index}`, event);
  }
  for (const record of shown) {
    const event = byRecord.get(`${record.log || top.origin} ${record.index}`);
    if (!event) throw new Failure("missing", { index: record.index });
    const same =
      record.step === (event.bizStep ?? "") &&
      record.disposition === (event.disposition ?? "") &&
      (record.time === null || sameTime(record.time, event.eventTime));
    if (!same) throw new Failure("shown", { index: record.index });
  }
  return {
    records: answer.events.length,
    withheld,
    checkpoint: top,
    witnesses: witnesses.count,
    newestRecord: newest, // microseconds since the epoch
  };
}

// The time of the newest record the checkpoint covers (its last leaf), proven against
// it: how recent the checkpoint is. Null when the log does not serve it.
export async function checkpointTime(checkpoint, fetchJSON) {
  const last = checkpoint.size - 1;
  const entry = await fetchJSON(`/v1/entries/${last}`);
  const proof = await fetchJSON(`/v1/proof/inclusion?index=${last}&treeSize=${checkpoint.size}`);
  const leafBytes = b64decode(entry.leaf);
  const leaf = readLeaf(leafBytes);
  const hashes = proof.hashes.map(b64decode);
  const root = checkpoint.root;
  const ok = await verifyInclusion(await leafHash(leafBytes), last, checkpoint.size, hashes, root);
  if (leaf.index !== last || !ok) throw new Failure("proof", { index: last });
  return leaf.recordTime;
}

// --- the page -------------------------------------------------------------------------------

function fill(template, params) {
  return (template ?? "").replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

async function fetchJSON(url) {
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      signal: AbortSignal.timeout(30000),
    });
  } catch {
    throw new Failure("network");
  }
  if (!response.ok) throw new Failure("network");
  try {
    return await response.json();
  } catch {
    throw malformed("not JSON");
  }
}

function shownRecords() {
  return Array.from(document.querySelectorAll("li[data-index]"), (li) => ({
    log: li.dataset.log ?? "",
    index: Number(li.dataset.index),
    step: li.dataset.step ?? "",
    disposition: li.dataset.disposition ?? "",
    time: li.querySelector("time[datetime]")?.getAttribute("datetime") ?? null,
  }));
}

function words(status) {
  const lang = document.documentElement.lang || undefined;
  const format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return {
    date: (micros) => format.format(new Date(micros / 1000)),
    say: (name, params = {}) => fill(status.dataset[`msg${name[0].toUpperCase()}${name.slice(1)}`], params),
  };
}

function show(status, state, text) {
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = false;
  if (state === "failed") status.setAttribute("aria-live", "assertive");
}

async function verifyPage(status) {
  const { say, date } = words(status);
  show(status, "checking", say("checking"));
  const split = (value) => (value ?? "").split(" ").filter(Boolean);
  const pins = {
    logKeys: split(status.dataset.logKeys),
    witnessKeys: split(status.dataset.witnessKeys),
    quorum: Number(status.dataset.quorum || 0),
  };
  try {
    if (!globalThis.crypto?.subtle) throw new Failure("crypto");
    const answer = await fetchJSON(`${location.pathname}?format=json`);
    const result = await verifyAnswer(answer, pins, shownRecords());
    let when = result.newestRecord;
    try {
      when = await checkpointTime(result.checkpoint, fetchJSON);
    } catch (error) {
      if (error instanceof Failure && error.code === "proof") throw error;
    }
    const params = {
      n: result.records,
      date: date(when),
      log: result.checkpoint.origin,
      k: result.witnesses,
    };
    const message = !result.witnesses
      ? "verified"
      : result.witnesses === 1
        ? "verifiedWitness"
        : "verifiedWitnesses";
    show(status, "verified", say(message, params));
  } catch (error) {
    const failure = error instanceof Failure ? error : malformed(String(error?.message ?? error));
    show(status, "failed", say("failed", { reason: say(failure.code, failure.params) }));
  }
}

// The shopper's own time beside an event's, where their time zones differ: a page shows
// each event at its own place's time (data-offset, minutes east of UTC), and a shopper in
// Shanghai reading a New Zealand time should not have to work out the difference.
export function yourTime(iso, offsetMinutes, lang, timeZone) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime()) || !Number.isFinite(offsetMinutes)) return null;
  const options = { dateStyle: "medium", timeStyle: "short", timeZone };
  const zone = new Intl.DateTimeFormat("en", { timeZone, timeZoneName: "longOffset" })
    .formatToParts(at)
    .find((part) => part.type === "timeZoneName")?.value;
  const match = /GMT(?:([+-])(\d{2}):(\d{2}))?/.exec(zone ?? "");
  if (!match) return null;
  const mine = match[1] ? (match[1] === "-" ? -1 : 1) * (60 * +match[2] + +match[3]) : 0;
  if (mine === offsetMinutes) return null;
  return new Intl.DateTimeFormat(lang, options).format(at);
}

function addYourTimes() {
  // A nicety: whatever goes wrong here must not keep the proofs from being checked.
  try {
    addEachYourTime();
  } catch {
    // The page reads completely without it.
  }
}

function addEachYourTime() {
  const label = document.querySelector("[data-your-time]")?.dataset.yourTime;
  if (!label) return;
  const lang = document.documentElement.lang || undefined;
  for (const element of document.querySelectorAll("time[data-offset]")) {
    if (!element.dataset.offset) continue; // the event's zone is unknown
    const text = yourTime(element.dateTime, Number(element.dataset.offset), lang);
    if (!text) continue;
    const note = document.createElement("span");
    note.className = "yours";
    note.textContent = ` · ${fill(label, { time: text })}`;
    element.after(note);
  }
}

if (typeof document !== "undefined") {
  addYourTimes();
  const status = document.getElementById("proof-status");
  if (status) verifyPage(status);
}
