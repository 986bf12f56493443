// Timetable clashes, explained while sessions are chosen (the server checks again on booking).
// Works on the programme page and the booking form: every checkbox named "session" carries its
// start, end (Unix seconds) and title.
(function () {
  "use strict";
  var form = document.querySelector("form[data-allow-clashes]");
  var out = document.getElementById("clash-hints");
  if (!form || !out || form.getAttribute("data-allow-clashes") === "yes") {
    return;
  }

  function update() {
    var picked = Array.prototype.filter.call(
      form.querySelectorAll("input[type=checkbox][name=session]"),
      function (c) { return c.checked; }
    );
    var lines = [];
    for (var i = 0; i < picked.length; i++) {
      for (var j = i + 1; j < picked.length; j++) {
        var a = picked[i].dataset, b = picked[j].dataset;
        if (Number(a.starts) < Number(b.ends) && Number(b.starts) < Number(a.ends)) {
          lines.push("\u201c" + a.title + "\u201d and \u201c" + b.title +
            "\u201d overlap in time: one person can book only one of them.");
        }
      }
    }
    out.textContent = lines.join(" ");
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "session") {
      update();
    }
  });
  update();
})();
