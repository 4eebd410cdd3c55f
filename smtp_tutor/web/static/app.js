// smtp-tutor classroom: live updates for the pages the server renders (no build step).
// Everything a message or a client chose is put in with textContent, never as HTML.
(function () {
  "use strict";
  var body = document.body;
  var texts = {};
  try {
    texts = JSON.parse(body.getAttribute("data-texts") || "{}");
  } catch (e) {
    texts = {};
  }
  var lang = body.getAttribute("data-lang") || "en";
  var page = body.getAttribute("data-page");

  function addresses(list) {
    return (list || []).map(function (a) { return "<" + a + ">"; }).join(", ");
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function messageRow(m) {
    var env = m.envelope || {};
    var tr = document.createElement("tr");
    tr.setAttribute("data-id", m.id);
    tr.className = "new";
    tr.appendChild(cell((m.time || "").slice(11, 19), "time"));
    tr.appendChild(cell(addresses([env.mail_from || ""])));
    tr.appendChild(cell(addresses(env.rcpt_tos)));
    var subject = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/messages/" + encodeURIComponent(m.id) + "?lang=" + encodeURIComponent(lang);
    link.textContent = m.subject || texts.no_subject || "(no subject)";
    subject.appendChild(link);
    tr.appendChild(subject);
    tr.appendChild(cell(env.auth_user || "-"));
    tr.appendChild(cell(m.size, "num"));
    tr.appendChild(cell((m.defects || []).length || "", "defects"));
    return tr;
  }

  function live(handlers) {
    if (!window.EventSource) return;
    var status = document.getElementById("live");
    var source = new EventSource("/api/stream");
    source.addEventListener("open", function () {
      if (status) {
        status.textContent = texts.live || "live";
        status.className = "live on";
      }
    });
    source.addEventListener("error", function () {
      if (status) {
        status.textContent = texts.live_lost || "";
        status.className = "live off";
      }
    });
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data = null;
        try {
          data = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        handlers[name](data);
      });
    });
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // Fetch this page again and swap its main part: the server renders, the page stays put.
  var refreshMain = debounce(function () {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (fresh && main) main.replaceWith(fresh);
      })
      .catch(function () {});
  }, 250);

  if (page === "list") {
    live({
      message: function (m) {
        var tbody = document.querySelector("#messages tbody");
        if (!tbody) return;
        var rows = tbody.querySelectorAll("tr");
        for (var i = 0; i < rows.length; i++) {
          if (rows[i].getAttribute("data-id") === m.id) return;
        }
        tbody.insertBefore(messageRow(m), tbody.firstChild);
        var empty = document.getElementById("empty");
        if (empty) empty.remove();
      },
      cleared: function () { refreshMain(); },
      // Events the server had no room for: the list, fetched again, has them.
      resync: function () { refreshMain(); },
    });
  } else if (page === "dashboard" || page === "sessions") {
    live({
      message: refreshMain,
      session: refreshMain,
      progress: refreshMain,
      cleared: refreshMain,
      resync: refreshMain,
    });
  }
})();
