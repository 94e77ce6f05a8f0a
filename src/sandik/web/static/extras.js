/* sandik website, part 2: projections and calls, observers and forensics, news. Loaded after app.js,
 * whose helpers (t, esc, api, chip, fmtPct, fmtInt, ...) and hooks (EXTRA_PAGES, EXTRA_HOOKS) it uses.
 *
 *   race page      + the projection (clearly an estimate), its intervals and P(win), and the race's call
 *   home           + called races, and a short written summary (with the figures behind each sentence)
 *   area page      + the summary of the area
 *   #/discrepancies         official sheets vs observers' copies, largest effect on the margin first
 *   #/observe/<box id>      a box's official sheet and each organisation's copy side by side
 *   #/fingerprint           the turnout x winner-share picture and the forensic flags
 *   #/check                 paste an article: each claim highlighted by verdict
 */
"use strict";

Object.assign(I18N.tr, {
  navResults: "Sonuçlar", navDisc: "Tutanak farkları", navFp: "Parmak izi", navCheck: "Haber doğrulama",
  projection: "Projeksiyon", estimate: "TAHMİN · kesin sonuç değildir",
  projNote: "Şimdiye kadar sayılan oylardan ve önceki seçimden yapılan istatistiksel bir tahmindir. Beklenen oyların {p} kadarı sayıldı. Aralıklar, kesin sonucun bu olasılıkla içinde kalacağı tahmin edilen aralıklardır.",
  projShare: "Tahmini oy oranı", interval: "aralığı", pwin: "Kazanma olasılığı", projMargin: "Tahmini fark",
  projPending: "Projeksiyon hesaplanıyor…", projComplete: "Sayım tamamlandı: bu yarışın sonucu kesindir, tahmin değil.",
  projWhyPrior: "Bu yarışta henüz çok az sandık sayıldı: tahmin, başka yarışlarda görülen oy değişiminden geliyor. Aralıklar bu yüzden geniştir ve model kazanan tahmini yapmaz.",
  projWhyNoBase: "Bu yarışın önceki seçimde karşılığı yok: oy değişimi ölçülemiyor. Aralıklar bu yüzden geniştir ve model kazanan tahmini yapmaz.",
  projWhySkewed: "Şimdiye kadar sayılan sandıklar henüz sayılmayanlara benzemiyor: tahmin, sayılmayan sandıklar hakkındaki model varsayımlarına daha çok dayanıyor ve aralıklar daha geniştir.",
  projectedWinner: "Kazanan tahmini", calledBy: "Nasıl", lock: "kesin (kalan oylar sonucu değiştiremez)", statistical: "istatistiksel (model, yüksek güvenle)", manual: "elle (yönetici kararı)",
  calledRaces: "Kazanan tahmini yapılan yarışlar", noCalls: "Henüz kazanan tahmini yapılan yarış yok.", race: "Yarış", calledAt: "Zaman",
  summary: "Özet", figuresBehind: "Dayandığı rakamlar",
  discTitle: "Resmî tutanaklar ve gözlemci kopyaları arasındaki farklar", discNote: "Bir fark, aynı tutanağın iki kopyasının birbirini tutmadığı anlamına gelir; kimsenin hile yaptığı anlamına gelmez. Farklar, kazananın oy farkına etkisine göre sıralanmıştır.",
  noDisc: "Açık fark yok.", org: "Gözlemci kuruluşu", effect: "Farka etkisi", fields: "Farklı alanlar", impacts: "Yarışlara etkisi", couldChange: "Kazananı değiştirebilir", no: "hayır", yes: "EVET",
  compare: "Karşılaştır", observeTitle: "Sandık: resmî tutanak ve gözlemci kopyaları", field: "Alan", differs: "farklı", same: "aynı", observerCopies: "Gözlemci kopyaları",
  registered_voters: "Kayıtlı seçmen", voted: "Oy kullanan", voted_listed: "Listeye göre oy kullanan", voted_by_law: "Kanun gereği oy kullanan", total_voters: "Oy kullanan toplam", ballots_used: "Kullanılan zarf", valid_unchallenged: "İtirazsız geçerli", valid_challenged: "İtirazlı geçerli", history: "Geçmiş", status_open: "açık", status_under_review: "inceleniyor", status_resolved: "çözüldü", status_dismissed: "kapatıldı",
  fpTitle: "Parmak izi: katılım × kazananın oy oranı", fpHelp: "Her nokta bir grup sandıktır: yatay eksen katılım, dikey eksen kazananın oy oranı. Sağ üst köşede yoğun bir küme, dikkatle bakılması gereken sandıklar olabilir.",
  notAccusation: "Bir işaret, bir tutanağın yeniden bakılacak kadar olağandışı olduğunu söyler. Suçlama değildir: dürüst sandıklar da olağandışı olabilir ve çoğu işaretin masum bir açıklaması vardır.",
  flags: "İşaretlenen tutanaklar", tier: "Düzey", signals: "İşaretler", asOf: "Sürüm", integerTest: "Tam sayı testi", lastDigit: "Son rakam testi",
  checkTitle: "Haber doğrulama", checkHelp: "Bir haberin metnini yapıştırın: sayılar ve sonuçlar hakkındaki her iddia, seçim verisiyle karşılaştırılır.",
  articleLabel: "Haber metni", checkBtn: "Doğrula", supported: "doğru", contradicted: "yanlış", not_checkable: "doğrulanamaz", actual: "Veri",
  verdict: "Sonuç", claims: "İddialar", unlinked: "Eşleşmeyen adlar", foreign: "Yurt dışı yerler", legendV: "Renk tek işaret değildir: her iddianın yanında ✓, ✗ ya da ? vardır.",
});
Object.assign(I18N.en, {
  navResults: "Results", navDisc: "Sheet discrepancies", navFp: "Fingerprint", navCheck: "Fact check",
  projection: "Projection", estimate: "ESTIMATE · not a result",
  projNote: "A statistical estimate from the votes counted so far and the previous election. {p} of the expected vote is counted. Intervals are where the final result is estimated to fall with that probability.",
  projShare: "Projected share", interval: "interval", pwin: "Chance of winning", projMargin: "Projected margin",
  projPending: "Projection being computed…", projComplete: "Count complete: this race's result is final, not an estimate.",
  projWhyPrior: "Very few boxes of this race are counted yet: the estimate comes from the swing seen in other races. Its intervals are wide for that reason, and the model makes no call.",
  projWhyNoBase: "This race has no counterpart in the previous election, so its swing cannot be measured. Its intervals are wide for that reason, and the model makes no call.",
  projWhySkewed: "The boxes counted so far are unlike those still out: the estimate leans more on the model's assumptions about the boxes still out, and its intervals are wider.",
  projectedWinner: "Projected winner", calledBy: "How", lock: "certain (the votes left cannot change it)", statistical: "statistical (model, high confidence)", manual: "by hand (desk decision)",
  calledRaces: "Races with a projected winner", noCalls: "No race has a projected winner yet.", race: "Race", calledAt: "At",
  summary: "Summary", figuresBehind: "Figures behind it",
  discTitle: "Discrepancies between official sheets and observers' copies", discNote: "A discrepancy means two copies of the same sheet disagree; it does not mean anyone cheated. Listed by their effect on the winner's margin.",
  noDisc: "No open discrepancy.", org: "Observer organisation", effect: "Effect on margin", fields: "Fields that differ", impacts: "Effect on races", couldChange: "Could change the winner", no: "no", yes: "YES",
  compare: "Compare", observeTitle: "Box: the official sheet and observers' copies", field: "Field", differs: "differs", same: "same", observerCopies: "Observers' copies",
  registered_voters: "Registered", voted: "Voted", voted_listed: "Voted (on the list)", voted_by_law: "Voted by law", total_voters: "Total voters", ballots_used: "Ballots used", valid_unchallenged: "Valid, unchallenged", valid_challenged: "Valid, challenged", history: "History", status_open: "open", status_under_review: "under review", status_resolved: "resolved", status_dismissed: "dismissed",
  fpTitle: "Fingerprint: turnout × winner's share", fpHelp: "Each cell is a group of boxes: turnout across, the winner's share up. A dense cluster in the top right corner may be boxes worth a second look.",
  notAccusation: "A flag says a sheet is unusual enough to be looked at again. It is not an accusation: honest boxes can be unusual, and most flags have an innocent explanation.",
  flags: "Flagged sheets", tier: "Tier", signals: "Signals", asOf: "Version", integerTest: "Integer test", lastDigit: "Last-digit test",
  checkTitle: "Fact check", checkHelp: "Paste an article: every claim about figures and results is compared with the election data.",
  articleLabel: "Article text", checkBtn: "Check", supported: "supported", contradicted: "contradicted", not_checkable: "not checkable", actual: "Data",
  verdict: "Verdict", claims: "Claims", unlinked: "Names not found", foreign: "Places abroad", legendV: "Colour is not the only sign: every claim carries ✓, ✗ or ?.",
});
const tf = (k, vars) => t(k).replace(/\{(\w+)\}/g, (_, n) => vars[n]);
const VMARK = { supported: "✓", contradicted: "✗", not_checkable: "?" };

