/* sandik website: one page, hash routes, live through Server-Sent Events.
 *
 *   #/                      home: map of the top races, national figures, scoreboard
 *   #/area/<area id>        a province or district: its top race and every race below it
 *   #/race/<race id>[/<area id>]  a race (at one of its areas): candidates, previous election, areas, boxes
 *   #/box/<box id>          a ballot box: every sheet from every source, every version
 *
 * No framework and no network beyond this server: everything here is vendored in the package.
 */
"use strict";

const EID = "current";
const API = `/api/elections/${EID}`;

// --- language and number formats ------------------------------------------------
const I18N = {
  tr: {
    skip: "İçeriğe geç", home: "Ana sayfa", loading: "Yükleniyor…", searchLabel: "İl veya ilçe ara", searchPh: "İl veya ilçe ara",
    live: "Canlı", reconnecting: "Yeniden bağlanıyor…", connecting: "Bağlanıyor…",
    updated: "Son güncelleme", opened: "açılan sandık", boxesOpened: "Açılan sandık", turnout: "Katılım", votesCast: "Kullanılan oy",
    registered: "Kayıtlı seçmen", valid: "Geçerli oy", invalid: "Geçersiz oy", margin: "Fark", points: "puan", votes: "oy",
    mapTitle: "İllere göre sonuçlar", mapHelp: "Bir ile tıklayın ya da Tab ile seçip Enter'a basın.",
    mapTable: "Haritanın tablo hâli", province: "İl", leader: "Önde", share: "Oy oranı", status: "Durum",
    hatched: "Taralı: sayım sürüyor", grey: "Gri: sayım başlamadı", solid: "Düz renk: sayım tamamlandı (koyu = fark büyük)",
    partyVotes: "Partilerin oyları (büyükşehir ve il belediye başkanlığı)", scoreboard: "Kazanılan ve önde olunan iller",
    won: "kazandı", leading: "önde", party: "Parti", total: "Toplam", flips: "2019'a göre el değiştiren iller", noFlips: "Henüz el değiştiren il yok.",
    not_started: "Sayım başlamadı", counting: "Sayılıyor", complete: "Sayım tamamlandı",
    metropolitan_mayor: "Büyükşehir belediye başkanı", provincial_mayor: "İl belediye başkanı", district_mayor: "İlçe belediye başkanı",
    belde_mayor: "Belde belediye başkanı", country: "Ülke", district: "İlçe", belde: "Belde",
    racesHere: "Bu bölgedeki yarışlar", districts: "İlçeler", candidate: "Aday", previous: "2019 sonucu", swing: "Değişim",
    byArea: "Bölgelere göre", boxes: "Sandıklar", box: "Sandık", opened_yes: "açıldı", opened_no: "açılmadı",
    sheets: "Tutanaklar", source: "Kaynak", version: "Sürüm", counted: "Sayılan", by: "Gönderen", at: "Zaman", reason: "Gerekçe",
    official: "resmî", notCounted: "sayılmaz (gözlemci)", superseded: "eski sürüm", noSheets: "Bu sandık için henüz tutanak yok.",
    raceOf: "yarışı", others: "Diğer adaylar", showMore: "Daha fazla göster", independent: "Bağımsız", tied: "Eşitlik", notFound: "Bulunamadı",
    error: "Bir hata oluştu", nationalTitle: "Türkiye geneli", seeRace: "Yarışın ayrıntıları", winnerThen: "2019'da kazanan",
    footer: 'sandık · açık kaynak seçim gecesi sistemi · <a href="/docs">API</a> · Harita verisi © OpenStreetMap katkıcıları (Apache-2.0 derleme)',
  },
  en: {
    skip: "Skip to content", home: "Home", loading: "Loading…", searchLabel: "Search a province or district", searchPh: "Search a province or district",
    live: "Live", reconnecting: "Reconnecting…", connecting: "Connecting…",
    updated: "Last updated", opened: "ballot boxes opened", boxesOpened: "Ballot boxes opened", turnout: "Turnout", votesCast: "Votes cast",
    registered: "Registered voters", valid: "Valid votes", invalid: "Invalid votes", margin: "Margin", points: "pts", votes: "votes",
    mapTitle: "Results by province", mapHelp: "Click a province, or Tab to it and press Enter.",
    mapTable: "The map as a table", province: "Province", leader: "Leading", share: "Share", status: "Status",
    hatched: "Hatched: still counting", grey: "Grey: count not started", solid: "Solid: count complete (darker = wider margin)",
    partyVotes: "Votes by party (metropolitan and provincial mayors)", scoreboard: "Provinces won and leading",
    won: "won", leading: "leading", party: "Party", total: "Total", flips: "Provinces changing hands since 2019", noFlips: "No province has changed hands yet.",
    not_started: "Not started", counting: "Counting", complete: "Count complete",
    metropolitan_mayor: "Metropolitan mayor", provincial_mayor: "Provincial mayor", district_mayor: "District mayor",
    belde_mayor: "Town (belde) mayor", country: "Country", district: "District", belde: "Town",
    racesHere: "Races in this area", districts: "Districts", candidate: "Candidate", previous: "2019 result", swing: "Swing",
    byArea: "By area", boxes: "Ballot boxes", box: "Box", opened_yes: "opened", opened_no: "not opened",
    sheets: "Tally sheets", source: "Source", version: "Version", counted: "Counted", by: "By", at: "At", reason: "Reason",
    official: "official", notCounted: "not counted (observer)", superseded: "superseded", noSheets: "No sheet for this box yet.",
    raceOf: "race", others: "Other candidates", showMore: "Show more", independent: "Independent", tied: "Tied", notFound: "Not found",
    error: "Something went wrong", nationalTitle: "Türkiye, all provinces", seeRace: "Race details", winnerThen: "Won in 2019",
    footer: 'sandık · open-source election-night system · <a href="/docs">API</a> · Map data © OpenStreetMap contributors (Apache-2.0 compilation)',
  },
};
let lang = localStorage.getItem("sandik.lang") || "tr";
const t = (k) => (I18N[lang] && I18N[lang][k]) || I18N.en[k] || k;

