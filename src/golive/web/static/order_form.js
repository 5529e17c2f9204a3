// The order form, improved: the review rules' findings while SQL is typed, a filter over
// a project's many services, a service chosen as soon as its branch is typed. The form
// works without this script: "Check SQL" shows the same findings from the server.
(function () {
  "use strict";
  var form = document.querySelector("form.order-form");
  if (!form) { return; }
  var DELAY_MS = 400;  // after the last key: one request per pause, not per key

  function label(name) { return form.getAttribute("data-label-" + name) || ""; }

  function clear(element) {
    while (element.firstChild) { element.removeChild(element.firstChild); }
  }

  function show(where, answer, sql) {
    clear(where);
    if (answer.findings.length === 0) {
      if (sql.trim()) {
        var clean = document.createElement("p");
        clean.className = "help clean";
        clean.textContent = label("clean");
        where.appendChild(clean);
      }
      return;
    }
    var list = document.createElement("ul");
    list.className = "findings-list";
    answer.findings.forEach(function (finding) {
      var kind = finding.severity === "refuse" ? "bad" : "warn";
      var item = document.createElement("li");
      item.className = "finding " + kind;
      item.setAttribute("data-rule", finding.rule);
      var badge = document.createElement("span");
      badge.className = "badge " + kind;
      badge.textContent = label(finding.severity === "refuse" ? "refuse" : "warn");
      item.appendChild(badge);
      item.appendChild(document.createTextNode(
        " " + label("statement") + " " + finding.statement + ": " + finding.message));
      list.appendChild(item);
    });
    where.appendChild(list);
  }

  function review(textarea, service) {
    var sent = textarea.value;
    var body = new URLSearchParams();
    body.set("project", form.getAttribute("data-project"));
    body.set("service", service);
    body.set("sql", sent);
    fetch(form.getAttribute("data-review-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      var where = document.getElementById("findings-" + service);
      if (answer && where && textarea.value === sent) { show(where, answer, sent); }
    }).catch(function () { /* the "Check SQL" button still works */ });
  }

  form.querySelectorAll("textarea[name^='sql.']").forEach(function (textarea) {
    var service = textarea.name.slice("sql.".length);
    var timer = null;
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { review(textarea, service); }, DELAY_MS);
    });
  });

  var boxes = form.querySelectorAll("fieldset.service-box");
  boxes.forEach(function (box) {
    var choice = box.querySelector("input[name=service]");
    var branch = box.querySelector("input[name^='branch.']");
    choice.addEventListener("change", function () {
      box.classList.toggle("chosen", choice.checked);
    });
    if (branch) {
      branch.addEventListener("input", function () {
        if (branch.value.trim() && !choice.checked) {
          choice.checked = true;
          box.classList.add("chosen");
        }
      });
    }
  });

  var filter = document.getElementById("service-filter");
  if (filter && boxes.length > 3) {
    filter.hidden = false;
    filter.addEventListener("input", function () {
      var text = filter.value.trim().toLowerCase();
      boxes.forEach(function (box) {
        var chosen = box.querySelector("input[name=service]").checked;
        var name = box.getAttribute("data-name").toLowerCase();
        box.hidden = text !== "" && !chosen && name.indexOf(text) < 0;
      });
    });
  }
}());