// --- projections and calls ----------------------------------------------------------
// Why a projection is less certain than usual (the API's `uncertainty` codes), in the reader's language.
const WHY = { few_units: "projWhyPrior", no_baseline: "projWhyNoBase", arrival_far_from_random: "projWhySkewed" };
function projWhy(p) {
  return (p.uncertainty || [])
    .filter((c) => WHY[c])
    .map((c) => `<p class="proj-why" data-why="${WHY[c]}">${esc(t(WHY[c]))}</p>`)
    .join("");
}
let calls = null; // race id -> standing call (refetched on every projection event)
async function standingCalls() {
  const d = await api(`${API}/calls`);
  calls = Object.fromEntries(d.calls.map((c) => [c.race_id, c]));
  return calls;
}
function callHow(c) {
  const how = esc(t(c.kind));
  return c.kind === "manual" ? `${how}: ${esc(c.reason)} (${esc(c.actor)})` : how;
}
function callBlock(c, cands) {
  const name = (cands && cands[c.candidate]) || c.candidate_name || c.candidate;
  return `<div class="call" role="status" data-kind="${esc(c.kind)}"><strong>${esc(t("projectedWinner"))}: ${esc(name)}</strong>${c.party ? " " + chip(c.party) : ""}
    <span class="how">${esc(t("calledBy"))}: ${callHow(c)} · <time datetime="${esc(c.at)}">${esc(fmtTime(c.at))}</time></span></div>`;
}
function ivBar(lo, hi, pt) {
  // The 90% interval as a bar on a 0..100% scale, the point as a tick; the numbers are beside it in text.
  return `<span class="ivbar" aria-hidden="true"><span class="iv" style="left:${(lo * 100).toFixed(2)}%;width:${Math.max(0.5, (hi - lo) * 100).toFixed(2)}%"></span><span class="pt" style="left:${(pt * 100).toFixed(2)}%"></span></span>`;
}
const ivText = (iv) => `${fmtPct(iv[0])} – ${fmtPct(iv[1])}`;

