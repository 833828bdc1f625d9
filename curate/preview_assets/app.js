/* Release preview: choose a location, see its listings grouped by kind, filter by language and topic.
   Reads only this release's own files: preview/data/<CODE>.js, loaded with a <script> tag so that the
   page works opened from file:// as well as served over HTTP. Listing text is only ever set with
   textContent, never parsed as HTML. */
(function () {
  "use strict";

  var KINDS = ["helpline", "text_line", "chat", "online_community", "forum", "support_group", "online_therapy", "psychotherapy"];
  var KIND_TITLES = {
    helpline: "Helplines", text_line: "Text lines", chat: "Chats", online_community: "Online communities",
    forum: "Forums", support_group: "Support groups", online_therapy: "Online therapy", psychotherapy: "Psychotherapy"
  };
  var LINK_TITLES = { alive: "Links work", degraded: "Links failing lately", dead: "Links dead", unknown: "Links not checked" };

  var loaded = {};
  var waiting = {};
  var current = null;
  var select = document.getElementById("location");
  var language = document.getElementById("language");
  var topic = document.getElementById("topic");
  var list = document.getElementById("listings");
  var status = document.getElementById("status");

  window.previewData = function (code, listings) {
    loaded[code] = listings;
    (waiting[code] || []).forEach(function (done) { done(listings); });
    delete waiting[code];
  };

  function load(code, done) {
    if (loaded[code]) { done(loaded[code]); return; }
    if (waiting[code]) { waiting[code].push(done); return; }
    waiting[code] = [done];
    var script = document.createElement("script");
    script.src = "preview/data/" + encodeURIComponent(code) + ".js";
    script.onerror = function () { status.textContent = "The listings of " + code + " could not be loaded."; };
    document.body.appendChild(script);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeWeb(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function safeNumber(number) {
    return typeof number === "string" && /^\+?[0-9]{3,15}$/.test(number) ? number : null;
  }

  function button(href, label, className) {
    var a = el("a", "button " + className, label);
    a.href = href;
    if (/^https?:/i.test(href)) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
    return a;
  }

  function languageName(tag) {
    try {
      var names = new Intl.DisplayNames(["en"], { type: "language" });
      return names.of(tag) || tag;
    } catch (e) {
      return tag;
    }
  }

  function fillFilter(selectNode, values, allLabel, labelOf) {
    var keep = selectNode.value;
    while (selectNode.options.length) selectNode.remove(0);
    selectNode.appendChild(new Option(allLabel, ""));
    values.forEach(function (v) { selectNode.appendChild(new Option(labelOf(v), v)); });
    selectNode.value = values.indexOf(keep) >= 0 ? keep : "";
  }

  function card(x) {
    var item = el("article", "listing");
    item.setAttribute("data-listing-id", x.id);
    item.setAttribute("data-kind", x.kind);
    var head = el("h3", "name", x.name);
    if (x.always_open) head.appendChild(el("span", "badge always-open", "24/7"));
    item.appendChild(head);
    if (x.description) item.appendChild(el("p", "description", x.description));
    var buttons = el("p", "buttons");
    var phone = safeNumber(x.phone), sms = safeNumber(x.sms), web = safeWeb(x.url), chat = safeWeb(x.chat_url);
    if (phone) buttons.appendChild(button("tel:" + phone, "Call " + phone, "call"));
    if (sms) buttons.appendChild(button("sms:" + sms, "Text " + sms, "sms"));
    if (chat) buttons.appendChild(button(chat, "Chat", "chat"));
    if (web) buttons.appendChild(button(web, "Website", "web"));
    item.appendChild(buttons);
    var facts = el("ul", "facts");
    if (x.hours && !x.always_open) facts.appendChild(el("li", "hours", "Hours: " + x.hours));
    if (x.languages && x.languages.length) facts.appendChild(el("li", "languages", "Languages: " + x.languages.map(languageName).join(", ")));
    if (x.topics && x.topics.length) facts.appendChild(el("li", "topics", "Topics: " + x.topics.join(", ").replace(/_/g, " ")));
    var link = el("li", "link-status link-" + x.link_status, LINK_TITLES[x.link_status] || ("Links: " + x.link_status));
    if (x.link_checked_at) link.title = "Checked " + x.link_checked_at;
    facts.appendChild(link);
    facts.appendChild(el("li", "verified", x.verified_at ? "Verified " + x.verified_at : "Not verified yet"));
    item.appendChild(facts);
    return item;
  }

  function render() {
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!current) { status.textContent = "Choose a location."; return; }
    var listings = loaded[current] || [];
    var lang = language.value, top = topic.value;
    var shown = listings.filter(function (x) {
      return (!lang || (x.languages || []).indexOf(lang) >= 0) && (!top || (x.topics || []).indexOf(top) >= 0);
    });
    var label = select.options[select.selectedIndex] ? select.options[select.selectedIndex].textContent.trim() : current;
    status.textContent = shown.length + " of " + listings.length + " listings for " + label;
    KINDS.concat(listings.map(function (x) { return x.kind; })).forEach(function (kind, i, all) {
      if (all.indexOf(kind) !== i) return;
      var group = shown.filter(function (x) { return x.kind === kind; });
      if (!group.length) return;
      var section = el("section", "kind");
      section.setAttribute("data-kind", kind);
      section.appendChild(el("h2", null, KIND_TITLES[kind] || kind));
      group.forEach(function (x) { section.appendChild(card(x)); });
      list.appendChild(section);
    });
  }

  function distinct(listings, field) {
    var seen = {};
    listings.forEach(function (x) { (x[field] || []).forEach(function (v) { seen[v] = true; }); });
    return Object.keys(seen).sort();
  }

  function choose(code) {
    current = code || null;
    try {
      var url = new URL(window.location.href);
      if (current) url.searchParams.set("location", current); else url.searchParams.delete("location");
      window.history.replaceState(null, "", url.toString());
    } catch (e) { /* some file:// set-ups refuse; the chooser still works */ }
    if (!current) { render(); return; }
    status.textContent = "Loading…";
    load(current, function (listings) {
      if (current !== code) return;
      fillFilter(language, distinct(listings, "languages"), "All languages", languageName);
      fillFilter(topic, distinct(listings, "topics"), "All topics", function (t) { return t.replace(/_/g, " "); });
      render();
    });
  }

  select.addEventListener("change", function () { choose(select.value); });
  language.addEventListener("change", render);
  topic.addEventListener("change", render);

  var wanted = null;
  try { wanted = new URLSearchParams(window.location.search).get("location"); } catch (e) { wanted = null; }
  if (wanted) {
    wanted = wanted.toUpperCase();
    var exists = Array.prototype.some.call(select.options, function (o) { return o.value === wanted; });
    if (exists) { select.value = wanted; choose(wanted); }
    else status.textContent = "No listings for location " + wanted + " in this release.";
  } else if (select.value) {
    choose(select.value);
  }
}());
