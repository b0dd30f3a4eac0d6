// The `accord report` page's filters: activation, destination, verdict and a
// search box, kept in the address's fragment (#activation=a3&q=intent) so a
// filtered view can be linked. Names are read through the DOM only
// (textContent, dataset), never written as markup.
(function () {
  "use strict";
  var root = document.documentElement;
  document.addEventListener("DOMContentLoaded", function () {
    root.setAttribute("data-dom-content-loaded-ms", performance.now().toFixed(1));
  });

  var byId = function (id) { return document.getElementById(id); };
  var search = byId("q");
  var pick = {
    activation: byId("f-activation"),
    destination: byId("f-destination"),
    verdict: byId("f-verdict")
  };
  var rows = Array.prototype.slice.call(document.querySelectorAll(".row"));
  var lineage = byId("lineage");
  var perActivation = lineage.getAttribute("data-mode") === "per-activation";
  var texts = null;

  function has(list, token) {
    return (" " + (list || "") + " ").indexOf(" " + token + " ") >= 0;
  }

  function apply() {
    var a = pick.activation.value;
    var d = pick.destination.value;
    var v = pick.verdict.value;
    var q = search.value.trim().toLowerCase();
    if (q && !texts) {
      texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    }
    var firstActivation = "";
    rows.forEach(function (r, i) {
      var ok = (!a || has(r.dataset.acts, a)) &&
        (!d || has(r.dataset.dests, d)) &&
        (!v || has(r.dataset.verdicts, v)) &&
        (!q || texts[i].indexOf(q) >= 0);
      if (r.hidden === ok) r.hidden = !ok;
      if (ok && !firstActivation && r.hasAttribute("data-activation")) {
        firstActivation = r.dataset.acts;
      }
    });
    document.querySelectorAll("section").forEach(function (s) {
      var out = s.querySelector(".shown");
      if (!out) return;
      var all = s.querySelectorAll(":scope > table > tbody > .row, :scope > .row");
      var shown = 0;
      all.forEach(function (r) { if (!r.hidden) shown++; });
      out.textContent = shown === all.length ? "" : shown + " of " + all.length + " shown";
    });
    // The picked activation's picture; with none picked, the whole
    // project's, or (when there is none) the first activation's left.
    var shown = show(a || (perActivation ? firstActivation : ""));
    byId("no-picture").hidden = !!shown;
    if (shown) {
      shown.querySelectorAll("[data-node]").forEach(function (m) {
        var name = m.getAttribute("data-node").toLowerCase();
        m.classList.toggle("hit", !!q && name.indexOf(q) >= 0);
      });
    }
    writeFragment({ activation: a, destination: d, verdict: v, q: search.value.trim() });
  }

  // The pictures: data (JSON) until shown, then inline SVG, drawn once.
  var pictures = null;
  var drawn = {};
  function show(act) {
    if (!pictures) pictures = JSON.parse(byId("picture-data").textContent);
    var figure = drawn[act];
    if (!figure) {
      var picture = pictures.filter(function (p) { return (p.a || "") === act; })[0];
      if (picture) figure = drawn[act] = byId("pictures").appendChild(draw(picture));
    }
    Object.keys(drawn).forEach(function (k) { drawn[k].hidden = drawn[k] !== figure; });
    return figure;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svg(name, attributes, text) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (k) { e.setAttribute(k, attributes[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function draw(p) {
    var figure = document.createElement("figure");
    figure.className = "picture";
    if (p.a) figure.setAttribute("data-act", p.a);
    var caption = figure.appendChild(document.createElement("figcaption"));
    caption.textContent = p.t + " ";
    var count = caption.appendChild(document.createElement("span"));
    count.className = "muted";
    count.textContent = "· " + p.x + " crossings";
    var picture = figure.appendChild(svg("svg", {
      "class": "lineage", width: p.w, height: p.h, viewBox: "0 0 " + p.w + " " + p.h,
      role: "img", "aria-label": p.t,
      "data-crossings": p.x, "data-edges": p.e.length, "data-nodes": p.n.length
    }));
    p.c.forEach(function (c) { picture.appendChild(svg("text", { "class": "col", x: c.x, y: 14 }, c.l)); });
    var key = function (n) { return n.k + ":" + n.n; };
    var edges = picture.appendChild(svg("g", { "class": "edges" }));
    p.e.forEach(function (e) {
      var verdict = e.v || "none";
      var from = key(p.n[e.f]);
      var to = key(p.n[e.t]);
      var path = edges.appendChild(svg("path", {
        "class": "e " + e.s + " " + verdict, d: e.d,
        "data-from": from, "data-to": to, "data-step": e.s, "data-verdict": verdict
      }));
      path.appendChild(svg("title", {}, from + " → " + to + ": " + e.s +
        (e.p ? " " + e.p : "") + (verdict !== "none" ? ", " + verdict : "")));
    });
    var nodes = picture.appendChild(svg("g", { "class": "nodes" }));
    p.n.forEach(function (n) {
      var box = nodes.appendChild(svg("g", {
        "class": "n " + n.k, transform: "translate(" + n.x + "," + n.y + ")", "data-node": key(n)
      }));
      box.appendChild(svg("rect", { width: n.w, height: 20, rx: 3 }));
      box.appendChild(svg("text", { x: 6, y: 14 }, n.s || n.n));
      box.appendChild(svg("title", {}, n.k + " " + n.n + (n.l ? " · labels " + n.l : "")));
    });
    return figure;
  }

  function readFragment() {
    var state = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) state[pair.slice(0, at)] = decodeURIComponent(pair.slice(at + 1));
    });
    Object.keys(pick).forEach(function (k) {
      var value = state[k] || "";
      var known = Array.prototype.some.call(pick[k].options, function (o) { return o.value === value; });
      pick[k].value = known ? value : "";
    });
    search.value = state.q || "";
  }
  function writeFragment(state) {
    var parts = Object.keys(state).filter(function (k) { return state[k]; }).map(function (k) {
      return k + "=" + encodeURIComponent(state[k]);
    });
    var fragment = parts.length ? "#" + parts.join("&") : "";
    if (fragment !== location.hash && history.replaceState) {
      history.replaceState(null, "", fragment || location.pathname + location.search);
    }
  }

  var pending = 0;
  search.addEventListener("input", function () {
    clearTimeout(pending);
    pending = setTimeout(apply, 120);
  });
  Object.keys(pick).forEach(function (k) { pick[k].addEventListener("change", apply); });
  byId("clear").addEventListener("click", function () {
    search.value = "";
    Object.keys(pick).forEach(function (k) { pick[k].value = ""; });
    apply();
  });
  window.addEventListener("hashchange", function () { readFragment(); apply(); });
  window.addEventListener("load", function () {
    readFragment();
    apply();
    // Layout is forced before the time is taken, so the figure covers
    // drawing the page, not only parsing it.
    void document.body.offsetHeight;
    root.setAttribute("data-load-ms", performance.now().toFixed(1));
  });
})();