EXTRA_HOOKS.race = async (m, rv, areaId, live) => {
  const r = rv.result;
  if (areaId && areaId !== rv.race.area_id) return; // the projection is of the whole race
  const host = document.createElement("section");
  host.className = "projection";
  host.setAttribute("aria-labelledby", "proj-title");
  host.dataset.testid = "projection";
  const names = Object.fromEntries(r.candidates.map((c) => [c.id, c.name || partyName(c.party)]));
  const partyOf = Object.fromEntries(r.candidates.map((c) => [c.id, c.party || "IND"]));
  let p = null;
  try {
    p = (await api(`${API}/races/${encodeURIComponent(rv.race.id)}/projection`)).projection;
  } catch (e) {
    if (e.status !== 503) throw e;
  }
  const cs = await standingCalls();
  const c = cs[rv.race.id];
  let body;
  if (!p) body = `<p class="help">${esc(t("projPending"))}</p>`;
  else if (p.mode === "complete") body = `<p>${esc(t("projComplete"))}</p>`;
  else
    body = `<p class="proj-note">${esc(tf("projNote", { p: fmtPct(p.pct_expected_vote_counted) }))}</p>${projWhy(p)}
    <table class="list proj"><caption class="sr-only">${esc(t("projection"))}</caption><thead><tr><th scope="col">${esc(t("candidate"))}</th><th scope="col" class="num">${esc(t("projShare"))}</th><th scope="col">90% ${esc(t("interval"))}</th><th scope="col" class="num">80%</th><th scope="col" class="num">95%</th><th scope="col" class="num">99%</th><th scope="col" class="num">${esc(t("pwin"))}</th></tr></thead><tbody>${p.candidates
      .slice(0, 8)
      .map((k) => `<tr data-cand="${esc(k.id)}"><th scope="row">${esc(names[k.id] || k.id)} ${chip(partyOf[k.id])}</th><td class="num">${fmtPct(k.share)}</td><td class="ivcell">${ivBar(k.share_interval["90"][0], k.share_interval["90"][1], k.share)} <span>${ivText(k.share_interval["90"])}</span></td><td class="num">${ivText(k.share_interval["80"])}</td><td class="num">${ivText(k.share_interval["95"])}</td><td class="num">${ivText(k.share_interval["99"])}</td><td class="num pwin">${fmtPct(k.p_win)}</td></tr>`)
      .join("")}</tbody></table>
    <p>${esc(t("projMargin"))}: ${fmtPts(p.margin_points)} (90%: ${fmtPts(p.margin_points_interval["90"][0])} – ${fmtPts(p.margin_points_interval["90"][1])})</p>`;
  host.innerHTML = `<h2 id="proj-title">${esc(t("projection"))} <span class="badge est">${esc(t("estimate"))}</span></h2>${c ? callBlock(c, names) : ""}${body}`;
  m.querySelectorAll("section.projection").forEach((x) => x.remove()); // one, even if a live frame re-ran this hook
  const anchor = m.querySelector("section.race");
  if (anchor) anchor.after(host);
  else m.prepend(host);
};

