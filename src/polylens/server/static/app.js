// polylens web page: search by text and/or image, browse results, inspect one item.
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
    detailKind: $("#detail-kind"),
    detailPage: $("#detail-page"),
    detailPageLabel: $("#detail-page-label"),
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
    opener: null, // the element focused before the detail view opened
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

  async function api(path, { method = "GET", body = null, signal = undefined } = {}) {
    const headers = { Accept: "application/json" };
    if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
    let res;
    try {
      res = await fetch(path, { method, body, headers, signal, credentials: "same-origin" });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("Could not reach the polylens server. Check that it is still running, then try again.");
    }
    let data = null;
    const type = res.headers.get("content-type") || "";
    if (type.includes("json")) {
      try {
        data = await res.json();
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      let message = data ? describeDetail(data.detail) : "";
      if (!message) message = `The server answered ${res.status} ${res.statusText || ""}`.trim() + ".";
      if (res.status === 401) {
        message = TOKEN
          ? `The access token in this page's address was not accepted (${message}). Open the URL that "polylens serve" printed.`
          : `This server needs an access token (${message}). Open the URL that "polylens serve" printed, which ends in ?token=….`;
      }
      throw new ApiError(message, res.status, data && data.error ? String(data.error) : "");
    }
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

  const KIND_LABEL = { image: "Image", page: "PDF page", text: "Text" };
  const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;
  // "24+ results" while more exist beyond those loaded, else the exact number
  const countOf = (n, more, one, many) => `${n.toLocaleString()}${more ? "+" : ""} ${n === 1 && !more ? one : many}`;

  function hitLabel(hit) {
    const name = baseName(hit.path);
    if (hit.kind === "page" && hit.page) return `${name}, page ${hit.page}`;
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
      els.indexInfo.title = parts.join(", ") + (status.path ? ` — ${status.path}` : "");
      for (const badge of document.querySelectorAll(".count[data-count]")) {
        const n = items[badge.dataset.count];
        badge.textContent = typeof n === "number" ? n.toLocaleString() : "";
      }
      if (files === 0) {
        els.resultInfo.textContent = "The index is empty: run “polylens index FOLDER” first.";
      }
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
    const kinds = selectedKinds();
    if (!kinds.length) {
      showError("Choose at least one kind of result (images, PDF pages or text) to search.");
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

    const meta = el(
      "span",
      { className: "card-meta" },
      el("span", { className: "card-name", text: name }),
      el("span", {
        className: "card-sub muted",
        text:
          hit.kind === "page"
            ? `PDF page ${hit.page ?? ""}`.trim()
            : hit.kind === "text"
            ? hit.chunk !== null && hit.chunk !== undefined
              ? `Text · part ${hit.chunk + 1}`
              : "Text"
            : "Image",
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

  // remember text searches in the address bar (keeping the token) so reload and links work
  function rememberInUrl(query) {
    const sp = new URLSearchParams();
    if (TOKEN) sp.set("token", TOKEN);
    if (query.mode === "text") {
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
    showDetail(hit, opener);
  }

  // whether the detail view shows one of the results (not a near-duplicate outside them)
  function detailInResults() {
    return state.detailHit !== null && state.hits[state.detailIndex] === state.detailHit;
  }

  function showDetail(hit, opener) {
    if (!els.detail.open) {
      state.opener = opener || document.activeElement;
    }
    state.detailHit = hit;
    const inResults = detailInResults();
    const index = state.detailIndex;
    const seq = ++state.detailSeq;
    const name = baseName(hit.path);

    els.detailTitle.textContent = name + (hit.kind === "page" && hit.page ? ` — p. ${hit.page}` : "");
    // an item outside the results has no place among them: the arrows wait for one that has
    els.detailPosition.textContent = inResults ? `${index + 1} / ${state.hits.length}` : "";
    els.detailPrev.disabled = !inResults || index <= 0;
    els.detailNext.disabled = !inResults || index >= state.hits.length - 1;
    els.detailKind.textContent = KIND_LABEL[hit.kind] || hit.kind;
    setPage(hit.kind === "page" ? hit.page : null);
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

    if (hit.kind === "text") {
      els.detailFigure.hidden = true;
      els.detailImage.removeAttribute("src");
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
    else showDetail({ id: dupe.id, path: dupe.path, kind: dupe.kind, page: dupe.page ?? null, other_paths: [] });
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
    const label = baseName(hit.path) + (hit.kind === "page" && hit.page ? ` p. ${hit.page}` : "");
    const kinds = selectedKinds();
    state.detailIndex = -1;
    state.opener = null;
    closeDetail();
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

  els.chipRemove.addEventListener("click", () => {
    clearImage();
    els.q.focus();
  });

  for (const box of els.kinds) {
    box.addEventListener("change", () => {
      if (!selectedKinds().length) {
        showError("Choose at least one kind of result (images, PDF pages or text).");
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
    const inText = ev.target === els.detailText || ev.target.closest("input, textarea");
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
    if (typing && t.type !== "checkbox" && t.type !== "file") return;
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
  if (initialQ) {
    els.q.value = initialQ;
    runFromForm();
  }
  document.documentElement.classList.add("js-ready");
})();
