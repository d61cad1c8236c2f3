// opswatch dashboard enhancements. Every page is complete without this file: it only
// refreshes the overview in place and switches chart ranges without a full reload.
(function () {
  "use strict";
  // Lets the stylesheet (and the browser test) tell that the script runs.
  document.documentElement.classList.add("js");
  function swap(url, push) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("main");
      var main = document.getElementById("main");
      if (!fresh || !main) return;
      main.replaceWith(fresh);
      var foot = doc.querySelector("footer"), old = document.querySelector("footer");
      if (foot && old) old.replaceWith(foot);
      if (push) history.pushState(null, "", url);
      bind();
    });
  }
  function bind() {
    document.querySelectorAll("[data-ranges] .ranges a").forEach(function (a) {
      a.addEventListener("click", function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        var y = window.scrollY;
        swap(a.href, true).then(function () { window.scrollTo(0, y); }, function () { location.href = a.href; });
      });
    });
  }
  window.addEventListener("popstate", function () { swap(location.href, false); });
  bind();
  var every = Number(document.body.getAttribute("data-refresh"));
  if (every > 0) {
    setInterval(function () {
      if (document.visibilityState === "visible") swap(location.href, false).catch(function () {});
    }, every * 1000);
  }
})();