EXTRA_HOOKS.projection = (d) => {
  const page = document.body.dataset.page;
  if (page === "race") return true;
  if (page === "home" && d.calls && d.calls.length) return true;
  return false;
};

async function summaryBlock(areaId) {
  try {
    const s = await api(`${API}/news/summary?lang=${lang}${areaId ? `&area=${encodeURIComponent(areaId)}` : ""}`);
    if (!s.sentences.length) return "";
    return `<section class="summary" aria-labelledby="sum-title"><h2 id="sum-title">${esc(t("summary"))}</h2><p>${s.sentences
      .map((x, i) => `<span class="sent" tabindex="0" aria-describedby="sf-${i}">${esc(x.text)}</span><span id="sf-${i}" class="sr-only">${esc(t("figuresBehind"))}: ${esc(JSON.stringify(x.facts))}</span>`)
      .join(" ")}</p><details><summary>${esc(t("figuresBehind"))}</summary><ol class="figs-behind">${s.sentences.map((x) => `<li><q>${esc(x.text)}</q><pre>${esc(JSON.stringify(x.facts, null, 1))}</pre><small>${esc(x.source)}</small></li>`).join("")}</ol></details></section>`;
  } catch (e) {
    return ""; // no results yet for a summary: the page stands without it
  }
}

