// The `accord report` page's script. The rows of its four tables are data
// (the `row-data` block): it renders them a page at a time, more when the
// end of a table is scrolled to (or its "show more" is clicked), so a
// 4,000-audience page opens without laying out 4,000 rows. Its filters
// (activation, destination, verdict and a search box) act on the data and
// live in the address's fragment (#activation=a3&q=intent) so a filtered
// view can be linked. It draws the lineage picture shown from the
// `picture-data` block. Names are written only as text and attribute
// values through the DOM (textContent, setAttribute), never as markup.
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
  var data = JSON.parse(byId("row-data").textContent);
  var lineage = byId("lineage");
  var perActivation = lineage.getAttribute("data-mode") === "per-activation";

  function has(list, token) {
    return (" " + (list || "") + " ").indexOf(" " + token + " ") >= 0;
  }

  // An element with attributes (in this order; null and undefined left
  // out) and children (strings become text).
  function el(tag, attributes, children) {
    var e = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (k) {
      if (attributes[k] !== null && attributes[k] !== undefined) e.setAttribute(k, attributes[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === "") return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function muted(text) { return el("span", { "class": "muted" }, [text]); }
  function size(s) {
    return typeof s === "number" ? String(s) : data.has_run ? "–" : "no run yet";
  }
  function expiry(v) {
    return v.waiver ? " · waiver " + v.waiver + (v.expires ? ", expires " + v.expires : "") : "";
  }

  // The rows, as the page shows them.
  function verdicts(items) {
    return el("ul", null, items.map(function (v) {
      return el("li", {
        "class": "verdict " + v.verdict, "data-activation": v.activation, "data-audience": v.audience,
        "data-policy": v.policy, "data-verdict": v.verdict, "data-waiver": v.waiver
      }, [
        el("b", null, [v.verdict]), " " + v.policy + " ", muted("(" + v.enforcement + ")"),
        " on " + v.audience + (v.labels.length ? " · blames " + v.labels.join(", ") : "") + expiry(v)
      ]);
    }));
  }
  function activationRow(a) {
    var audiences = [];
    a.audiences.forEach(function (s, i) {
      if (i) audiences.push(el("br"));
      audiences.push(s.name + " ", el("span", { "class": "size" }, [size(s.size)]));
    });
    return el("tr", {
      "class": "row", id: "activation-" + a.id, "data-activation": a.name, "data-acts": a.id,
      "data-dests": a.destination_id, "data-verdicts": a.verdicts
    }, [
      el("td", null, [el("a", { href: "#activation=" + a.id }, [a.name])]),
      el("td", null, [a.destination + " ", muted(a.destination_type)]),
      el("td", null, audiences),
      el("td", null, [a.exclude.join(", ")]),
      el("td", null, [a.schedule + " · " + a.export + " · " + a.rows]),
      el("td", null, [a.labels.join(", ")]),
      el("td", null, [
        a.notable.length ? verdicts(a.notable) : null,
        muted(a.others + " other" + (a.others !== 1 ? "s" : "") + " allowed, not applicable, draft or disabled")
      ])
    ]);
  }
  // A destination with the rows of its labels that the filters leave.
  function destinationRow(d, filter) {
    var section = el("div", {
      "class": "row destination", id: "destination-" + d.id, "data-destination": d.name,
      "data-acts": d.acts, "data-dests": d.id, "data-verdicts": d.verdicts
    }, [el("h3", null, [d.name + " ", muted(d.ty + " · " + d.delivery + " · actions " + d.actions.join(", "))])]);
    if (!d.labels.length) {
      section.appendChild(el("p", { "class": "muted" }, [
        "No label reaches this destination" + (d.acts ? "" : "; no activation delivers to it") + "."
      ]));
      return section;
    }
    var labels = d.labels.filter(function (l) {
      return kept(l, filter) && (!filter.q || labelText(l).indexOf(filter.q) >= 0);
    });
    section.appendChild(el("table", null, [
      el("thead", null, [el("tr", null, [
        el("th", null, ["label"]), el("th", null, ["reaches it through (activation / audience)"]), el("th", null, ["verdicts"])
      ])]),
      el("tbody", null, labels.map(function (l) {
        return el("tr", {
          "class": "row", "data-label": l.label, "data-acts": l.acts, "data-dests": d.id, "data-verdicts": l.verdicts
        }, [
          el("td", null, [el("b", null, [l.label])]),
          el("td", null, [l.flows.join(", ")]),
          el("td", null, [l.notable.length ? verdicts(l.notable) : el("span", { "class": "verdict allowed" }, ["allowed"])])
        ]);
      }))
    ]));
    return section;
  }
  function audienceRow(a) {
    var members = [size(a.size)];
    a.parts.forEach(function (p) { members.push(el("br"), p.name + ": " + size(p.size)); });
    return el("tr", {
      "class": "row", "data-audience": a.name, "data-acts": a.acts, "data-dests": a.dests, "data-verdicts": a.verdicts
    }, [
      el("td", null, [a.name]),
      el("td", null, [a.kind + " · " + a.entity + " · " + a.evaluation]),
      el("td", { "class": "size" }, members),
      el("td", null, [a.labels.join(", ")]),
      el("td", null, [String(a.activations)]),
      el("td", null, [a.verdicts !== "allowed" ? el("span", { "class": "verdict " + a.verdicts }, [a.verdicts]) : null])
    ]);
  }
  function waiverRow(w) {
    var days = typeof w.days_left === "number" ? muted("(" + w.days_left + " days left)") : null;
    return el("tr", {
      "class": "row", "data-waiver": w.name, "data-acts": w.acts, "data-dests": w.dests, "data-verdicts": w.verdicts
    }, [
      el("td", null, [w.name]), el("td", null, [w.policy]), el("td", null, [w.activation]), el("td", null, [w.owner]),
      el("td", null, w.expires ? [w.expires + " ", days] : ["never"]),
      el("td", null, [w.covers.length ? w.covers.join(", ") : muted("nothing: no violation to cover")]),
      el("td", null, [w.reason])
    ]);
  }

  // What the search box looks in: the text each row shows.
  function verdictText(v) {
    return [v.verdict, v.policy, "(" + v.enforcement + ")", "on", v.audience, "blames", v.labels.join(" "), expiry(v)].join(" ");
  }
  function labelText(l) {
    return [l.label, l.flows.join(", "), l.notable.length ? l.notable.map(verdictText).join(" ") : "allowed"]
      .join(" ").toLowerCase();
  }
  var texts = {
    activations: function (a) {
      return [
        a.name, a.destination, a.destination_type,
        a.audiences.map(function (s) { return s.name + " " + size(s.size); }).join(" "),
        a.exclude.join(", "), a.schedule, a.export, a.rows, a.labels.join(", "),
        a.notable.map(verdictText).join(" "), a.others + " allowed, not applicable, draft or disabled"
      ].join(" ");
    },
    destinations: function (d) {
      return [d.name, d.ty, d.delivery, "actions", d.actions.join(", "), d.labels.map(labelText).join(" ")].join(" ");
    },
    audiences: function (a) {
      return [
        a.name, a.kind, a.entity, a.evaluation, size(a.size),
        a.parts.map(function (p) { return p.name + ": " + size(p.size); }).join(" "),
        a.labels.join(", "), String(a.activations), a.verdicts
      ].join(" ");
    },
    waivers: function (w) {
      return [w.name, w.policy, w.activation, w.owner, w.expires || "never", w.covers.join(", "), w.reason].join(" ");
    }
  };

  // Rows rendered at first (more than a screenful), and added each time the
  // end of a table is reached; a destination carries all its labels, so
  // fewer of them. Laying out rows is most of the time the page takes to
  // open: 100 of each took twice as long as 40.
  var PAGE = 40;
  var tables = [
    { name: "activations", render: activationRow, page: PAGE },
    { name: "destinations", render: destinationRow, page: 10 },
    { name: "audiences", render: audienceRow, page: PAGE },
    { name: "waivers", render: waiverRow, page: PAGE }
  ];
  // Rendering the next pages when "show more" comes near the screen, until
  // it is pushed out of reach (a tall window takes several).
  var reach = 800;
  var near = "IntersectionObserver" in window ? new IntersectionObserver(function (seen) {
    seen.forEach(function (s) {
      var t = tables.filter(function (t) { return t.more === s.target; })[0];
      if (!s.isIntersecting) return;
      do { more(t); } while (!t.more.hidden && t.more.getBoundingClientRect().top < innerHeight + reach);
    });
  }, { rootMargin: reach + "px 0px" }) : null;
  tables.forEach(function (t) {
    var section = byId(t.name);
    t.rows = data[t.name];
    t.into = section.querySelector(".rows");
    t.more = section.querySelector(".more");
    t.shown = section.querySelector(".shown");
    t.texts = null;
    t.matching = [];
    t.rendered = 0;
    if (t.more) t.more.addEventListener("click", function () { more(t); });
    if (t.more && near) near.observe(t.more);
  });

  function kept(row, filter) {
    return (!filter.a || has(row.acts, filter.a)) &&
      (!filter.d || has(row.dests, filter.d)) &&
      (!filter.v || has(row.verdicts, filter.v));
  }
  function more(t) {
    var rows = document.createDocumentFragment();
    var end = Math.min(t.matching.length, t.rendered + t.page);
    for (; t.rendered < end; t.rendered++) rows.appendChild(t.render(t.matching[t.rendered], t.filter));
    t.into.appendChild(rows);
    var left = t.matching.length - t.rendered;
    t.more.hidden = left <= 0;
    t.more.textContent = "show " + Math.min(left, t.page) + " more (" + left + " not shown yet)";
  }

  function apply() {
    var filter = {
      a: pick.activation.value,
      d: pick.destination.value,
      v: pick.verdict.value,
      q: search.value.trim().toLowerCase()
    };
    tables.forEach(function (t) {
      if (!t.into) return;
      if (filter.q && !t.texts) {
        t.texts = t.rows.map(function (r) { return texts[t.name](r).toLowerCase(); });
      }
      t.filter = filter;
      t.matching = t.rows.filter(function (r, i) {
        return kept(r, filter) && (!filter.q || t.texts[i].indexOf(filter.q) >= 0);
      });
      t.into.textContent = "";
      t.rendered = 0;
      more(t);
      t.shown.textContent = t.matching.length === t.rows.length ? "" :
        t.matching.length + " of " + t.rows.length + " shown";
    });
    // The picked activation's picture; with none picked, the whole
    // project's, or (when there is none) the first activation's left.
    var first = tables[0].matching[0];
    var shown = show(filter.a || (perActivation && first ? first.id : ""));
    byId("no-picture").hidden = !!shown;
    if (shown) {
      shown.querySelectorAll("[data-node]").forEach(function (m) {
        var name = m.getAttribute("data-node").toLowerCase();
        m.classList.toggle("hit", !!filter.q && name.indexOf(filter.q) >= 0);
      });
    }
    writeFragment({ activation: filter.a, destination: filter.d, verdict: filter.v, q: search.value.trim() });
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
      var rows = choices[k];
      var known = rows ? rows.some(function (r) { return r.id === value; }) :
        Array.prototype.some.call(pick[k].options, function (o) { return o.value === value; });
      if (rows && !pick[k].listed) offer(k, known ? value : "");
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

  // A thousand options make a select slow to lay out: the activation and
  // destination lists hold the picked one until first opened (or focused),
  // then every one.
  var choices = { activation: data.activations, destination: data.destinations };
  function offer(k, only) {
    var select = pick[k];
    var value = select.value;
    var options = document.createDocumentFragment();
    choices[k].forEach(function (r) {
      if (only === undefined || r.id === only) options.appendChild(el("option", { value: r.id }, [r.name]));
    });
    select.length = 1;
    select.appendChild(options);
    select.value = value;
  }
  Object.keys(choices).forEach(function (k) {
    var all = function () {
      if (pick[k].listed) return;
      pick[k].listed = true;
      offer(k);
    };
    pick[k].addEventListener("mousedown", all);
    pick[k].addEventListener("focus", all);
  });

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