function fmtInt(n) {
  if (n == null) return "–";
  const s = Math.round(Math.abs(n)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, lang === "tr" ? "." : ",");
  return (n < 0 ? "−" : "") + s;
}
function fmtNum(x, d) {
  const s = Math.abs(x).toFixed(d);
  return lang === "tr" ? s.replace(".", ",") : s;
}
function fmtPct(x, d = 1) {
  if (x == null || Number.isNaN(x)) return "–";
  const v = fmtNum(x * 100, d);
  const sign = x < 0 ? "−" : "";
  return lang === "tr" ? `${sign}%${v}` : `${sign}${v}%`;
}
function fmtPts(p, d = 1, signed = false) {
  if (p == null) return "–";
  const sign = p > 0 && signed ? "+" : p < 0 ? "−" : "";
  return `${sign}${fmtNum(p, d)} ${t("points")}`;
}
function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleTimeString(lang === "tr" ? "tr-TR" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// --- data -----------------------------------------------------------------------
const etags = new Map(); // path -> {etag, data}
// The highest data version this page has seen. Sent with every request so that, behind a load
// balancer, a process that has not yet counted it waits (or answers 503) instead of showing
// older figures than the page already showed (live/follow.py).
let seenVersion = 0;
async function api(path, attempt = 0) {
  const prev = etags.get(path);
  const headers = prev ? { "If-None-Match": prev.etag } : {};
  if (seenVersion) headers["X-Sandik-Min-Version"] = String(seenVersion);
  const r = await fetch(path, { headers });
  const v = Number(r.headers.get("X-Sandik-Version"));
  if (v > seenVersion) seenVersion = v;
  if (r.status === 304 && prev) return prev.data;
  const data = await r.json();
  if (r.status === 503 && data.error && data.error.code === "behind" && attempt < 3) {
    await new Promise((ok) => setTimeout(ok, 1000 * (Number(r.headers.get("Retry-After")) || 1)));
    return api(path, attempt + 1);
  }
  if (!r.ok) {
    const err = new Error((data.error && data.error.message) || r.statusText);
    err.status = r.status;
    throw err;
  }
  const etag = r.headers.get("ETag");
  if (etag) etags.set(path, { etag, data });
  return data;
}

let parties = {}; // code -> {short_name, colour, name}
let mapGeom = null;
let overview = null;
const partyName = (code) => (code === "IND" || code == null ? t("independent") : (parties[code] && parties[code].short_name) || code);
const partyColour = (code) => (parties[code] && parties[code].colour) || "#777777";
const officeName = (o) => t(o);
function raceTitle(r) {
  return `${esc(r.area_name)} · ${esc(officeName(r.office))}`;
}
function chip(code) {
  return `<span class="chip" style="--c:${partyColour(code)}"><span class="sw" aria-hidden="true"></span>${esc(partyName(code))}</span>`;
}
function statusBadge(s, share) {
  const pct = share != null && s === "counting" ? ` · ${fmtPct(share)} ${t("opened")}` : "";
  return `<span class="badge st-${s}">${esc(t(s))}${pct}</span>`;
}

// --- live status ----------------------------------------------------------------
let version = -1;
let renderPending = false;
let rendering = false;
function setLive(state) {
  const el = document.getElementById("live");
  el.className = `live ${state}`;
  el.querySelector(".txt").textContent = t(state);
  el.dataset.state = state;
}
function setHeader(d) {
  if (d.boxes_total != null) {
    const share = d.boxes_total ? d.boxes_opened / d.boxes_total : 0;
    document.getElementById("opened").textContent = `${fmtPct(share)} ${t("opened")} (${fmtInt(d.boxes_opened)} / ${fmtInt(d.boxes_total)})`;
    document.getElementById("opened").dataset.share = share;
  }
  if (d.updated_at) document.getElementById("updated").innerHTML = `${esc(t("updated"))}: <time datetime="${esc(d.updated_at)}">${esc(fmtTime(d.updated_at))}</time>`;
}
function connect() {
  setLive("connecting");
  const es = new EventSource(`${API}/events`);
  es.onopen = () => setLive("live");
  es.onerror = () => setLive("reconnecting");
  es.addEventListener("state", (ev) => {
    setLive("live");
    const d = JSON.parse(ev.data);
    setHeader(d);
    // Refetches for this frame must show at least its version (the server may otherwise
    // answer from the previous snapshot while it builds the new one).
    if (d.version > seenVersion) seenVersion = d.version;
    if (d.version !== version) {
      version = d.version;
      document.body.dataset.version = version;
      scheduleRender();
    }
  });
  // Projections and calls (a new pass, or a call by hand): pages that show them refetch.
  es.addEventListener("projection", (ev) => {
    if (EXTRA_HOOKS.projection && EXTRA_HOOKS.projection(JSON.parse(ev.data))) scheduleRender();
  });
}
function scheduleRender() {
  // Coalesce: at most one render in flight and one queued, however fast the events come.
  if (rendering) {
    renderPending = true;
    return;
  }
  rendering = true;
  route(true)
    .catch(() => {})
    .finally(() => {
      rendering = false;
      if (renderPending) {
        renderPending = false;
        setTimeout(scheduleRender, 250);
      }
    });
}

// --- routing --------------------------------------------------------------------
const main = () => document.getElementById("main");
// Pages and per-page additions registered by extras.js (loaded after this file).
const EXTRA_PAGES = {};
const EXTRA_HOOKS = {};
async function hook(name, ...args) {
  if (EXTRA_HOOKS[name]) await EXTRA_HOOKS[name](...args);
}
// A live redraw replaces the page's elements: remember which one had the keyboard focus
// (by what identifies it: a map area, an id, a link) and give the focus back to its successor.
function focusKey(el, m) {
  if (!el || el === m || !m.contains(el)) return null;
  if (el.dataset && el.dataset.area) return `${el.tagName.toLowerCase()}[data-area="${CSS.escape(el.dataset.area)}"]`;
  if (el.id) return `#${CSS.escape(el.id)}`;
  const href = el.getAttribute("href");
  if (href) return `${el.tagName.toLowerCase()}[href="${CSS.escape(href)}"]`;
  return null;
}
// Kept up to date as the focus moves (not read when a redraw starts: the reader may move the
// focus while the redraw waits for its data), null when it is outside the page's main part.
let lastFocus = null;
let lastFocusAt = 0;
let navStartedAt = 0; // when the latest navigation (not a live redraw) started
document.addEventListener("focusin", (e) => {
  lastFocus = focusKey(e.target, main());
  lastFocusAt = performance.now();
});
// Renders never overlap: two in flight (a live redraw waiting for its data while the reader
// follows a link) interleave their writes to the page, and the older one can put its page back
// over the newer one's, or strip what the newer one added. So renders run one at a time, and a
// render still queued when a newer one is asked for is skipped: the newest request wins. A
// skipped navigation passes its "navigation" (focus to the page) on to the render that runs.
let routeSeq = 0;
let routeChain = Promise.resolve();
let navPending = false;
function route(live = false) {
  const seq = ++routeSeq;
  if (!live) {
    navPending = true;
    navStartedAt = performance.now();
  }
  const run = routeChain.then(() => {
    if (seq !== routeSeq) return;
    const nav = navPending;
    navPending = false;
    return draw(!nav);
  });
  routeChain = run.catch(() => {});
  return run;
}
async function draw(live) {
  const h = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [kind, a, b] = h.split("/");
  const m = main();
  // Restore as soon as the new elements are in (a microtask after the page's innerHTML), and
  // only if the focus was lost with the old element: never take it from where the reader put it.
  const refocus = () => {
    const now = document.activeElement;
    if (!lastFocus || (now && now !== document.body && now.isConnected)) return;
    const el = m.querySelector(lastFocus);
    if (el) el.focus({ preventScroll: true });
  };
  const watch = live ? new MutationObserver(refocus) : null;
  if (watch) watch.observe(m, { childList: true });
  try {
    if (!kind) await home(m, live);
    else if (kind === "area") await areaPage(m, a, live);
    else if (kind === "race") await racePage(m, a, b, live);
    else if (kind === "box") await boxPage(m, a, live);
    else if (EXTRA_PAGES[kind]) await EXTRA_PAGES[kind](m, a, b, live); // extras.js: projections, observers, news
    else await home(m, live);
    m.setAttribute("aria-busy", "false");
    document.body.dataset.page = kind || "home";
    if (live) refocus();
  } catch (e) {
    m.innerHTML = `<div class="error" role="alert"><h1>${esc(e.status === 404 ? t("notFound") : t("error"))}</h1><p>${esc(e.message)}</p><p><a href="#/">${esc(t("home"))}</a></p></div>`;
    m.setAttribute("aria-busy", "false");
  } finally {
    if (watch) watch.disconnect();
  }
}
function crumbs(items) {
  const nav = document.getElementById("crumbs");
  const all = [{ href: "#/", name: t("nationalTitle") }, ...items];
  nav.innerHTML = `<ol>${all
    .map((c, i) => (i === all.length - 1 ? `<li aria-current="page">${esc(c.name)}</li>` : `<li><a href="${c.href}">${esc(c.name)}</a></li>`))
    .join("")}</ol>`;
}
function setTitle(s) {
  document.title = `${s} · sandık`;
}
function focusMain(live) {
  if (live) return;
  // The reader may have moved into the page while it loaded (to a province on the map, say):
  // keep them there, on that element's successor, rather than pull the focus back to the top.
  const el = lastFocus && lastFocusAt > navStartedAt ? main().querySelector(lastFocus) : null;
  (el || main()).focus({ preventScroll: true });
}

// --- pieces ---------------------------------------------------------------------
function candidateRows(r, prev) {
  const prevShare = {};
  if (prev) for (const c of prev.candidates) prevShare[c.party || "IND"] = (prevShare[c.party || "IND"] || 0) + c.share;
  return r.candidates
    .map((c, i) => {
      const key = c.party || "IND";
      const lead = r.leader === c.id;
      const sw = prev && r.valid ? c.share - (prevShare[key] || 0) : null;
      return `<li class="cand${lead ? " lead" : ""}" style="--c:${partyColour(c.party)}">
        <div class="cand-head"><span class="cand-name">${esc(c.name || partyName(c.party))}</span>${chip(key)}${lead ? `<span class="sr-only">, ${esc(t("leader"))}</span>` : ""}</div>
        <div class="bar" role="img" aria-label="${esc(fmtPct(c.share))}"><span style="width:${Math.max(0, Math.min(100, c.share * 100)).toFixed(2)}%"></span></div>
        <div class="cand-figs"><span class="share">${fmtPct(c.share)}</span><span class="votes" data-votes="${c.votes}">${fmtInt(c.votes)} ${esc(t("votes"))}</span>${
          sw != null && i < 8 ? `<span class="swing ${sw >= 0 ? "up" : "down"}">${esc(t("swing"))}: ${fmtPts(sw * 100, 1, true)}</span>` : ""
        }</div></li>`;
    })
    .join("");
}
function figures(r) {
  const items = [
    [t("boxesOpened"), `${fmtInt(r.boxes_opened)} / ${fmtInt(r.boxes_total)} (${fmtPct(r.boxes_opened_share)})`],
    [t("turnout"), fmtPct(r.turnout)],
    [t("votesCast"), fmtInt(r.votes_cast)],
    [t("valid"), fmtInt(r.valid)],
    [t("invalid"), `${fmtInt(r.invalid)} (${fmtPct(r.invalid_rate)})`],
    [t("margin"), r.leader ? `${fmtInt(r.margin_votes)} ${t("votes")} · ${fmtPts(r.margin_points)}` : "–"],
  ];
  return `<dl class="figs">${items.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`).join("")}</dl>`;
}
function compactRow(r, href) {
  const lead = r.candidates[0];
  const s = r.leader ? lead.share : null;
  return `<tr>
    <th scope="row"><a href="${href}">${esc(r.area_name)}</a><div class="sub">${esc(officeName(r.office))}</div></th>
    <td>${r.leader ? `${esc(lead.name || partyName(lead.party))} ${chip(lead.party || "IND")}` : r.tied ? esc(t("tied")) : "–"}</td>
    <td class="num">${s != null ? fmtPct(s) : "–"}<div class="minibar" aria-hidden="true"><span style="width:${((s || 0) * 100).toFixed(1)}%;background:${partyColour(lead && lead.party)}"></span></div></td>
    <td class="num">${r.leader ? fmtPts(r.margin_points) : "–"}</td>
    <td>${statusBadge(r.status, r.boxes_opened_share)}</td></tr>`;
}
function compactTable(caption, rows, hrefOf) {
  if (!rows.length) return "";
  return `<table class="list"><caption>${esc(caption)}</caption><thead><tr><th scope="col">${esc(t("province"))} / ${esc(t("district"))}</th><th scope="col">${esc(t("leader"))}</th><th scope="col" class="num">${esc(t("share"))}</th><th scope="col" class="num">${esc(t("margin"))}</th><th scope="col">${esc(t("status"))}</th></tr></thead><tbody>${rows
    .map((r) => compactRow(r, hrefOf(r)))
    .join("")}</tbody></table>`;
}

// --- home -----------------------------------------------------------------------
async function loadMap() {
  if (!mapGeom) mapGeom = await (await fetch("/static/map/tr-provinces.v1.json")).json();
  return mapGeom;
}
function fillFor(a) {
  if (!a || a.status === "not_started" || !a.leader_party) return { fill: "#d9d9d9", opacity: 1 };
  const strength = Math.min(1, (a.margin_points || 0) / 30);
  const opacity = 0.45 + 0.55 * strength;
  if (a.status === "counting") return { fill: `url(#hatch-${cssId(a.leader_party)})`, opacity };
  return { fill: partyColour(a.leader_party), opacity };
}
const cssId = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, "_");
function mapLabel(a, name) {
  if (!a) return name;
  const lead = a.leader_party ? `${a.leader_name || partyName(a.leader_party)} (${partyName(a.leader_party)}) ${t("leader").toLowerCase()}, ${fmtPct(a.leader_share)}` : t("not_started");
  return `${name}: ${lead}; ${t(a.status)}, ${fmtPct(a.boxes_opened_share)} ${t("opened")}`;
}
function renderMap(geom, ov) {
  const by = Object.fromEntries(ov.areas.map((a) => [a.area_id, a]));
  const used = [...new Set(ov.areas.map((a) => a.leader_party).filter(Boolean))];
  const patterns = used
    .map((p) => `<pattern id="hatch-${cssId(p)}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><rect width="3.2" height="6" fill="${partyColour(p)}"/></pattern>`)
    .join("");
  const paths = geom.areas
    .map((g) => {
      const a = by[g.id];
      const f = fillFor(a);
      return `<path class="prov" d="${g.d}" data-area="${g.id}" data-status="${a ? a.status : "none"}" data-leader="${(a && a.leader_party) || ""}" tabindex="0" role="link" aria-label="${esc(mapLabel(a, g.name))}" style="fill:${f.fill};fill-opacity:${f.opacity}"></path>`;
    })
    .join("");
  return `<svg id="map" class="map" viewBox="0 0 ${geom.width} ${geom.height}" role="group" aria-labelledby="map-title" aria-describedby="map-help"><defs>${patterns}</defs>${paths}</svg>`;
}
function wireMap(root) {
  const tip = document.getElementById("tip");
  root.querySelectorAll("path.prov").forEach((p) => {
    const go = () => (location.hash = `#/area/${p.dataset.area}`);
    p.addEventListener("click", go);
    p.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        go();
      }
    });
    const show = (e) => {
      tip.textContent = p.getAttribute("aria-label");
      tip.hidden = false;
      const r = p.getBoundingClientRect();
      const x = e && e.clientX != null ? e.clientX : r.left + r.width / 2;
      const y = e && e.clientY != null ? e.clientY : r.top;
      tip.style.left = `${Math.min(window.innerWidth - 260, x + 12)}px`;
      tip.style.top = `${y + window.scrollY + 12}px`;
    };
    p.addEventListener("mousemove", show);
    p.addEventListener("focus", () => show(null));
    p.addEventListener("mouseleave", () => (tip.hidden = true));
    p.addEventListener("blur", () => (tip.hidden = true));
  });
}
async function home(m, live) {
  const [geom, ov] = await Promise.all([loadMap(), api(`${API}/overview`)]);
  overview = ov;
  for (const p of ov.election.parties) parties[p.code] = p;
  document.getElementById("election-name").textContent = ov.election.name;
  setHeader(ov);
  crumbs([]);
  setTitle(t("nationalTitle"));
  const used = [...new Set(ov.areas.map((a) => a.leader_party).filter(Boolean))];
  const pv = ov.party_votes.slice(0, 8);
  const top = ov.scoreboards.find((b) => b.group.startsWith("top:"));
  const flips = ov.flips ? Object.entries(ov.flips.flips) : [];
  const rowsTable = ov.areas
    .map((a) => `<tr><th scope="row"><a href="#/area/${a.area_id}">${esc(a.area_name)}</a></th><td>${a.leader_party ? `${esc(a.leader_name || "")} ${chip(a.leader_party)}` : "–"}</td><td class="num">${fmtPct(a.leader_share)}</td><td class="num">${a.leader_party ? fmtPts(a.margin_points) : "–"}</td><td>${statusBadge(a.status, a.boxes_opened_share)}</td><td>${a.previous_winner ? chip(a.previous_winner) : "–"}</td></tr>`)
    .join("");
  const scrollY = window.scrollY;
  const openTable = m.querySelector("details.maptable") && m.querySelector("details.maptable").open;
  m.innerHTML = `
  <h1 class="page-title">${esc(t("nationalTitle"))}</h1>
  <section class="national" aria-label="${esc(t("nationalTitle"))}">
    ${figures({ boxes_opened: ov.boxes_opened, boxes_total: ov.boxes_total, boxes_opened_share: ov.boxes_opened_share, turnout: ov.turnout, votes_cast: ov.votes_cast, valid: null, invalid: null, leader: null }).replace(/<div><dt>[^<]*<\/dt><dd>–[^<]*<\/dd><\/div>/g, "")}
  </section>
  <div class="home-grid">
    <section class="map-wrap" aria-labelledby="map-title">
      <h2 id="map-title">${esc(t("mapTitle"))}</h2>
      <p id="map-help" class="help">${esc(t("mapHelp"))}</p>
      ${renderMap(geom, ov)}
      <ul class="legend">${used.map((p) => `<li>${chip(p)}</li>`).join("")}
        <li><span class="key hatch" aria-hidden="true"></span>${esc(t("hatched"))}</li>
        <li><span class="key grey" aria-hidden="true"></span>${esc(t("grey"))}</li>
        <li><span class="key solid" aria-hidden="true"></span>${esc(t("solid"))}</li></ul>
      <details class="maptable"${openTable ? " open" : ""}><summary>${esc(t("mapTable"))}</summary>
        <table class="list"><caption class="sr-only">${esc(t("mapTable"))}</caption><thead><tr><th scope="col">${esc(t("province"))}</th><th scope="col">${esc(t("leader"))}</th><th scope="col" class="num">${esc(t("share"))}</th><th scope="col" class="num">${esc(t("margin"))}</th><th scope="col">${esc(t("status"))}</th><th scope="col">${esc(t("winnerThen"))}</th></tr></thead><tbody>${rowsTable}</tbody></table>
      </details>
    </section>
    <aside class="side">
      <section aria-labelledby="sb-title"><h2 id="sb-title">${esc(t("scoreboard"))}</h2>
        ${top ? `<table class="score"><thead><tr><th scope="col">${esc(t("party"))}</th><th scope="col" class="num">${esc(t("won"))}</th><th scope="col" class="num">${esc(t("leading"))}</th><th scope="col" class="num">${esc(t("total"))}</th></tr></thead><tbody>${top.parties
          .map((l) => `<tr><th scope="row">${chip(l.party)}</th><td class="num">${l.won}</td><td class="num">${l.leading}</td><td class="num"><strong>${l.total}</strong></td></tr>`)
          .join("")}</tbody></table>` : ""}
      </section>
      <section aria-labelledby="pv-title"><h2 id="pv-title">${esc(t("partyVotes"))}</h2>
        <ol class="pv">${pv
          .map((p) => `<li style="--c:${partyColour(p.party)}">${chip(p.party)}<div class="bar" role="img" aria-label="${esc(fmtPct(p.share))}"><span style="width:${(p.share * 100).toFixed(2)}%"></span></div><span class="share">${fmtPct(p.share)}</span> <span class="votes">${fmtInt(p.votes)}</span></li>`)
          .join("")}</ol>
      </section>
      <section aria-labelledby="fl-title"><h2 id="fl-title">${esc(t("flips"))}</h2>
        ${flips.length ? `<ul class="flips">${flips.map(([k, n]) => { const [a, b] = k.split("->"); return `<li>${chip(a)} → ${chip(b)}: <strong>${n}</strong></li>`; }).join("")}</ul>` : `<p>${esc(t("noFlips"))}</p>`}
      </section>
    </aside>
  </div>`;
  wireMap(m);
  await hook("home", m, ov, live);
  if (live) window.scrollTo(0, scrollY);
  else focusMain(live);
}