EXTRA_HOOKS.home = async (m, ov) => {
  const cs = Object.values(await standingCalls());
  const byParty = {};
  for (const c of cs) byParty[c.party || "IND"] = (byParty[c.party || "IND"] || 0) + 1;
  const sec = document.createElement("section");
  sec.className = "calls";
  sec.setAttribute("aria-labelledby", "calls-title");
  sec.innerHTML = `<h2 id="calls-title">${esc(t("calledRaces"))} (${cs.length})</h2>${
    cs.length
      ? `<ul class="flips">${Object.entries(byParty).sort((a, b) => b[1] - a[1]).map(([p, n]) => `<li>${chip(p)}: <strong>${n}</strong></li>`).join("")}</ul>
    <table class="list"><thead><tr><th scope="col">${esc(t("race"))}</th><th scope="col">${esc(t("projectedWinner"))}</th><th scope="col">${esc(t("calledBy"))}</th></tr></thead><tbody>${cs
      .slice(0, 30)
      .map((c) => `<tr><th scope="row"><a href="#/race/${esc(c.race_id)}">${esc(c.area_name)} · ${esc(t(c.office))}</a></th><td>${esc(c.candidate_name || c.candidate)} ${chip(c.party || "IND")}</td><td>${callHow(c)}</td></tr>`)
      .join("")}</tbody></table>`
      : `<p>${esc(t("noCalls"))}</p>`
  }`;
  const side = m.querySelector("aside.side") || m;
  // The hook is async and a live frame can run it again before this call ends: keep one section.
  m.querySelectorAll("section.calls").forEach((x) => x.remove());
  side.prepend(sec);
  const sum = await summaryBlock(null);
  m.querySelectorAll("section.summary").forEach((x) => x.remove());
  if (sum) m.querySelector(".national").insertAdjacentHTML("afterend", sum);
};

EXTRA_HOOKS.area = async (m, av) => {
  const sum = await summaryBlock(av.area.id);
  m.querySelectorAll("section.summary").forEach((x) => x.remove());
  if (sum) m.querySelector(".page-title").insertAdjacentHTML("afterend", sum);
};

EXTRA_HOOKS.box = async (m, bv) => {
  m.querySelectorAll("p.observe-link").forEach((x) => x.remove());
  m.querySelector(".page-title").insertAdjacentHTML("afterend", `<p class="observe-link"><a href="#/observe/${encodeURIComponent(bv.box.id)}">${esc(t("observeTitle"))} →</a></p>`);
};

// --- discrepancies ---------------------------------------------------------------------
const statusName = (s) => t(`status_${s}`);
EXTRA_PAGES.discrepancies = async (m, _a, _b, live) => {
  if (!Object.keys(parties).length) for (const p of (await api(`${API}/parties`)).parties) parties[p.code] = p;
  const d = await api(`${API}/discrepancies?limit=500`);
  const y = window.scrollY;
  crumbs([{ name: t("navDisc") }]);
  setTitle(t("navDisc"));
  m.innerHTML = `<h1 class="page-title">${esc(t("discTitle"))}</h1>
  <p class="note" role="note">${esc(t("discNote"))}</p>
  ${d.impacts.length ? `<h2>${esc(t("impacts"))}</h2><table class="list impacts"><thead><tr><th scope="col">${esc(t("race"))}</th><th scope="col" class="num">${esc(t("effect"))}</th><th scope="col">${esc(t("couldChange"))}</th></tr></thead><tbody>${d.impacts
    .map((i) => `<tr><th scope="row"><a href="#/race/${esc(i.race_id)}">${esc(i.race_name)}</a></th><td class="num">${fmtInt(i.sum_abs_effect)}</td><td>${i.could_change_winner ? `<strong class="warn">${esc(t("yes"))}</strong>` : esc(t("no"))}</td></tr>`)
    .join("")}</tbody></table>` : ""}
  <h2>${esc(t("navDisc"))} (${fmtInt(d.total)})</h2>
  ${d.discrepancies.length ? `<table class="list disc"><thead><tr><th scope="col">${esc(t("box"))}</th><th scope="col">${esc(t("race"))}</th><th scope="col">${esc(t("org"))}</th><th scope="col" class="num">${esc(t("effect"))}</th><th scope="col">${esc(t("fields"))}</th><th scope="col">${esc(t("status"))}</th><th scope="col"></th></tr></thead><tbody>${d.discrepancies
    .map((x) => `<tr data-box="${esc(x.box_id)}"><th scope="row">${esc(x.area_name || "")} · ${esc(x.box_number)}</th><td><a href="#/race/${esc(x.race_id)}">${esc(x.race_id)}</a></td><td>${esc(x.org)}</td><td class="num">${fmtInt(x.effect_on_margin)}</td><td>${(x.detail.diffs || []).map((f) => `${esc(f.field)}: ${esc(f.official)} ≠ ${esc(f.observer)}`).join("; ")}</td><td>${esc(statusName(x.status))}</td><td><a href="#/observe/${encodeURIComponent(x.box_id)}">${esc(t("compare"))} →</a></td></tr>`)
    .join("")}</tbody></table>` : `<p>${esc(t("noDisc"))}</p>`}
  <p><a href="${API}/discrepancies.csv" download>CSV</a></p>`;
  if (live) window.scrollTo(0, y);
  focusMain(live);
};

