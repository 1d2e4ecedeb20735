// polylens web page: search by text and/or image, browse results, inspect one item, or ask
// a question and read a cited answer as it streams.
// Plain ES2020, no dependencies. Everything the server sends is inserted as text, never HTML.
"use strict";

(() => {
  const PAGE_SIZE = 24;
  const MAX_K = 200; // the API's upper bound for k
  const THUMB_SIZE = 320;

  const params = new URLSearchParams(location.search);
  const TOKEN = params.get("token") || "";

  const $ = (sel) => document.querySelector(sel);
  const els = {
    form: $("#search-form"),
    q: $("#q"),
    searchHint: $("#search-hint"),
    searchBtn: $("#search-btn"),
    searchBtnText: $("#search-btn .search-btn-text"),
    qLabel: $('label[for="q"]'),
    skipLink: $(".skip-link"),
    modes: Array.from(document.querySelectorAll('input[name="mode"]')),
    fileInput: $("#file-input"),
    fileBtn: $("#file-btn"),
    imageOff: $("#image-off"),
    imageOffText: $("#image-off-text"),
    dropzone: $("#dropzone"),
    dropzoneTitle: $("#dropzone-title"),
    dropzoneText: $("#dropzone-text"),
    overlayText: $("#drop-overlay-text"),
    chip: $("#image-chip"),
    chipPreview: $("#image-chip-preview"),
    chipName: $("#image-chip-name"),
    chipRemove: $("#image-remove"),
    kinds: Array.from(document.querySelectorAll('input[name="kind"]')),
    videoPill: $("#kind-video-pill"),
    showScores: $("#show-scores"),
    error: $("#error"),
    resultInfo: $("#result-info"),
    indexInfo: $("#index-info"),
    intro: $("#intro"),
    resultsTitle: $("#results-title"),
    warnings: $("#warnings"),
    results: $("#results"),
    more: $("#more-btn"),
    overlay: $("#drop-overlay"),
    detail: $("#detail"),
    detailTitle: $("#detail-title"),
    detailPosition: $("#detail-position"),
    detailPrev: $("#detail-prev"),
    detailNext: $("#detail-next"),
    detailClose: $("#detail-close"),
    detailFigure: $("#detail-figure"),
    detailImageLink: $("#detail-image-link"),
    detailImage: $("#detail-image"),
    detailVideo: $("#detail-video"),
    detailHeat: $("#detail-heat"),
    detailHeatBar: $("#detail-heat-bar"),
    detailHeatToggle: $("#detail-heat-toggle"),
    detailHeatCaption: $("#detail-heat-caption"),
    detailKind: $("#detail-kind"),
    detailPage: $("#detail-page"),
    detailPageLabel: $("#detail-page-label"),
    detailTime: $("#detail-time"),
    detailTimeLabel: $("#detail-time-label"),
    detailPath: $("#detail-path"),
    detailOther: $("#detail-other"),
    detailOtherLabel: $("#detail-other-label"),
    detailSize: $("#detail-size"),
    detailSizeLabel: $("#detail-size-label"),
    detailScore: $("#detail-score"),
    detailText: $("#detail-text"),
    detailTextSource: $("#detail-text-source"),
    moreLikeThis: $("#more-like-this"),
    copyPath: $("#copy-path"),
    dupes: $("#detail-dupes"),
    dupesCount: $("#detail-dupes-count"),
    dupesList: $("#detail-dupes-list"),
    ask: $("#ask"),
    askIntro: $("#ask-intro"),
    askVerdict: $("#ask-verdict"),
    askVerdictText: $("#ask-verdict-text"),
    askRounds: $("#ask-rounds"),
    askAnswer: $("#ask-answer"),
    askModel: $("#ask-model"),
    askStop: $("#ask-stop"),
    askNotes: $("#ask-notes"),
    askEvidenceSection: $(".ask-evidence"),
    askEvidenceTitle: $("#ask-evidence-title"),
    askEvidence: $("#ask-evidence"),
  };

  const state = {
    // what the grid shows: {mode: "text"|"image"|"similar", q, kinds, file, itemId, label}
    query: null,
    hits: [],
    noGoodMatch: false, // the first hits of the current search are all weak
    weakDivider: false, // the current results show the divider above weak ones
    ids: new Set(),
    exhausted: false, // no "More results" to ask for
    hasMore: false, // the server said more results exist beyond those shown
    warnings: new Set(), // the notes of the current search, each shown once
    imageSearch: { available: true, reason: null }, // from /api/status
    controller: null, // AbortController of the request in flight
    image: null, // {file, url} chosen for the next search
    detailIndex: -1, // the result the detail view was opened from (or last showed)
    detailHit: null, // the item the detail view shows: that result, or one of its near-duplicates
    detailSeq: 0,
    detailQuery: "", // the words of the text search the detail view's item came from, if any
    opener: null, // the element focused before the detail view opened
    pageVectors: false, // from /api/status: the index keeps late-interaction page vectors
    heat: null, // the heat map drawn over the detail view's picture: {rows, cols, values, ...}
    heatController: null, // AbortController of the heat map on its way
    heatShown: true, // "Show matched areas": on until someone turns it off
    heatCache: new Map(), // "query\nid" -> heat map, for going back and forth among results
    video: null, // the segment the detail view plays: {id, name, start, end, positioned, pausedAtEnd, lastTime}
    mode: "search", // what the box does: "search" or "ask"
    statusByMode: {}, // the status row of the mode not shown, to put back when it is
    ask: null, // the answer shown: {question, refs (n -> reference), text, sentences, done, ...}
    askController: null, // AbortController of the answer streaming in
  };

  // ---------------------------------------------------------------- API helpers

  class ApiError extends Error {
    constructor(message, status = 0, name = "") {
      super(message);
      this.status = status;
      this.errorName = name;
    }
  }

  function withToken(url) {
    if (!TOKEN) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
  }

  function itemUrl(id, suffix = "") {
    return "/api/items/" + encodeURIComponent(id) + suffix;
  }

  function thumbUrl(id) {
    return withToken(itemUrl(id, "/thumbnail?size=" + THUMB_SIZE));
  }

  function imageUrl(id) {
    return withToken(itemUrl(id, "/image"));
  }

  // a video segment's file (a <video> sends no header: the token goes in the address), with
  // the segment as a media fragment (#t=start,end) for players that read one
  function videoUrl(id, start, end) {
    const url = withToken(itemUrl(id, "/video"));
    if (start === null) return url;
    const t = (n) => String(Math.round(n * 1000) / 1000);
    return url + "#t=" + t(start) + (end !== null && end > start ? "," + t(end) : "");
  }

  function describeDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      // FastAPI's validation errors: [{loc, msg, ...}]
      return detail
        .map((d) => (d && d.msg ? (d.loc ? d.loc.filter((p) => p !== "body" && p !== "query").join(".") + ": " : "") + d.msg : String(d)))
        .join("; ");
    }
    if (detail && typeof detail === "object") return JSON.stringify(detail);
    return "";
  }

  // a request with the access token (when the page has one); only the network failing throws
  async function send(path, { method = "GET", body = null, signal = undefined, accept = "application/json", type = "" } = {}) {
    const headers = { Accept: accept };
    if (type) headers["Content-Type"] = type;
    if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
    try {
      return await fetch(path, { method, body, headers, signal, credentials: "same-origin" });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("Could not reach the polylens server. Check that it is still running, then try again.");
    }
  }

  async function readJson(res) {
    const type = res.headers.get("content-type") || "";
    if (!type.includes("json")) return null;
    try {
      return await res.json();
    } catch (_) {
      return null;
    }
  }

  // the error a failed response stands for, in words (its JSON "detail" when it has one)
  function failure(res, data) {
    let message = data ? describeDetail(data.detail) : "";
    if (!message) message = `The server answered ${res.status} ${res.statusText || ""}`.trim() + ".";
    if (res.status === 401) {
      message = TOKEN
        ? `The access token in this page's address was not accepted (${message}). Open the URL that "polylens serve" printed.`
        : `This server needs an access token (${message}). Open the URL that "polylens serve" printed, which ends in ?token=….`;
    }
    return new ApiError(message, res.status, data && data.error ? String(data.error) : "");
  }

  async function api(path, options = {}) {
    const res = await send(path, options);
    const data = await readJson(res);
    if (!res.ok) throw failure(res, data);
    if (data === null) throw new ApiError("The server sent an answer this page cannot read.", res.status);
    return data;
  }

  // ---------------------------------------------------------------- small helpers

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svgIcon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS(ns, "use");
    use.setAttribute("href", "#" + name);
    svg.append(use);
    return svg;
  }

  function baseName(path) {
    if (!path) return "";
    const parts = String(path).split(/[\\/]/);
    return parts[parts.length - 1] || String(path);
  }

  const KIND_LABEL = { image: "Image", page: "PDF page", text: "Text", video: "Video" };
  const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;
  // "24+ results" while more exist beyond those loaded, else the exact number
  const countOf = (n, more, one, many) => `${n.toLocaleString()}${more ? "+" : ""} ${n === 1 && !more ? one : many}`;

  // seconds as 01:23 (or 1:02:03 past an hour)
  function formatTime(secs) {
    const total = Math.max(0, Math.floor(secs));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  }

  // a number of seconds from the server, or null (other kinds send null)
  const seconds = (value) => (typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : null);

  // a video segment's time range, "01:23–01:41"; "" when the hit has none
  function timeRange(hit) {
    const start = seconds(hit && hit.start);
    if (start === null) return "";
    const end = seconds(hit.end);
    return end !== null && end > start ? `${formatTime(start)}–${formatTime(end)}` : formatTime(start);
  }

  function hitLabel(hit) {
    const name = baseName(hit.path);
    if (hit.kind === "page" && hit.page) return `${name}, page ${hit.page}`;
    if (hit.kind === "video") return `${name}, video${timeRange(hit) ? " " + timeRange(hit) : ""}`;
    if (hit.kind === "text") return `${name}, text${hit.chunk !== null && hit.chunk !== undefined ? " passage " + (hit.chunk + 1) : ""}`;
    return `${name}, image`;
  }

  function formatSources(sources) {
    if (!sources) return "";
    return Object.entries(sources)
      .sort((a, b) => a[1] - b[1])
      .map(([name, rank]) => `${name} #${rank}`)
      .join(" · ");
  }

  function formatScore(score) {
    return typeof score === "number" && Number.isFinite(score) ? score.toFixed(4) : "—";
  }

  // the hit's confidence as a percentage (what a person can read), else its fused score
  function formatConfidence(hit) {
    const c = hit.confidence;
    return typeof c === "number" && Number.isFinite(c) ? `${Math.round(100 * c)}%` : formatScore(hit.score);
  }

  function showError(message) {
    els.error.textContent = message || "";
  }

  function clearError() {
    els.error.textContent = "";
  }

  function selectedKinds() {
    return els.kinds.filter((k) => k.checked).map((k) => k.value);
  }

  function kindsForQuery(kinds) {
    // every kind selected = no filter (the API's default: everything)
    return kinds.length === els.kinds.length ? [] : kinds;
  }

  function setBusy(busy) {
    els.results.setAttribute("aria-busy", busy ? "true" : "false");
    els.results.dataset.state = busy ? "loading" : "done";
    els.more.disabled = busy;
    document.body.classList.toggle("is-busy", busy);
  }

  // ---------------------------------------------------------------- index status

  async function loadStatus() {
    try {
      const status = await api("/api/status");
      const items = status.items || {};
      const total = Object.values(items).reduce((a, b) => a + (Number(b) || 0), 0);
      const files = Number(status.files) || 0;
      els.indexInfo.textContent = `Index: ${plural(files, "file", "files")}, ${plural(total, "item", "items")}`;
      const parts = [];
      if (items.image) parts.push(plural(items.image, "image", "images"));
      if (items.page) parts.push(plural(items.page, "PDF page", "PDF pages"));
      if (items.text) parts.push(plural(items.text, "text passage", "text passages"));
      if (items.video) parts.push(plural(items.video, "video segment", "video segments"));
      els.indexInfo.title = parts.join(", ") + (status.path ? ` — ${status.path}` : "");
      for (const badge of document.querySelectorAll(".count[data-count]")) {
        const n = items[badge.dataset.count];
        badge.textContent = typeof n === "number" ? n.toLocaleString() : "";
      }
      // the Videos filter shows where the index holds videos (or where it is turned off)
      const videoBox = els.videoPill && els.videoPill.querySelector("input");
      if (videoBox) els.videoPill.hidden = !(Number(items.video) > 0) && videoBox.checked;
      if (files === 0) {
        els.resultInfo.textContent = "The index is empty: run “polylens index FOLDER” first.";
      }
      // the heat maps of pages need page vectors (older servers list no representations)
      const reps = Array.isArray(status.representations) ? status.representations : [];
      state.pageVectors = reps.some((r) => r && r.name === "late" && r.available === true);
      // older servers do not send image_search: image search is then taken as available
      const imageSearch = status.image_search;
      if (imageSearch && typeof imageSearch === "object" && imageSearch.available === false) {
        setImageSearch(false, imageSearch.reason ? String(imageSearch.reason) : null);
      } else {
        setImageSearch(true, null);
      }
    } catch (err) {
      showError(err.message);
    }
  }

  // "the reason" -> "The reason." (the server's reasons are lower-case clauses)
  const sentence = (text) => {
    const s = String(text).trim();
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?…]$/.test(s) ? "" : ".");
  };

  function imageOffMessage() {
    const reason = state.imageSearch.reason;
    return reason ? sentence(`Search by image is unavailable: ${reason}`) : "Search by image is unavailable on this server.";
  }

  const DROPZONE = { title: els.dropzoneTitle.textContent, text: els.dropzoneText.textContent };
  const OVERLAY_TEXT = els.overlayText.textContent;
  const FILE_BTN_TITLE = els.fileBtn.title;
  const SEARCH_HINT = els.searchHint.textContent;

  // turn the Image control (button, intro drop zone, drop and paste) on or off
  function setImageSearch(available, reason) {
    state.imageSearch = { available, reason };
    const message = imageOffMessage();
    els.fileInput.disabled = !available;
    for (const label of [els.fileBtn, els.dropzone]) {
      if (available) label.removeAttribute("aria-disabled");
      else label.setAttribute("aria-disabled", "true");
    }
    els.fileBtn.title = available ? FILE_BTN_TITLE : message;
    els.dropzone.title = available ? "" : message;
    if (!els.dropzone.title) els.dropzone.removeAttribute("title");
    els.imageOffText.textContent = available ? "" : message;
    els.imageOff.hidden = available;
    if (available) els.fileInput.removeAttribute("aria-describedby");
    else els.fileInput.setAttribute("aria-describedby", "image-off");
    els.dropzoneTitle.textContent = available ? DROPZONE.title : "Search by picture is unavailable";
    // the reason is written under the search box already
    els.dropzoneText.textContent = available ? DROPZONE.text : "Search by words above instead.";
    els.searchHint.textContent = available ? SEARCH_HINT : SEARCH_HINT.replace(/ You can also drop or paste an image[^.]*\./, "");
    els.overlayText.textContent = available ? OVERLAY_TEXT : message;
    if (!available && state.image) clearImage();
  }

  // ---------------------------------------------------------------- searching

  function currentDescription(query) {
    if (query.mode === "similar") return `like ${query.label}`;
    if (query.mode === "image") return query.q ? `${query.file.name} + “${query.q}”` : query.file.name;
    return `“${query.q}”`;
  }

  function runFromForm() {
    const q = els.q.value.trim();
    if (state.mode === "ask") {
      if (q) runAsk(q);
      else {
        clearError();
        els.resultInfo.textContent = "Type a question to ask.";
        els.q.focus();
      }
      return;
    }
    const kinds = selectedKinds();
    if (!kinds.length) {
      showError("Choose at least one kind of result (images, PDF pages, text or videos) to search.");
      return;
    }
    if (state.image) {
      startQuery({ mode: "image", q, kinds, file: state.image.file });
    } else if (q) {
      startQuery({ mode: "text", q, kinds });
    } else {
      clearError();
      els.resultInfo.textContent = "Type something to search for, or add an image.";
      els.q.focus();
    }
  }

  function startQuery(query) {
    clearError();
    state.query = query;
    state.hits = [];
    state.ids = new Set();
    state.exhausted = false;
    state.hasMore = false;
    state.heatCache.clear(); // a new search may follow a new index run
    clearWarnings();
    rememberInUrl(query);
    return fetchPage(true);
  }

  async function fetchPage(fresh) {
    const query = state.query;
    if (!query) return;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    els.resultInfo.textContent = fresh ? "Searching…" : "Loading more…";
    const shown = state.hits.length;
    const kinds = kindsForQuery(query.kinds || []);
    try {
      let data;
      if (query.mode === "text") {
        const sp = new URLSearchParams({ q: query.q, k: String(PAGE_SIZE), offset: String(shown) });
        for (const k of kinds) sp.append("kind", k);
        data = await api("/api/search?" + sp.toString(), { signal: controller.signal });
      } else if (query.mode === "image") {
        const form = new FormData();
        form.append("file", query.file, query.file.name || "image");
        if (query.q) form.append("q", query.q);
        form.append("k", String(PAGE_SIZE));
        form.append("offset", String(shown));
        for (const k of kinds) form.append("kind", k);
        data = await api("/api/search/image", { method: "POST", body: form, signal: controller.signal });
      } else {
        // "similar" has no offset: ask for more each time and keep the new ones
        const sp = new URLSearchParams({ k: String(Math.min(MAX_K, shown + PAGE_SIZE)) });
        for (const k of kinds) sp.append("kind", k);
        data = await api(itemUrl(query.itemId, "/similar?") + sp.toString(), { signal: controller.signal });
      }
      if (controller !== state.controller) return; // a newer request took over
      const hits = Array.isArray(data.hits) ? data.hits : [];
      const fresh_hits = hits.filter((h) => h && h.id && !state.ids.has(h.id));
      const paged = query.mode !== "similar";
      const requested = paged ? PAGE_SIZE : Math.min(MAX_K, shown + PAGE_SIZE);
      // older servers do not send has_more: a full page then means there may be more
      const hasMore = typeof data.has_more === "boolean" ? data.has_more : hits.length >= requested;
      state.hasMore = hasMore;
      state.exhausted = !hasMore || fresh_hits.length === 0 || (!paged && requested >= MAX_K);
      addWarnings(data.warnings);
      if (fresh) state.noGoodMatch = data.no_good_match === true;
      render(fresh_hits, fresh);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (controller !== state.controller) return;
      showError(err.message || String(err));
      els.resultInfo.textContent = fresh ? "The search did not complete." : "Could not load more results.";
      if (fresh) clearResults();
    } finally {
      if (controller === state.controller) {
        state.controller = null;
        setBusy(false);
      }
    }
  }

  function clearResults() {
    els.results.replaceChildren();
    els.more.hidden = true;
    els.resultsTitle.hidden = true;
  }

  // notes the server sends with results (e.g. a part of the query it could not use)
  function addWarnings(warnings) {
    if (!Array.isArray(warnings)) return;
    for (const w of warnings) {
      const text = typeof w === "string" ? w.trim() : "";
      if (!text || state.warnings.has(text)) continue;
      state.warnings.add(text);
      els.warnings.append(el("li", { className: "warning" }, svgIcon("i-info"), el("span", { text: sentence(text) })));
    }
  }

  function clearWarnings() {
    state.warnings = new Set();
    els.warnings.replaceChildren();
  }

  // text cards: as many whole lines of the snippet as fit in the square, the last one ending
  // in "…" (a fixed line count would be cut through a line where the square is smaller)
  let snippetLines = 0;
  function fitSnippets() {
    const box = els.results.querySelector(".card-visual.card-text");
    const snippet = box && box.querySelector(".snippet");
    if (!snippet) return;
    const boxStyle = getComputedStyle(box);
    const style = getComputedStyle(snippet);
    let lineHeight = parseFloat(style.lineHeight);
    if (!(lineHeight > 0)) lineHeight = 1.45 * parseFloat(style.fontSize);
    const room = box.clientHeight - parseFloat(boxStyle.paddingTop) - parseFloat(boxStyle.paddingBottom);
    if (!(lineHeight > 0) || !(room > 0)) return;
    const lines = Math.max(1, Math.floor(room / lineHeight + 0.001));
    if (lines === snippetLines) return;
    snippetLines = lines;
    els.results.style.setProperty("--snippet-lines", String(lines));
  }

  function render(newHits, fresh) {
    const query = state.query;
    const start = state.hits.length;
    if (fresh) {
      els.results.replaceChildren();
      state.weakDivider = false;
    }
    const frag = document.createDocumentFragment();
    newHits.forEach((hit, i) => {
      // the first weak result after a good one goes under a divider (once a search;
      // every weak one is dimmed anyway)
      if (hit.weak && !state.weakDivider && state.hits.some((h) => !h.weak)) {
        state.weakDivider = true;
        frag.append(el("li", { className: "weak-divider", role: "presentation", text: "Weaker matches" }));
      }
      state.hits.push(hit);
      state.ids.add(hit.id);
      frag.append(makeCard(hit, start + i));
    });
    els.results.append(frag);
    els.intro.hidden = true;

    // one heading says what is shown and how many: "24+" while the server has more
    const total = state.hits.length;
    const what = currentDescription(query);
    const more = state.hasMore && total > 0;
    els.resultsTitle.hidden = false;
    if (total === 0) {
      els.resultsTitle.textContent = query.mode === "similar" ? `No other items look like ${query.label}` : `No matches for ${what}`;
      els.resultInfo.textContent = query.mode === "similar" ? "" : "Try other words or more kinds.";
    } else if (state.noGoodMatch && query.mode !== "similar") {
      els.resultsTitle.textContent = `No good match for ${what} — closest results`;
      els.resultInfo.textContent = !fresh && newHits.length === 0 ? "No more results." : "";
    } else {
      els.resultsTitle.textContent =
        query.mode === "similar"
          ? `${countOf(total, more, "item", "items")} like ${query.label}`
          : `${countOf(total, more, "result", "results")} for ${what}`;
      els.resultInfo.textContent = !fresh && newHits.length === 0 ? "No more results." : "";
    }
    els.resultsTitle.dataset.count = String(total);
    els.resultsTitle.dataset.more = more ? "true" : "false";
    els.resultsTitle.dataset.noGoodMatch = state.noGoodMatch && total > 0 ? "true" : "false";
    els.more.hidden = state.exhausted || total === 0;
    fitSnippets();
    els.results.dataset.generation = String(Number(els.results.dataset.generation || "0") + 1);
    els.results.dataset.mode = query.mode;
    els.results.dataset.count = String(total);
    if (!fresh && newHits.length) {
      const first = els.results.querySelector(`.card[data-index="${start}"]`);
      if (first) first.focus({ preventScroll: false });
    }
  }

  function makeCard(hit, index) {
    const name = baseName(hit.path);
    const card = el("button", {
      type: "button",
      className: `card card-${hit.kind}` + (hit.weak ? " card-weak" : ""),
      "aria-label": hitLabel(hit),
      title: hit.path + ((hit.other_paths || []).length ? ` (+${hit.other_paths.length} more)` : ""),
      dataset: { index: String(index), id: hit.id, path: hit.path, kind: hit.kind },
    });

    let visual;
    if (hit.kind === "text") {
      visual = el("span", { className: "card-visual card-text" }, el("span", { className: "snippet", text: hit.snippet || "(no text preview)" }));
    } else {
      const img = el("img", {
        src: thumbUrl(hit.id),
        alt: name,
        loading: "lazy",
        decoding: "async",
        draggable: "false",
      });
      img.addEventListener(
        "error",
        () => {
          const fallback = el("span", { className: "thumb-missing", text: "No preview" });
          img.replaceWith(fallback);
        },
        { once: true }
      );
      visual = el("span", { className: "card-visual" }, img);
    }
    if (hit.kind === "page" && hit.page) visual.append(el("span", { className: "badge badge-page", text: `p. ${hit.page}` }));
    const range = hit.kind === "video" ? timeRange(hit) : "";
    if (hit.kind === "video") {
      visual.append(el("span", { className: "play-mark", "aria-hidden": "true" }, svgIcon("i-play")));
      if (range) visual.append(el("span", { className: "badge badge-time", text: range }));
    }

    const meta = el(
      "span",
      { className: "card-meta" },
      range
        ? el(
            "span",
            { className: "card-name card-name-video" },
            el("span", { className: "card-file", text: name }),
            el("span", { className: "card-at", text: ` @ ${range}` })
          )
        : el("span", { className: "card-name", text: name }),
      el("span", {
        className: "card-sub muted",
        text:
          hit.kind === "page"
            ? `PDF page ${hit.page ?? ""}`.trim()
            : hit.kind === "text"
            ? hit.chunk !== null && hit.chunk !== undefined
              ? `Text · part ${hit.chunk + 1}`
              : "Text"
            : KIND_LABEL[hit.kind] || "Image",
      }),
      el(
        "span",
        { className: "card-score score-only" },
        el("span", { className: "score-value", text: formatConfidence(hit) }),
        el("span", { className: "score-sources", text: formatSources(hit.sources) })
      )
    );
    card.append(visual, meta);
    return el("li", { className: "result" }, card);
  }

  // remember text searches in the address bar (keeping the token) so reload and links work;
  // in Ask mode the mode and the question (a reload fills the box but asks nothing)
  function rememberInUrl(query) {
    const sp = new URLSearchParams();
    if (TOKEN) sp.set("token", TOKEN);
    if (state.mode === "ask") {
      sp.set("mode", "ask");
      if (query && query.mode === "ask" && query.q) sp.set("q", query.q);
    } else if (query && query.mode === "text") {
      sp.set("q", query.q);
      for (const k of kindsForQuery(query.kinds || [])) sp.append("kind", k);
    }
    const url = location.pathname + (sp.toString() ? "?" + sp.toString() : "");
    try {
      history.replaceState(null, "", url);
    } catch (_) {
      /* file:// or sandboxed: not important */
    }
  }

  // ---------------------------------------------------------------- modes

  const SEARCH_UI = { label: els.qLabel.textContent, placeholder: els.q.placeholder, button: "Search", enter: "search", hint: "search-hint" };
  const ASK_UI = { label: "Ask a question about your files", placeholder: "Ask a question about your files…", button: "Ask", enter: "send", hint: "ask-hint" };

  function statusSnapshot() {
    const t = els.resultsTitle;
    return { title: t.textContent, hidden: t.hidden, data: { ...t.dataset }, info: els.resultInfo.textContent };
  }

  function restoreStatus(snapshot) {
    const s = snapshot || { title: "", hidden: true, data: {}, info: "" };
    const t = els.resultsTitle;
    t.textContent = s.title;
    t.hidden = s.hidden;
    for (const key of Object.keys(t.dataset)) delete t.dataset[key];
    Object.assign(t.dataset, s.data);
    els.resultInfo.textContent = s.info;
  }

  // Search (the results grid) or Ask (a cited answer): the box, the button and what shows below
  function setMode(mode, { remember = true } = {}) {
    mode = mode === "ask" ? "ask" : "search";
    for (const radio of els.modes) radio.checked = radio.value === mode;
    if (mode === state.mode) return;
    if (state.mode === "ask") stopAsk(); // an answer nobody sees does not keep streaming
    state.statusByMode[state.mode] = statusSnapshot();
    state.mode = mode;
    const ask = mode === "ask";
    const ui = ask ? ASK_UI : SEARCH_UI;
    document.body.classList.toggle("mode-ask", ask);
    els.ask.hidden = !ask;
    els.qLabel.textContent = ui.label;
    els.q.placeholder = ui.placeholder;
    els.q.setAttribute("enterkeyhint", ui.enter);
    els.q.setAttribute("aria-describedby", ui.hint);
    els.searchBtn.setAttribute("aria-label", ui.button);
    els.searchBtnText.textContent = ui.button;
    els.skipLink.href = ask ? "#ask" : "#results";
    els.skipLink.textContent = ask ? "Skip to the answer" : "Skip to results";
    clearError();
    restoreStatus(state.statusByMode[mode]);
    if (remember) rememberInUrl(ask ? (state.ask ? { mode: "ask", q: state.ask.question } : null) : state.query);
  }

  // ---------------------------------------------------------------- asking

  // a citation marker as the server reads it: [2], [1, 3], [2-4] ([1][3] is two markers)
  const MARKER = /\[\s*(\d{1,4}(?:\s*(?:[,;]|[-\u2013])\s*\d{1,4})*)\s*\]/g;
  // the start of a marker not finished yet, at the end of a streaming answer ("… EUR [1")
  const PENDING_MARKER = /\[\s*(?:\d{1,4}(?:\s*(?:[,;]|[-\u2013])\s*(?:\d{1,4})?)*\s*)?$/;
  const MAX_RANGE = 50; // as the server: [1-999] cites nothing

  function citedNumbers(group) {
    const out = [];
    for (const part of group.match(/\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?/g) || []) {
      const ends = part.split(/\s*[-\u2013]\s*/).map(Number);
      if (ends.length === 1) out.push(ends[0]);
      else if (ends[0] <= ends[1] && ends[1] - ends[0] < MAX_RANGE) for (let n = ends[0]; n <= ends[1]; n++) out.push(n);
      else out.push(0); // no evidence has that number
    }
    return out;
  }

  // the answer's text as runs of text and citation markers, with their offsets
  function tokenize(text) {
    const tokens = [];
    let last = 0;
    for (const m of text.matchAll(MARKER)) {
      if (m.index > last) tokens.push({ type: "text", start: last, end: m.index });
      last = m.index + m[0].length;
      tokens.push({ type: "marker", start: m.index, end: last, raw: m[0], numbers: citedNumbers(m[1]) });
    }
    if (last < text.length) tokens.push({ type: "text", start: last, end: text.length });
    return tokens;
  }

  // where each of the server's sentences lies in the text: a sentence is its text with the
  // markers taken out and the spaces tidied, so it is found by its other characters, in
  // order; the markers right after it are its own
  function locateSentences(text, tokens, sentences) {
    const chars = [];
    const at = [];
    for (const t of tokens) {
      if (t.type !== "text") continue;
      for (let i = t.start; i < t.end; i++) {
        if (!/\s/.test(text[i])) {
          chars.push(text[i]);
          at.push(i);
        }
      }
    }
    const flat = chars.join("");
    const spans = [];
    let cursor = 0;
    for (const sentence of sentences) {
      if (!sentence || typeof sentence.text !== "string") continue;
      const key = sentence.text.replace(/\s+/g, "");
      const found = key ? flat.indexOf(key, cursor) : -1;
      if (found < 0) continue;
      cursor = found + key.length;
      let end = at[cursor - 1] + 1;
      for (const t of tokens) {
        if (t.end <= end) continue;
        if (t.type === "marker") end = t.end;
        else if (!/^\s*$/.test(text.slice(t.start, t.end))) break;
      }
      spans.push({ start: at[found], end, sentence });
    }
    return spans;
  }

  function refLabel(ref) {
    const confidence = formatPercent(ref.confidence);
    return hitLabel(ref) + (confidence ? `, ${confidence} confidence` : "");
  }

  function formatPercent(c) {
    return typeof c === "number" && Number.isFinite(c) ? `${Math.round(100 * c)}%` : "";
  }

  function citeNode(n, ask) {
    const ref = ask.refs.get(n);
    if (ref && !ask.noGoodMatch) {
      return el("a", {
        className: "cite",
        href: "#ask-ev-" + n,
        text: String(n),
        title: refLabel(ref),
        "aria-label": `Evidence ${n}: ${refLabel(ref)}`,
        dataset: { n: String(n) },
      });
    }
    // a number the model was not given: shown for what it is, never a link
    return el(
      "s",
      { className: "cite cite-bad", title: `Not a citation: there is no evidence ${n || "with that number"}`, dataset: { n: String(n) } },
      el("span", { className: "visually-hidden", text: "invalid citation " }),
      n ? String(n) : "?"
    );
  }

  // the answer from its text so far: every run of text a text node, every marker its
  // numbers (links to the evidence that exists), sentences without a citation marked
  function renderAnswer(ask) {
    if (ask !== state.ask) return;
    let text = ask.text;
    if (!ask.done) text = text.replace(PENDING_MARKER, ""); // it becomes a link once whole
    const tokens = tokenize(text);
    const flag = !(ask.done && ask.done.abstained);
    const spans = flag ? locateSentences(text, tokens, ask.sentences).filter((s) => s.sentence.uncited === true) : [];
    const frag = document.createDocumentFragment();
    const wraps = new Map();
    let next = 0; // the first span that does not end before the position asked about
    const parentAt = (pos) => {
      while (next < spans.length && spans[next].end <= pos) next++;
      const span = spans[next];
      if (!span || span.start > pos) return frag;
      if (!wraps.has(next)) {
        const wrap = el("span", { className: "uncited", title: "No citation: nothing in the evidence is cited for this sentence" });
        wraps.set(next, wrap);
        frag.append(wrap);
      }
      return wraps.get(next);
    };
    for (const token of tokens) {
      if (token.type === "marker") {
        const box = el("span", { className: "cites" });
        for (const n of token.numbers) box.append(citeNode(n, ask));
        parentAt(token.start).append(box);
        continue;
      }
      let pos = token.start;
      while (pos < token.end) {
        while (next < spans.length && spans[next].end <= pos) next++;
        const span = spans[next];
        let stop = token.end;
        if (span) stop = Math.min(stop, span.start > pos ? span.start : span.end);
        parentAt(pos).append(document.createTextNode(text.slice(pos, stop)));
        pos = stop;
      }
    }
    els.askAnswer.replaceChildren(frag);
    els.askAnswer.dataset.uncited = String(spans.length);
  }

  function makeEvidence(ref, ask) {
    const n = ref.n;
    const name = baseName(ref.path);
    let thumb;
    if (ref.kind === "text") {
      thumb = el("span", { className: "evidence-thumb evidence-thumb-text", "aria-hidden": "true" });
    } else {
      const img = el("img", { src: thumbUrl(ref.id), alt: "", loading: "lazy", decoding: "async", draggable: "false" });
      img.addEventListener("error", () => img.replaceWith(el("span", { className: "thumb-missing", text: "No preview" })), { once: true });
      thumb = el("span", { className: "evidence-thumb" }, img);
      if (ref.kind === "page" && ref.page) thumb.append(el("span", { className: "badge badge-page", text: `p. ${ref.page}` }));
      if (ref.kind === "video" && timeRange(ref)) thumb.append(el("span", { className: "badge badge-time", text: timeRange(ref) }));
    }
    const kind =
      ref.kind === "page"
        ? `PDF page ${ref.page ?? ""}`.trim()
        : ref.kind === "text"
        ? ref.chunk !== null && ref.chunk !== undefined
          ? `Text · part ${ref.chunk + 1}`
          : "Text"
        : KIND_LABEL[ref.kind] || String(ref.kind || "");
    const confidence = formatPercent(ref.confidence);
    const round = Number(ref.round) > 1 ? ask.roundQueries[Number(ref.round) - 2] : null;
    const button = el(
      "button",
      {
        type: "button",
        className: `evidence-card evidence-${ref.kind}` + (ask.noGoodMatch ? " card-weak" : ""),
        "aria-label": `${n}: ${refLabel(ref)}`,
        title: ref.path,
        dataset: { n: String(n), id: ref.id, path: ref.path, kind: ref.kind },
      },
      el("span", { className: "evidence-n", "aria-hidden": "true", text: String(n) }),
      thumb,
      el(
        "span",
        { className: "evidence-meta" },
        el("span", { className: "evidence-name", text: name }),
        el("span", { className: "evidence-sub muted", text: confidence ? `${kind} · ${confidence}` : kind }),
        ref.snippet ? el("span", { className: "evidence-snippet", text: ref.snippet }) : null,
        round ? el("span", { className: "evidence-round muted", text: `Found by searching again: ${round}` }) : null
      )
    );
    return el("li", { className: "evidence-item", id: "ask-ev-" + n, dataset: { n: String(n) } }, button);
  }

  function addEvidence(ask, refs, noGoodMatch) {
    if (noGoodMatch && !ask.noGoodMatch) {
      ask.noGoodMatch = true;
      els.resultsTitle.textContent = `No good match for “${ask.question}”`;
      els.resultsTitle.dataset.noGoodMatch = "true";
      for (const card of els.askEvidence.querySelectorAll(".evidence-card")) card.classList.add("card-weak");
    }
    for (const ref of Array.isArray(refs) ? refs : []) {
      const n = Number(ref && ref.n);
      if (!ref || !ref.id || !Number.isInteger(n) || n < 1 || ask.refs.has(n)) continue;
      ask.refs.set(n, ref);
      const later = Array.from(els.askEvidence.children).find((li) => Number(li.dataset.n) > n);
      els.askEvidence.insertBefore(makeEvidence(ref, ask), later || null);
    }
    const count = ask.refs.size;
    els.askEvidenceSection.hidden = count === 0;
    els.askEvidenceTitle.textContent = ask.noGoodMatch ? "No good match — closest results:" : `Evidence (${count})`;
    if (ask.noGoodMatch) {
      showVerdict(
        count
          ? "No good match: nothing in your files looks like it answers this, so no model was asked. The closest results are listed."
          : "No good match: nothing in your files comes close to this question, so no model was asked."
      );
      els.askAnswer.hidden = true;
    } else {
      els.resultInfo.textContent = "Writing the answer…";
    }
    renderAnswer(ask); // markers to evidence that just arrived become links
  }

  function showVerdict(text) {
    els.askVerdictText.textContent = text;
    els.askVerdict.hidden = false;
  }

  function addNote(text) {
    els.askNotes.append(el("li", { className: "warning" }, svgIcon("i-info"), el("span", { text })));
  }

  function finishAsk(ask, data) {
    ask.done = data;
    if (typeof data.answer === "string") ask.text = data.answer;
    ask.sentences = Array.isArray(data.sentences) ? data.sentences : [];
    addEvidence(ask, data.references, data.abstain_reason === "no_good_match");
    if (data.abstained && data.abstain_reason === "model") {
      showVerdict("The evidence does not answer this. The model said:");
      els.askAnswer.classList.add("is-abstained");
    }
    renderAnswer(ask);
    const dropped = Number(data.dropped_citations) || 0;
    if (dropped > 0) {
      addNote(`${plural(dropped, "citation", "citations")} named evidence the model was not given: struck through, not links.`);
    }
    const fallbacks = Array.isArray(data.fallbacks) ? data.fallbacks : [];
    if (fallbacks.includes("text-only")) addNote("Sent without pictures: the model endpoint did not take images, so it read only the text of the evidence.");
    if (fallbacks.includes("no-tools")) addNote("Asked without the search tool: the model endpoint did not take tools, so it could not search again.");
    const uncited = Number(els.askAnswer.dataset.uncited) || 0;
    const parts = [];
    if (data.model && data.abstain_reason !== "no_good_match") parts.push(`Answered by ${data.model}`);
    if (uncited) parts.push(`${plural(uncited, "sentence has", "sentences have")} no citation (dotted underline)`);
    els.askModel.textContent = parts.join(" · ");
    els.ask.dataset.state = "done";
    els.resultInfo.textContent = ask.noGoodMatch ? "" : "The answer is complete.";
  }

  function addRound(ask, data) {
    const query = typeof data.query === "string" ? data.query : "";
    ask.roundQueries.push(query);
    const added = Array.isArray(data.added) ? data.added.length : 0;
    els.askRounds.append(
      el(
        "li",
        { className: "ask-round" },
        el("span", { text: "Searched again: " }),
        el("q", { text: query }),
        el("span", { className: "muted", text: added ? ` — ${plural(added, "more item", "more items")}` : " — nothing new" })
      )
    );
    // the model answers afresh with the new evidence: its earlier words were not the answer
    ask.text = "";
    ask.sentences = [];
    renderAnswer(ask);
    els.resultInfo.textContent = "Searched again; writing the answer…";
  }

  function onAskEvent(ask, type, data) {
    if (ask !== state.ask || !data || typeof data !== "object") return;
    if (type === "evidence") addEvidence(ask, data.references, data.no_good_match === true);
    else if (type === "round") addRound(ask, data);
    else if (type === "delta") {
      if (typeof data.text === "string") ask.text += data.text;
      renderAnswer(ask);
    } else if (type === "citations") {
      if (Number.isInteger(data.index) && data.index >= 0 && data.index < 10000) {
        ask.sentences[data.index] = data;
        renderAnswer(ask);
      }
    } else if (type === "done") finishAsk(ask, data);
    // other events (from a newer server) are left alone
  }

  // one server-sent event: "event: TYPE" and "data: JSON" lines
  function parseFrame(frame) {
    let type = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { type, data: JSON.parse(data.join("\n")) };
    } catch (_) {
      throw new ApiError("The server sent part of the answer in a form this page cannot read.");
    }
  }

  // the events of a text/event-stream body, however the network cuts it into chunks
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
        // one kind of line end; a "\r" last may be the first half of a "\r\n"
        const held = !done && buffer.endsWith("\r") ? "\r" : "";
        if (held) buffer = buffer.slice(0, -1);
        buffer = buffer.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (frame) yield frame;
        }
        buffer += held;
        if (done) {
          const frame = parseFrame(buffer);
          if (frame) yield frame;
          return;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  function setAskBusy(busy) {
    els.askAnswer.setAttribute("aria-busy", busy ? "true" : "false");
    els.askAnswer.classList.toggle("is-streaming", busy);
    els.askStop.hidden = !busy;
    if (busy) els.ask.dataset.state = "streaming";
  }

  function resetAskView(ask) {
    els.askIntro.hidden = true;
    els.askVerdict.hidden = true;
    els.askVerdictText.textContent = "";
    els.askRounds.replaceChildren();
    els.askNotes.replaceChildren();
    els.askEvidence.replaceChildren();
    els.askEvidenceSection.hidden = true;
    els.askAnswer.replaceChildren();
    els.askAnswer.hidden = false;
    els.askAnswer.classList.remove("is-abstained");
    els.askAnswer.dataset.uncited = "0";
    els.askModel.textContent = "";
    els.resultsTitle.hidden = false;
    els.resultsTitle.textContent = `Answer to “${ask.question}”`;
    for (const key of Object.keys(els.resultsTitle.dataset)) delete els.resultsTitle.dataset[key];
    els.resultsTitle.dataset.noGoodMatch = "false";
    els.resultInfo.textContent = "Looking for evidence…";
  }

  // stop the answer streaming in (a new question, the Stop button, Search mode)
  function stopAsk() {
    const controller = state.askController;
    if (!controller) return;
    state.askController = null;
    controller.abort();
    setAskBusy(false);
    const ask = state.ask;
    if (ask && !ask.done) {
      els.ask.dataset.state = "stopped";
      renderAnswer(ask);
      els.resultInfo.textContent = "Stopped before the answer was complete.";
    }
  }

  async function runAsk(question) {
    if (state.askController) state.askController.abort(); // the new question replaces it
    clearError();
    const controller = new AbortController();
    state.askController = controller;
    const ask = { question, refs: new Map(), text: "", sentences: [], done: null, noGoodMatch: false, roundQueries: [] };
    state.ask = ask;
    els.ask.dataset.generation = String(Number(els.ask.dataset.generation || "0") + 1);
    resetAskView(ask);
    rememberInUrl({ mode: "ask", q: question });
    setAskBusy(true);
    try {
      const res = await send("/api/ask", {
        method: "POST",
        body: JSON.stringify({ question, stream: true }),
        type: "application/json",
        accept: "text/event-stream, application/json",
        signal: controller.signal,
      });
      if (!res.ok) throw failure(res, await readJson(res));
      const type = res.headers.get("content-type") || "";
      let finished = false;
      if (!type.includes("text/event-stream") || !res.body) {
        const data = await readJson(res); // an answer in one piece
        if (!data) throw new ApiError("The server sent an answer this page cannot read.", res.status);
        onAskEvent(ask, "done", data);
        finished = true;
      } else {
        for await (const event of sseEvents(res.body)) {
          if (controller !== state.askController) return;
          if (event.type === "error") {
            const d = event.data || {};
            const message = describeDetail(d.detail) || (d.error ? String(d.error) : "") || "The answer failed.";
            throw new ApiError(message, Number(d.status) || 0, d.error ? String(d.error) : "");
          }
          onAskEvent(ask, event.type, event.data);
          if (event.type === "done") {
            finished = true;
            break;
          }
        }
      }
      if (!finished && controller === state.askController) {
        throw new ApiError("The answer stopped before it was complete: the connection to the server was cut. Try again.");
      }
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (controller !== state.askController) return;
      showError(sentence(err.message || String(err))); // the server's details are lower-case clauses
      els.ask.dataset.state = "error";
      els.resultInfo.textContent = ask.text ? "The answer did not complete." : "The question was not answered.";
      renderAnswer(ask);
    } finally {
      if (controller === state.askController) {
        state.askController = null;
        setAskBusy(false);
      }
    }
  }

  // a citation leads to its evidence: scrolled into view, highlighted and focused
  function showEvidence(n) {
    const item = document.getElementById("ask-ev-" + n);
    if (!item) return;
    for (const old of els.askEvidence.querySelectorAll(".is-highlighted")) old.classList.remove("is-highlighted", "is-flash");
    void item.offsetWidth; // restart the flash
    item.classList.add("is-highlighted", "is-flash");
    const card = item.querySelector(".evidence-card");
    if (card) card.focus({ preventScroll: true });
    const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    item.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
  }

  // an evidence card opens the detail view of its item (not one of the search results)
  function openEvidence(ref, card) {
    state.detailIndex = -1;
    showDetail(
      {
        id: ref.id,
        path: ref.path,
        kind: ref.kind,
        page: ref.page ?? null,
        chunk: ref.chunk ?? null,
        snippet: ref.snippet || "",
        confidence: ref.confidence,
        other_paths: [],
        start: seconds(ref.start),
        end: seconds(ref.end),
      },
      card
    );
    els.detailScore.textContent = `${formatPercent(ref.confidence) || "—"} (evidence ${ref.n})`;
  }

  // ---------------------------------------------------------------- the search image

  function setImage(file) {
    if (!file) return;
    if (!state.imageSearch.available) {
      showError(imageOffMessage());
      return;
    }
    if (file.type && !file.type.startsWith("image/")) {
      showError(`“${file.name || "That file"}” is not an image. Choose a photo or picture file (JPEG, PNG, WebP…).`);
      return;
    }
    if (state.mode === "ask") setMode("search"); // a question takes words only: search by the picture
    clearImage(false);
    const url = URL.createObjectURL(file);
    state.image = { file, url };
    els.chipPreview.src = url;
    els.chipName.textContent = file.name || "pasted image";
    els.chip.hidden = false;
    els.chipRemove.setAttribute("aria-label", `Remove the search image ${file.name || ""}`.trim());
    runFromForm();
  }

  function clearImage(resetInput = true) {
    if (state.image) URL.revokeObjectURL(state.image.url);
    state.image = null;
    els.chip.hidden = true;
    els.chipPreview.removeAttribute("src");
    els.chipName.textContent = "";
    if (resetInput) els.fileInput.value = "";
  }

  function imageFromTransfer(dt) {
    if (!dt) return null;
    for (const item of Array.from(dt.items || [])) {
      if (item.kind === "file" && item.type.startsWith("image/")) {
        const f = item.getAsFile();
        if (f) return f;
      }
    }
    for (const f of Array.from(dt.files || [])) return f; // let setImage explain a non-image
    return null;
  }

  // ---------------------------------------------------------------- detail view

  function openDetail(index, opener) {
    const hit = state.hits[index];
    if (!hit) return;
    state.detailIndex = index;
    // a heat map needs words: the results of "more like this" or of a picture have none
    const query = state.query;
    showDetail(hit, opener, query && query.mode === "text" ? query.q : "");
  }

  // whether the detail view shows one of the results (not a near-duplicate outside them)
  function detailInResults() {
    return state.detailHit !== null && state.hits[state.detailIndex] === state.detailHit;
  }

  function showDetail(hit, opener, query = "") {
    if (!els.detail.open) {
      state.opener = opener || document.activeElement;
    }
    clearHeat(); // the map of the item shown before does not fit this one
    stopVideo(); // the segment shown before stops playing and lets go of its file
    state.detailHit = hit;
    state.detailQuery = query;
    const inResults = detailInResults();
    const index = state.detailIndex;
    const seq = ++state.detailSeq;
    const name = baseName(hit.path);

    const range = hit.kind === "video" ? timeRange(hit) : "";
    els.detailTitle.textContent = name + (hit.kind === "page" && hit.page ? ` — p. ${hit.page}` : "") + (range ? ` — ${range}` : "");
    // an item outside the results has no place among them: the arrows wait for one that has
    els.detailPosition.textContent = inResults ? `${index + 1} / ${state.hits.length}` : "";
    els.detailPrev.disabled = !inResults || index <= 0;
    els.detailNext.disabled = !inResults || index >= state.hits.length - 1;
    els.detailKind.textContent = KIND_LABEL[hit.kind] || hit.kind;
    setPage(hit.kind === "page" ? hit.page : null);
    setTime(hit.kind === "video" ? hit : null);
    els.detailPath.textContent = hit.path;
    setOtherPaths(hit.other_paths || []);
    setSize(null, null);
    els.detailScore.textContent = inResults
      ? `${formatConfidence(hit)}${hit.weak ? " (weak)" : ""}  (${formatSources(hit.sources) || "no sources"})`
      : "— (not among the results)";
    els.detailText.textContent = hit.snippet || "Loading…";
    els.detailText.classList.add("is-loading");
    els.detailTextSource.textContent = "";
    els.detail.dataset.id = hit.id;
    els.detail.dataset.kind = hit.kind;
    setDuplicates([]);

    els.detailImageLink.hidden = hit.kind === "video";
    if (hit.kind === "text") {
      els.detailFigure.hidden = true;
      els.detailImage.removeAttribute("src");
    } else if (hit.kind === "video") {
      // the segment plays in place of a picture, from its start
      els.detailFigure.hidden = false;
      els.detailImage.removeAttribute("src");
      showVideo(hit, name);
    } else {
      els.detailFigure.hidden = false;
      const src = imageUrl(hit.id);
      const img = els.detailImage;
      img.alt = hitLabel(hit);
      img.dataset.full = "0";
      img.classList.add("is-loading");
      img.onerror = null;
      // the thumbnail is already in the cache: show it at once, then swap in the full picture
      img.src = thumbUrl(hit.id);
      els.detailImageLink.href = src;
      const full = new Image();
      full.decoding = "async";
      full.onload = () => {
        if (seq !== state.detailSeq) return;
        img.src = src;
        img.dataset.full = "1";
        img.classList.remove("is-loading");
      };
      full.onerror = () => {
        if (seq !== state.detailSeq) return;
        img.classList.remove("is-loading");
        showError(`The picture of ${name} could not be loaded; its file may have moved or been deleted.`);
      };
      full.src = src;
    }

    if (!els.detail.open) {
      if (typeof els.detail.showModal === "function") els.detail.showModal();
      else els.detail.setAttribute("open", "");
      document.body.classList.add("has-dialog");
    }

    api(itemUrl(hit.id)).then(
      (item) => {
        if (seq !== state.detailSeq) return;
        els.detailText.classList.remove("is-loading");
        const text = (item.text || "").trim();
        els.detailText.textContent = text || "No text was found in this item.";
        els.detailText.classList.toggle("is-empty", !text);
        const source = item.text_source ? { ocr: "(read by OCR)", layer: "(from the PDF text layer)", file: "(from the file)" }[item.text_source] || `(${item.text_source})` : "";
        els.detailTextSource.textContent = source;
        if (item.path) els.detailPath.textContent = item.path;
        setOtherPaths(item.other_paths || []);
        setPage(item.kind === "page" ? item.page : null);
        if (item.kind === "video") {
          setTime(item);
          // an item opened without its times (a near-duplicate) gets them here
          if (!timeRange(hit) && timeRange(item)) els.detailTitle.textContent = `${name} — ${timeRange(item)}`;
          setVideoRange(item);
        }
        setSize(item.width, item.height);
      },
      (err) => {
        if (seq !== state.detailSeq) return;
        els.detailText.classList.remove("is-loading");
        els.detailText.textContent = hit.snippet || "";
        showError(err.message);
      }
    );

    if (hit.kind !== "text") loadDuplicates(hit.id, seq);
    if (query && wantsHeat(hit)) loadHeat(hit, query, seq);
  }

  // the near-duplicate pictures of the item shown; a failure only leaves the section hidden
  function loadDuplicates(id, seq) {
    els.dupes.dataset.state = "loading";
    api(itemUrl(id, "/duplicates")).then(
      (data) => {
        if (seq !== state.detailSeq) return;
        const items = Array.isArray(data.items) ? data.items : [];
        setDuplicates(items.filter((d) => d && d.id && d.id !== id));
        els.dupes.dataset.state = "done";
      },
      () => {
        if (seq !== state.detailSeq) return;
        setDuplicates([]);
        els.dupes.dataset.state = "failed";
      }
    );
  }

  function dupeLabel(dupe) {
    return `${baseName(dupe.path)}${dupe.kind === "page" && dupe.page ? ` p. ${dupe.page}` : ""}`;
  }

  function setDuplicates(dupes) {
    els.dupes.dataset.state = "";
    els.dupesList.replaceChildren(...dupes.map(makeDuplicate));
    els.dupesCount.textContent = dupes.length ? `(${dupes.length.toLocaleString()})` : "";
    els.dupes.hidden = !dupes.length;
  }

  function makeDuplicate(dupe) {
    const label = dupeLabel(dupe);
    const distance = Number(dupe.distance);
    const apart = Number.isFinite(distance) ? `${plural(distance, "bit", "bits")} apart` : "";
    const img = el("img", { src: thumbUrl(dupe.id), alt: "", loading: "lazy", decoding: "async", draggable: "false" });
    img.addEventListener("error", () => img.replaceWith(el("span", { className: "thumb-missing", text: "No preview" })), {
      once: true,
    });
    const button = el(
      "button",
      {
        type: "button",
        className: "dupe",
        title: dupe.path,
        "aria-label": apart ? `${label}, ${apart}` : label,
        dataset: { id: dupe.id, path: dupe.path, kind: dupe.kind, distance: String(dupe.distance) },
      },
      el("span", { className: "dupe-thumb" }, img),
      el(
        "span",
        { className: "dupe-meta" },
        el("span", { className: "dupe-name", text: label }),
        el("code", { className: "dupe-path muted", text: dupe.path }),
        el("span", { className: "dupe-distance muted", text: apart })
      )
    );
    button.addEventListener("click", () => openDuplicate(dupe));
    return el("li", {}, button);
  }

  // open a near-duplicate like a result: by its place among the results when it has one
  function openDuplicate(dupe) {
    const index = state.ids.has(dupe.id) ? state.hits.findIndex((h) => h.id === dupe.id) : -1;
    if (index >= 0) openDetail(index);
    else showDetail({ id: dupe.id, path: dupe.path, kind: dupe.kind, page: dupe.page ?? null, other_paths: [] }, null, state.detailQuery);
    // the entry just pressed is gone with the old list: the new item's title takes the focus
    els.detailTitle.focus();
    els.detail.querySelector(".detail-body").scrollTop = 0;
  }

  function setPage(page) {
    const show = page !== null && page !== undefined;
    els.detailPage.textContent = show ? String(page) : "";
    els.detailPage.hidden = !show;
    els.detailPageLabel.hidden = !show;
  }

  function setTime(hit) {
    const range = hit ? timeRange(hit) : "";
    els.detailTime.textContent = range;
    els.detailTime.hidden = !range;
    els.detailTimeLabel.hidden = !range;
  }

  function setOtherPaths(paths) {
    els.detailOther.replaceChildren(...paths.map((p) => el("code", { text: p })));
    els.detailOther.hidden = !paths.length;
    els.detailOtherLabel.hidden = !paths.length;
  }

  function setSize(w, h) {
    const show = Boolean(w && h);
    els.detailSize.textContent = show ? `${w} × ${h} px` : "";
    els.detailSize.hidden = !show;
    els.detailSizeLabel.hidden = !show;
  }

  // ---------------------------------------------------------------- video segments

  // play a video segment in the detail view: its keyframe first (the poster), then its file
  // from the segment's start; it pauses once at the segment's end and goes on when told to
  function showVideo(hit, name) {
    const video = els.detailVideo;
    const start = seconds(hit.start);
    const end = seconds(hit.end);
    state.video = { id: hit.id, name, start, end, positioned: false, pausedAtEnd: false, lastTime: 0 };
    video.hidden = false;
    video.poster = thumbUrl(hit.id);
    video.setAttribute("aria-label", hitLabel(hit));
    video.dataset.state = "loading";
    video.dataset.start = start === null ? "" : String(start);
    video.dataset.end = end === null ? "" : String(end);
    video.src = videoUrl(hit.id, start, end);
  }

  function setVideoRange(item) {
    const v = state.video;
    if (!v || v.id !== item.id || v.start !== null) return;
    v.start = seconds(item.start);
    v.end = seconds(item.end);
    els.detailVideo.dataset.start = v.start === null ? "" : String(v.start);
    els.detailVideo.dataset.end = v.end === null ? "" : String(v.end);
    positionVideo();
  }

  // once the file's metadata is in: go to the segment's start (media fragments are not read
  // by every player, and a fragment is not honoured after the user seeks)
  function positionVideo() {
    const v = state.video;
    const video = els.detailVideo;
    if (!v || v.positioned || v.start === null || video.readyState < 1) return;
    v.positioned = true;
    const duration = video.duration;
    const at = Number.isFinite(duration) ? Math.min(v.start, Math.max(0, duration - 0.05)) : v.start;
    if (Math.abs(video.currentTime - at) > 0.01) video.currentTime = at;
    v.lastTime = at;
    video.dataset.state = "ready";
  }

  // the first time playback runs past the segment's end, it pauses there; a seek is no run
  function onVideoTime() {
    const v = state.video;
    const video = els.detailVideo;
    if (!v || !v.positioned) return;
    const now = video.currentTime;
    const before = v.lastTime;
    v.lastTime = now;
    if (v.pausedAtEnd || v.end === null || video.paused || video.seeking) return;
    if (before < v.end && now >= v.end - 0.05) {
      v.pausedAtEnd = true;
      video.pause();
      video.dataset.state = "segment-end";
    }
  }

  // a player that reads the fragment's end pauses there itself: that was the one pause
  function onVideoPause() {
    const v = state.video;
    const video = els.detailVideo;
    if (!v || !v.positioned || v.pausedAtEnd || v.end === null || video.seeking) return;
    if (video.currentTime >= v.end - 0.1) {
      v.pausedAtEnd = true;
      video.dataset.state = "segment-end";
    }
  }

  function onVideoSeeking() {
    if (state.video) state.video.lastTime = els.detailVideo.currentTime;
  }

  function onVideoError() {
    const v = state.video;
    const video = els.detailVideo;
    if (!v || !video.getAttribute("src")) return; // unloaded on purpose
    video.dataset.state = "error";
    const unsupported = video.error && video.error.code === 4; // MEDIA_ERR_SRC_NOT_SUPPORTED
    showError(
      unsupported
        ? `The video ${v.name} could not be played: this browser cannot play its format, or its file has moved or been deleted.`
        : `The video ${v.name} could not be loaded; its file may have moved or been deleted.`
    );
  }

  // stop the segment playing and let go of its file (the detail view closes or moves on)
  function stopVideo() {
    state.video = null;
    const video = els.detailVideo;
    video.hidden = true;
    for (const key of Object.keys(video.dataset)) delete video.dataset[key];
    if (!video.getAttribute("src") && !video.getAttribute("poster")) return;
    video.pause();
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load(); // drops what was buffered and the connection to the file
  }

  // ---------------------------------------------------------------- heat map

  const HEAT_ALPHA = 0.6; // the opacity of the cells that carried the most of the match
  const HEAT_CACHE = 64;

  function foundByPageVectors(sources) {
    if (Array.isArray(sources)) return sources.includes("late");
    return Boolean(sources && typeof sources === "object" && Object.prototype.hasOwnProperty.call(sources, "late"));
  }

  // a picture (page or image) of an index that keeps page vectors, or a hit they found
  function wantsHeat(hit) {
    return hit.kind !== "text" && hit.kind !== "video" && (state.pageVectors || foundByPageVectors(hit.sources));
  }

  // the server's map, checked: a grid of rows x cols values in 0..1; else null
  function readHeat(data) {
    const rows = Number(data && data.rows);
    const cols = Number(data && data.cols);
    const values = data && data.values;
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) return null;
    if (!Array.isArray(values) || values.length !== rows * cols) return null;
    const clamp = (v) => (typeof v === "number" && v > 0 ? Math.min(1, v) : 0);
    return {
      rows,
      cols,
      values: values.map(clamp),
      score: Number(data.score),
      tokens: Number(data.tokens),
      tokensOnPage: Number(data.tokens_on_page),
    };
  }

  // which parts of the picture the query's words matched; a failure (no page vectors in
  // the index or for this item) only leaves the toggle hidden
  function loadHeat(hit, query, seq) {
    const key = query + "\n" + hit.id;
    els.detail.dataset.heat = "loading";
    const cached = state.heatCache.get(key);
    if (cached) {
      showHeat(hit, cached);
      return;
    }
    const controller = new AbortController();
    state.heatController = controller;
    api(itemUrl(hit.id, "/heatmap?") + new URLSearchParams({ q: query }).toString(), { signal: controller.signal }).then(
      (data) => {
        if (seq !== state.detailSeq || controller !== state.heatController) return;
        state.heatController = null;
        const heat = readHeat(data);
        if (!heat) {
          els.detail.dataset.heat = "none";
          return;
        }
        state.heatCache.set(key, heat);
        if (state.heatCache.size > HEAT_CACHE) state.heatCache.delete(state.heatCache.keys().next().value);
        showHeat(hit, heat);
      },
      (err) => {
        if (err && err.name === "AbortError") return;
        if (controller === state.heatController) state.heatController = null;
        // 400: this index keeps no page vectors at all, so no other item has a map either
        if (err && err.status === 400) state.pageVectors = false;
        if (seq !== state.detailSeq) return;
        els.detail.dataset.heat = "none";
      }
    );
  }

  function showHeat(hit, heat) {
    state.heat = heat;
    const what = hit.kind === "page" ? "page" : "picture";
    els.detailHeatCaption.textContent = `Highlighted: where the query’s words matched this ${what} (MaxSim)`;
    const canvas = els.detailHeat;
    canvas.dataset.rows = String(heat.rows);
    canvas.dataset.cols = String(heat.cols);
    canvas.dataset.score = String(heat.score);
    canvas.dataset.tokens = String(heat.tokens);
    canvas.dataset.tokensOnPage = String(heat.tokensOnPage);
    els.detailHeatToggle.setAttribute("aria-pressed", state.heatShown ? "true" : "false");
    els.detailHeatBar.hidden = false;
    els.detail.dataset.heat = "loaded";
    drawHeat();
  }

  // the map over the picture as it is displayed now: one cell per patch, a warm colour as
  // opaque as the cell's share of the match, cells without any left clear
  function drawHeat() {
    const heat = state.heat;
    const canvas = els.detailHeat;
    const img = els.detailImage;
    const width = img.offsetWidth;
    const height = img.offsetHeight;
    if (!heat || !state.heatShown || !els.detail.open || els.detailFigure.hidden || !(width > 0 && height > 0) || !img.naturalWidth) {
      canvas.hidden = true;
      return;
    }
    const ratio = Math.min(4, Math.max(1, window.devicePixelRatio || 1));
    const w = Math.round(width * ratio);
    const h = Math.round(height * ratio);
    canvas.style.left = `${img.offsetLeft}px`;
    canvas.style.top = `${img.offsetTop}px`;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, w, h);
    const { rows, cols, values } = heat;
    for (let r = 0; r < rows; r++) {
      const y0 = Math.round((r * h) / rows);
      const y1 = Math.round(((r + 1) * h) / rows);
      for (let c = 0; c < cols; c++) {
        const v = values[r * cols + c];
        if (!(v > 0)) continue;
        const x0 = Math.round((c * w) / cols);
        const x1 = Math.round(((c + 1) * w) / cols);
        // amber for a small share, red-orange for the largest
        ctx.fillStyle = `hsla(${Math.round(40 - 28 * v)}, 100%, 50%, ${(HEAT_ALPHA * v).toFixed(3)})`;
        ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      }
    }
    canvas.dataset.width = String(width);
    canvas.dataset.height = String(height);
    canvas.hidden = false;
  }

  function clearHeat() {
    if (state.heatController) state.heatController.abort();
    state.heatController = null;
    state.heat = null;
    const canvas = els.detailHeat;
    canvas.hidden = true;
    canvas.width = 0; // frees the pixels; the next map sizes it again
    canvas.height = 0;
    for (const key of Object.keys(canvas.dataset)) delete canvas.dataset[key];
    els.detailHeatBar.hidden = true;
    delete els.detail.dataset.heat;
  }

  function toggleHeat() {
    state.heatShown = !state.heatShown;
    els.detailHeatToggle.setAttribute("aria-pressed", state.heatShown ? "true" : "false");
    drawHeat();
  }

  function closeDetail() {
    if (!els.detail.open) return;
    els.detail.close();
    // settle now, not in the "close" event: that event comes a task later, and a key
    // pressed in between ("/" to the search box) would have its focus taken back
    settleAfterDetail();
  }

  function onDetailClosed() {
    // the browser closed it (its own Esc handling); a reopened dialog is left alone
    if (!els.detail.open) settleAfterDetail();
  }

  function settleAfterDetail() {
    if (!document.body.classList.contains("has-dialog")) return; // settled already
    document.body.classList.remove("has-dialog");
    state.detailSeq++;
    state.detailHit = null;
    state.detailQuery = "";
    clearHeat();
    stopVideo();
    // return focus to the card of the item last shown, or whatever opened the view
    let target = null;
    const hit = state.hits[state.detailIndex];
    if (hit) target = els.results.querySelector(`.card[data-index="${state.detailIndex}"]`);
    if (!target && state.opener && document.contains(state.opener)) target = state.opener;
    if (!target) target = els.results.querySelector(".card") || els.q;
    state.opener = null;
    target.focus();
    if (target.scrollIntoView) target.scrollIntoView({ block: "nearest" });
  }

  async function moreLikeThis() {
    const hit = state.detailHit;
    if (!hit) return;
    const range = hit.kind === "video" ? timeRange(hit) : "";
    const label = baseName(hit.path) + (hit.kind === "page" && hit.page ? ` p. ${hit.page}` : "") + (range ? ` @ ${range}` : "");
    const kinds = selectedKinds();
    state.detailIndex = -1;
    state.opener = null;
    closeDetail();
    if (state.mode === "ask") setMode("search"); // the neighbours are shown in the results grid
    await startQuery({ mode: "similar", itemId: hit.id, label, kinds: kinds.length ? kinds : els.kinds.map((k) => k.value) });
    const first = els.results.querySelector(".card");
    if (first) first.focus();
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  // ---------------------------------------------------------------- wiring

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    runFromForm();
  });

  els.fileInput.addEventListener("change", () => {
    const file = els.fileInput.files && els.fileInput.files[0];
    if (file) setImage(file);
  });

  for (const radio of els.modes) {
    radio.addEventListener("change", () => {
      if (radio.checked) setMode(radio.value);
    });
  }

  els.askAnswer.addEventListener("click", (ev) => {
    const link = ev.target.closest("a.cite");
    if (!link) return;
    ev.preventDefault(); // no jump and no "#ask-ev-1" in the address: the card is shown and focused
    showEvidence(Number(link.dataset.n));
  });

  els.askEvidence.addEventListener("click", (ev) => {
    const card = ev.target.closest(".evidence-card");
    const ref = card && state.ask ? state.ask.refs.get(Number(card.dataset.n)) : null;
    if (ref) openEvidence(ref, card);
  });

  els.askStop.addEventListener("click", () => {
    stopAsk();
    els.q.focus(); // the button is gone
  });

  els.chipRemove.addEventListener("click", () => {
    clearImage();
    els.q.focus();
  });

  for (const box of els.kinds) {
    box.addEventListener("change", () => {
      if (!selectedKinds().length) {
        showError("Choose at least one kind of result (images, PDF pages, text or videos).");
        return;
      }
      clearError();
      if (state.query) startQuery({ ...state.query, kinds: selectedKinds() });
    });
  }

  function applyScores() {
    document.body.classList.toggle("show-scores", els.showScores.checked);
    try {
      localStorage.setItem("polylens.showScores", els.showScores.checked ? "1" : "0");
    } catch (_) {
      /* storage may be off */
    }
  }
  try {
    els.showScores.checked = localStorage.getItem("polylens.showScores") === "1";
  } catch (_) {
    /* ignore */
  }
  applyScores();
  els.showScores.addEventListener("change", applyScores);

  els.results.addEventListener("click", (ev) => {
    const card = ev.target.closest(".card");
    if (!card) return;
    openDetail(Number(card.dataset.index), card);
  });

  els.more.addEventListener("click", () => {
    if (!state.query || state.exhausted) return;
    fetchPage(false);
  });

  els.detailClose.addEventListener("click", closeDetail);
  els.detailPrev.addEventListener("click", () => openDetail(state.detailIndex - 1));
  els.detailNext.addEventListener("click", () => openDetail(state.detailIndex + 1));
  els.detail.addEventListener("close", onDetailClosed);
  els.detail.addEventListener("click", (ev) => {
    if (ev.target === els.detail) closeDetail(); // a click on the backdrop
  });
  els.detail.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      // also for browsers whose <dialog> lacks Esc handling
      ev.preventDefault();
      closeDetail();
      return;
    }
    // the arrows seek in a focused video, and move through the text, instead of moving on
    const inText = ev.target === els.detailText || ev.target === els.detailVideo || ev.target.closest("input, textarea");
    if (inText || ev.altKey || ev.ctrlKey || ev.metaKey || !detailInResults()) return;
    if (ev.key === "ArrowLeft" && state.detailIndex > 0) {
      ev.preventDefault();
      openDetail(state.detailIndex - 1);
    } else if (ev.key === "ArrowRight" && state.detailIndex < state.hits.length - 1) {
      ev.preventDefault();
      openDetail(state.detailIndex + 1);
    }
  });
  els.moreLikeThis.addEventListener("click", moreLikeThis);
  els.detailHeatToggle.addEventListener("click", toggleHeat);
  els.detailVideo.addEventListener("loadedmetadata", positionVideo);
  els.detailVideo.addEventListener("timeupdate", onVideoTime);
  els.detailVideo.addEventListener("seeking", onVideoSeeking);
  els.detailVideo.addEventListener("pause", onVideoPause);
  els.detailVideo.addEventListener("error", onVideoError);
  // the heat map follows the picture: the full one replacing the thumbnail, a resized view
  els.detailImage.addEventListener("load", drawHeat);
  if (typeof ResizeObserver === "function") new ResizeObserver(() => drawHeat()).observe(els.detailImage);
  window.addEventListener("resize", drawHeat);
  els.copyPath.addEventListener("click", async () => {
    const text = els.detailPath.textContent;
    try {
      await navigator.clipboard.writeText(text);
      els.copyPath.textContent = "Copied";
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(els.detailPath);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      els.copyPath.textContent = "Selected";
    }
    setTimeout(() => (els.copyPath.textContent = "Copy path"), 1500);
  });

  // "/" focuses the search box from anywhere except while typing
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (typing && t.type !== "checkbox" && t.type !== "radio" && t.type !== "file") return;
    if (els.detail.open) return;
    ev.preventDefault();
    els.q.focus();
    els.q.select();
  });

  // paste an image from anywhere; plain text pastes behave as usual
  document.addEventListener("paste", (ev) => {
    const dt = ev.clipboardData;
    if (!dt) return;
    const hasImage = Array.from(dt.items || []).some((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (!hasImage) return;
    ev.preventDefault();
    if (els.detail.open) closeDetail();
    setImage(imageFromTransfer(dt));
  });

  // the snippets' line count follows the width of the grid's columns
  if (typeof ResizeObserver === "function") new ResizeObserver(fitSnippets).observe(els.results);
  else window.addEventListener("resize", fitSnippets);

  // drag and drop anywhere on the page
  let dragDepth = 0;
  const carriesFiles = (ev) => Array.from((ev.dataTransfer && ev.dataTransfer.types) || []).includes("Files");
  window.addEventListener("dragenter", (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    dragDepth++;
    els.overlay.hidden = false;
  });
  window.addEventListener("dragover", (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy"; // also when image search is off: the drop explains why
  });
  window.addEventListener("dragleave", (ev) => {
    if (!carriesFiles(ev)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) els.overlay.hidden = true;
  });
  window.addEventListener("drop", (ev) => {
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    dragDepth = 0;
    els.overlay.hidden = true;
    if (els.detail.open) closeDetail();
    const file = imageFromTransfer(ev.dataTransfer);
    if (file) setImage(file);
  });

  // keep the token on the home link
  const brand = document.querySelector(".brand");
  if (brand && TOKEN) brand.href = withToken("/");

  // ---------------------------------------------------------------- start

  loadStatus();
  const initialQ = params.get("q");
  const initialKinds = params.getAll("kind");
  if (initialKinds.length) {
    for (const box of els.kinds) box.checked = initialKinds.includes(box.value);
  }
  if (params.get("mode") === "ask") {
    // a question is asked only when someone presses Ask: a reload does not call the model again
    setMode("ask", { remember: false });
    if (initialQ) {
      els.q.value = initialQ;
      els.resultInfo.textContent = "Press Enter to ask this question.";
    }
  } else if (initialQ) {
    els.q.value = initialQ;
    runFromForm();
  }
  document.documentElement.classList.add("js-ready");
})();