// --- area -----------------------------------------------------------------------
async function areaPage(m, areaId, live) {
  if (!Object.keys(parties).length) for (const p of (await api(`${API}/parties`)).parties) parties[p.code] = p;
  const av = await api(`${API}/areas/${encodeURIComponent(areaId)}`);
  const a = av.area;
  crumbs([...av.parents.filter((p) => p.kind !== "country").map((p) => ({ href: `#/area/${p.id}`, name: p.name })), { name: a.name }]);
  setTitle(a.name);
  // The area's own top race (metropolitan/provincial mayor for a province, district mayor for a district).
  const main_ = av.races.find((r) => r.race_id === av.main_race_id);
  const own = av.races.filter((r) => r.area_id === a.id || r === main_);
  let detail = null;
  if (main_) detail = await api(`${API}/races/${encodeURIComponent(main_.race_id)}/results?area=${encodeURIComponent(main_.area_id)}`);
  const below = av.races.filter((r) => r !== main_ && r.race_area_id !== a.id && r.race_area_id.startsWith(a.id + "."));
  const above = own.filter((r) => r !== main_);
  const scrollY = window.scrollY;
  m.innerHTML = `
  <h1 class="page-title">${esc(a.name)} <span class="kind">${esc(t(a.kind))}</span></h1>
  ${detail ? raceBlock(detail, true) : ""}
  ${above.length ? compactTable(t("racesHere"), above, (r) => `#/race/${r.race_id}/${a.id}`) : ""}
  ${compactTable(t("districts"), below, (r) => `#/race/${r.race_id}`)}
  ${av.children.length && !below.length ? `<h2>${esc(t("districts"))}</h2><ul class="children">${av.children.map((c) => `<li><a href="#/area/${c.id}">${esc(c.name)}</a></li>`).join("")}</ul>` : ""}`;
  await hook("area", m, av, live);
  if (live) window.scrollTo(0, scrollY);
  else focusMain(live);
}
function raceBlock(rv, linkToRace) {
  const r = rv.result;
  const prev = rv.previous;
  const sameArea = r.area_id === rv.race.area_id;
  return `<section class="race" aria-labelledby="race-${cssId(r.race_id)}">
    <h2 id="race-${cssId(r.race_id)}">${esc(officeName(r.office))}${sameArea ? "" : ` · ${esc(rv.race.area_name)} ${esc(t("raceOf"))}`} ${statusBadge(r.status, r.boxes_opened_share)}</h2>
    ${figures(r)}
    <div class="race-grid">
      <div><ol class="cands">${candidateRows({ ...r, candidates: r.candidates.slice(0, 6) }, sameArea ? prev : null)}</ol>
      ${r.candidates.length > 6 ? `<details class="others"><summary>${esc(t("others"))} (${r.candidates.length - 6})</summary><ol class="cands small" start="7">${candidateRows({ ...r, candidates: r.candidates.slice(6) }, null)}</ol></details>` : ""}</div>
      ${prev && sameArea ? `<div class="prev"><h3>${esc(t("previous"))}</h3><ol class="cands small">${prev.candidates.slice(0, 5).map((c) => `<li style="--c:${partyColour(c.party)}"><div class="cand-head"><span class="cand-name">${esc(c.name || partyName(c.party))}</span>${chip(c.party || "IND")}</div><div class="bar"><span style="width:${(c.share * 100).toFixed(2)}%"></span></div><div class="cand-figs"><span class="share">${fmtPct(c.share)}</span><span class="votes">${fmtInt(c.votes)}</span></div></li>`).join("")}</ol></div>` : ""}
    </div>
    ${linkToRace ? `<p><a class="more" href="#/race/${r.race_id}${sameArea ? "" : "/" + r.area_id}">${esc(t("seeRace"))} →</a></p>` : ""}
  </section>`;
}

// --- race -----------------------------------------------------------------------
let boxLimit = 100;
async function racePage(m, raceId, areaId, live) {
  if (!Object.keys(parties).length) for (const p of (await api(`${API}/parties`)).parties) parties[p.code] = p;
  const q = areaId ? `?area=${encodeURIComponent(areaId)}` : "";
  const rv = await api(`${API}/races/${encodeURIComponent(raceId)}/results${q}`);
  const r = rv.result;
  const boxes = await api(`${API}/races/${encodeURIComponent(raceId)}/boxes?${areaId ? `area=${encodeURIComponent(areaId)}&` : ""}limit=${boxLimit}`);
  crumbs([...rv.parents.filter((p) => p.kind !== "country").map((p) => ({ href: `#/area/${p.id}`, name: p.name })), { href: `#/area/${r.area_id}`, name: r.area_name }, { name: officeName(r.office) }]);
  setTitle(`${r.area_name} · ${officeName(r.office)}`);
  const scrollY = window.scrollY;
  const candIdx = boxes.candidates;
  m.innerHTML = `
  <h1 class="page-title">${raceTitle(r)}</h1>
  ${raceBlock(rv, false)}
  ${compactTable(t("byArea"), rv.children, (c) => `#/race/${rv.race.id}/${c.area_id}`)}
  <section aria-labelledby="boxes-title"><h2 id="boxes-title">${esc(t("boxes"))} (${fmtInt(boxes.total)})</h2>
    <table class="list boxes"><thead><tr><th scope="col">${esc(t("box"))}</th><th scope="col">${esc(t("district"))}</th><th scope="col" class="num">${esc(t("registered"))}</th><th scope="col">${esc(t("status"))}</th><th scope="col" class="num">${esc(t("valid"))}</th><th scope="col">${esc(t("leader"))}</th></tr></thead><tbody>${boxes.boxes
      .map((b) => `<tr data-box="${esc(b.box_id)}"><th scope="row"><a href="#/box/${encodeURIComponent(b.box_id)}">${esc(b.number)}</a></th><td>${esc(b.area_name)}</td><td class="num">${fmtInt(b.registered)}</td><td>${b.opened ? esc(t("opened_yes")) : esc(t("opened_no"))}</td><td class="num">${b.opened ? fmtInt(b.valid) : "–"}</td><td>${b.leader_party ? chip(b.leader_party) : "–"}</td></tr>`)
      .join("")}</tbody></table>
    ${boxes.total > boxes.boxes.length ? `<button type="button" class="more" id="more-boxes">${esc(t("showMore"))}</button>` : ""}
  </section>`;
  void candIdx;
  await hook("race", m, rv, areaId, live);
  const more = document.getElementById("more-boxes");
  if (more)
    more.addEventListener("click", () => {
      boxLimit += 400;
      route(true);
    });
  if (live) window.scrollTo(0, scrollY);
  else focusMain(live);
}

// --- box ------------------------------------------------------------------------
async function boxPage(m, boxId, live) {
  if (!Object.keys(parties).length) for (const p of (await api(`${API}/parties`)).parties) parties[p.code] = p;
  const bv = await api(`${API}/boxes/${encodeURIComponent(boxId)}`);
  const b = bv.box;
  crumbs([...bv.parents.filter((p) => p.kind !== "country").map((p) => ({ href: `#/area/${p.id}`, name: p.name })), { name: `${t("box")} ${b.number}` }]);
  setTitle(`${t("box")} ${b.number}`);
  const byRace = {};
  for (const s of bv.sheets) (byRace[s.race_id] = byRace[s.race_id] || []).push(s);
  m.innerHTML = `<h1 class="page-title">${esc(t("box"))} ${esc(b.number)} <span class="kind">${esc(b.area_name)}</span></h1>
  <p>${esc(t("registered"))}: ${fmtInt(b.registered)}</p>
  ${bv.races
    .map((r) => {
      const sheets = byRace[r.id] || [];
      return `<section><h2><a href="#/race/${r.id}">${esc(officeName(r.office))}</a></h2>${
        sheets.length
          ? `<table class="list sheets"><caption>${esc(t("sheets"))}</caption><thead><tr><th scope="col">${esc(t("source"))}</th><th scope="col">${esc(t("version"))}</th><th scope="col">${esc(t("counted"))}</th><th scope="col" class="num">${esc(t("valid"))}</th><th scope="col">${esc(t("votes"))}</th><th scope="col">${esc(t("by"))}</th><th scope="col">${esc(t("at"))}</th><th scope="col">${esc(t("reason"))}</th></tr></thead><tbody>${sheets
              .map((s) => `<tr class="${s.counted ? "counted" : ""}"><td>${s.source === "official" ? esc(t("official")) : esc(s.source)}</td><td class="num">${s.version}</td><td>${s.counted ? "✔ " + esc(t("counted")) : s.source === "official" ? esc(t("superseded")) : esc(t("notCounted"))}</td><td class="num">${fmtInt(s.valid)}</td><td>${Object.entries(s.votes).filter(([, v]) => v > 0).map(([k, v]) => `${esc(k)} ${fmtInt(v)}`).join(", ")}</td><td>${esc(s.submitted_by)}</td><td>${esc(fmtTime(s.received_at))}</td><td>${esc(s.reason)}</td></tr>`)
              .join("")}</tbody></table>`
          : `<p>${esc(t("noSheets"))}</p>`
      }</section>`;
    })
    .join("")}`;
  await hook("box", m, bv, live);
  focusMain(live);
}