EXTRA_PAGES.observe = async (m, boxId, _b, live) => {
  if (!Object.keys(parties).length) for (const p of (await api(`${API}/parties`)).parties) parties[p.code] = p;
  const d = await api(`${API}/boxes/${encodeURIComponent(boxId)}/observers`);
  const y = window.scrollY;
  const b = d.box;
  crumbs([{ href: "#/discrepancies", name: t("navDisc") }, { href: `#/box/${encodeURIComponent(b.id)}`, name: `${t("box")} ${b.number}` }, { name: t("compare") }]);
  setTitle(`${t("box")} ${b.number} · ${t("compare")}`);
  const FIELDS = [["registered", "registered_voters"], ["voted", "voted"], ["valid", "valid"], ["invalid", "invalid"]];
  const races = d.races
    .map((r) => {
      const srcs = Object.keys(r.copies).sort((a, b2) => (a === "official" ? -1 : b2 === "official" ? 1 : a.localeCompare(b2)));
      const off = r.copies.official;
      // Every count field of the sheet (registered, voted, ballots used, valid, invalid, ...), then each candidate.
      const named = Object.fromEntries(FIELDS);
      const counts = off ? Object.keys(off).filter((f) => typeof off[f] === "number" && f !== "version") : [];
      const rows = [...counts.map((f) => [f, named[f] ? t(named[f]) : t(f), (cp) => cp[f]]), ...r.candidates.map((c) => [`votes:${c}`, `${r.candidate_names[c] || c}`, (cp) => cp.votes[c]])];
      const cell = (src, key, v) => {
        const diff = src !== "official" && (r.differs[src] || []).includes(key);
        return `<td class="num${diff ? " diff" : ""}">${v == null ? "–" : fmtInt(v)}${diff ? ` <span class="difftag">≠ ${esc(t("differs"))}</span>` : ""}</td>`;
      };
      return `<section><h2>${esc(t(r.office))} · ${esc(r.race_name)}</h2>
      <table class="list side-by-side"><thead><tr><th scope="col">${esc(t("field"))}</th>${srcs.map((s) => `<th scope="col" class="num">${s === "official" ? esc(t("official")) : esc(s)}<br><small>v${r.copies[s].version}</small></th>`).join("")}</tr></thead><tbody>${rows
        .map(([key, label, get]) => `<tr><th scope="row">${esc(label)}</th>${srcs.map((s) => cell(s, key, get(r.copies[s]))).join("")}</tr>`)
        .join("")}</tbody></table></section>`;
    })
    .join("");
  const disc = d.discrepancies.length
    ? `<h2>${esc(t("history"))}</h2><ul>${d.discrepancies.map((x) => `<li>${esc(x.race_id)} · ${esc(x.org)}: ${esc(statusName(x.status))} (${esc(t("effect"))} ${fmtInt(x.effect_on_margin)})</li>`).join("")}</ul>`
    : "";
  m.innerHTML = `<h1 class="page-title">${esc(t("observeTitle"))} <span class="kind">${esc(b.area_name)} · ${esc(b.number)}</span></h1>
  <p class="note" role="note">${esc(t("discNote"))}</p>${races || `<p>${esc(t("noSheets"))}</p>`}${disc}`;
  if (live) window.scrollTo(0, y);
  focusMain(live);
};

// --- forensics -----------------------------------------------------------------------
EXTRA_PAGES.fingerprint = async (m, _a, _b, live) => {
  // Redrawn at most once a minute on the server: a live event need not reload the picture.
  const fig = document.querySelector("figure.fingerprint");
  if (live && fig && fig.dataset.lang === lang) return;
  crumbs([{ name: t("navFp") }]);
  setTitle(t("navFp"));
  m.innerHTML = `<h1 class="page-title">${esc(t("fpTitle"))}</h1><p class="note" role="note">${esc(t("notAccusation"))}</p><p class="loading">${esc(t("loading"))}</p>`;
  const [fp, fl] = await Promise.all([api(`${API}/forensics/fingerprint`), api(`${API}/forensics?min_tier=medium&limit=100`)]);
  const it = fp.integer_test || {};
  m.innerHTML = `<h1 class="page-title">${esc(t("fpTitle"))}</h1>
  <p class="note" role="note">${esc(t("notAccusation"))}</p>
  <figure class="fingerprint" data-lang="${lang}"><img src="${API}/forensics/fingerprint.svg?v=${fp.as_of_version}" alt="${esc(t("fpTitle"))}" width="520"><figcaption>${esc(t("fpHelp"))} (${esc(t("asOf"))} ${fp.as_of_version})</figcaption></figure>
  <details><summary>${esc(t("integerTest"))} · ${esc(t("lastDigit"))}</summary><pre>${esc(JSON.stringify({ integer_test: it, last_digits: fp.last_digits }, null, 1))}</pre></details>
  <h2>${esc(t("flags"))} (${fmtInt(fl.total)})</h2>
  ${fl.flags.length ? `<table class="list"><thead><tr><th scope="col">${esc(t("box"))}</th><th scope="col">${esc(t("race"))}</th><th scope="col">${esc(t("tier"))}</th><th scope="col">${esc(t("signals"))}</th><th scope="col" class="num">${esc(t("effect"))}</th></tr></thead><tbody>${fl.flags
    .map((f) => `<tr><th scope="row"><a href="#/box/${encodeURIComponent(f.box_id)}">${esc(f.box_id)}</a></th><td>${esc(f.race_id)}</td><td>${esc(f.tier)}</td><td>${esc((f.signals || []).map((s) => s.name || s.kind || JSON.stringify(s)).join(", "))}</td><td class="num">${fmtInt(f.effect_on_margin)}</td></tr>`)
    .join("")}</tbody></table>` : ""}`;
  focusMain(false);
};