// --- search ---------------------------------------------------------------------
function wireSearch() {
  const input = document.getElementById("q");
  const list = document.getElementById("search-results");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (!q) {
        list.hidden = true;
        return;
      }
      const res = await api(`${API}/areas?q=${encodeURIComponent(q)}&limit=8`);
      list.innerHTML = res.areas.map((a) => `<li><a href="#/area/${a.id}">${esc(a.name)} <span class="kind">${esc(t(a.kind))}</span></a></li>`).join("");
      list.hidden = !res.areas.length;
    }, 150);
  });
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const first = list.querySelector("a");
    if (first) location.hash = first.getAttribute("href");
  });
  list.addEventListener("click", () => {
    list.hidden = true;
    input.value = "";
  });
}

// --- language -------------------------------------------------------------------
function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  document.querySelectorAll("[data-i18n-html]").forEach((el) => (el.innerHTML = t(el.dataset.i18nHtml)));
  document.querySelectorAll("[data-i18n-ph]").forEach((el) => (el.placeholder = t(el.dataset.i18nPh)));
  document.querySelectorAll("[data-i18n-aria]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.i18nAria)));
  document.querySelectorAll(".lang button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  const live = document.getElementById("live");
  if (live.dataset.state) setLive(live.dataset.state);
}
document.querySelectorAll(".lang button").forEach((b) =>
  b.addEventListener("click", () => {
    lang = b.dataset.lang;
    localStorage.setItem("sandik.lang", lang);
    applyLang();
    if (overview) setHeader(overview);
    route(true);
  })
);

window.addEventListener("hashchange", () => {
  boxLimit = 100;
  document.getElementById("tip").hidden = true;
  route(false);
});
// Started once every script has run, so that the pages of extras.js are known to the first route.
window.addEventListener("DOMContentLoaded", () => {
  applyLang();
  wireSearch();
  route(false).then(connect);
});