// --- news: check an article --------------------------------------------------------------
let lastArticle = "";
function highlight(text, claims) {
  // Claims may overlap ("X won Y" inside "X won Y with 60%"): cut the text at every claim boundary and give each
  // piece the most serious verdict of the claims covering it (contradicted > not checkable > supported).
  const rank = { contradicted: 3, not_checkable: 1, supported: 2 };
  const cuts = new Set([0, text.length]);
  claims.forEach((c) => { cuts.add(c.start); cuts.add(c.end); });
  const pts = [...cuts].sort((a, b) => a - b);
  let out = "";
  for (let i = 0; i < pts.length - 1; i++) {
    const [a, b] = [pts[i], pts[i + 1]];
    const piece = esc(text.slice(a, b)).replace(/\n/g, "<br>");
    const cover = claims.map((c, j) => [c, j]).filter(([c]) => c.start <= a && c.end >= b);
    if (!cover.length) { out += piece; continue; }
    cover.sort((x, y) => rank[y[0].verdict] - rank[x[0].verdict]);
    const [c, j] = cover[0];
    const last = cover.some(([cc]) => cc.end === b);
    out += `<mark class="v-${c.verdict}" tabindex="0" data-claim="${j}" aria-describedby="claim-${j}">${piece}${last ? `<sup class="vm" aria-hidden="true">${VMARK[c.verdict]}</sup>` : ""}</mark>`;
  }
  return out;
}
EXTRA_PAGES.check = async (m, _a, _b, live) => {
  // Nothing here changes with the count until the next check: a live event must not wipe the checked article.
  const f0 = document.getElementById("check-form");
  if (live && f0 && f0.dataset.lang === lang) return;
  crumbs([{ name: t("navCheck") }]);
  setTitle(t("navCheck"));
  m.innerHTML = `<h1 class="page-title">${esc(t("checkTitle"))}</h1><p class="help">${esc(t("checkHelp"))}</p>
  <form id="check-form" class="check" data-lang="${lang}"><label for="article">${esc(t("articleLabel"))}</label><textarea id="article" rows="8">${esc(lastArticle)}</textarea><button type="submit">${esc(t("checkBtn"))}</button></form>
  <div id="check-out" aria-live="polite"></div>`;
  const form = document.getElementById("check-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    lastArticle = document.getElementById("article").value;
    const out = document.getElementById("check-out");
    const r = await fetch(`${API}/news/check`, { method: "POST", headers: { "Content-Type": "text/plain; charset=utf-8" }, body: lastArticle });
    const d = await r.json();
    if (!r.ok) {
      out.innerHTML = `<div class="error" role="alert">${esc(d.error ? d.error.message : r.statusText)}</div>`;
      return;
    }
    out.innerHTML = `<p class="legend-v">${["supported", "contradicted", "not_checkable"].map((v) => `<span class="v-${v}">${VMARK[v]} ${esc(t(v))}: ${d.counts[v]}</span>`).join(" ")} <small>${esc(t("legendV"))}</small></p>
    <article class="checked" lang="${esc(d.language)}">${highlight(d.text, d.claims)}</article>
    <h2>${esc(t("claims"))}</h2><ol class="claims">${d.claims
      .map((c, j) => `<li id="claim-${j}" class="v-${c.verdict}"><strong>${VMARK[c.verdict]} ${esc(t(c.verdict))}</strong>: <q>${esc(c.text)}</q>${c.actual ? ` — ${esc(t("actual"))}: ${esc(c.actual)}` : c.reason ? ` — ${esc(c.reason)}` : ""}</li>`)
      .join("")}</ol>
    ${d.unlinked_names.length ? `<p>${esc(t("unlinked"))}: ${d.unlinked_names.map(esc).join(", ")}</p>` : ""}
    ${d.foreign_places.length ? `<p>${esc(t("foreign"))}: ${d.foreign_places.map(esc).join(", ")}</p>` : ""}
    <p class="help">${esc(d.source)}</p>`;
    wireClaimTips(out, d.claims);
  });
  if (lastArticle) form.requestSubmit();
  focusMain(false);
};
function wireClaimTips(root, claims) {
  // The figure behind a claim on hover and on keyboard focus (the same text is in the list below for screen readers).
  const tip = document.getElementById("tip");
  const show = (el) => {
    const c = claims[+el.dataset.claim];
    tip.innerHTML = `<strong>${VMARK[c.verdict]} ${esc(t(c.verdict))}</strong>${c.actual ? `<br>${esc(t("actual"))}: ${esc(c.actual)}` : c.reason ? `<br>${esc(c.reason)}` : ""}`;
    const r = el.getBoundingClientRect();
    tip.style.left = `${window.scrollX + r.left}px`;
    tip.style.top = `${window.scrollY + r.bottom + 6}px`;
    tip.hidden = false;
  };
  const hide = () => (tip.hidden = true);
  root.querySelectorAll("mark[data-claim]").forEach((el) => {
    el.addEventListener("mouseenter", () => show(el));
    el.addEventListener("focus", () => show(el));
    el.addEventListener("mouseleave", hide);
    el.addEventListener("blur", hide);
  });
}

applyLang();
