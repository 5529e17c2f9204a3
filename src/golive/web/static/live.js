// The order page's live deployment: its log over Server-Sent Events, its progress bars
// from the deployment's steps. Without JavaScript the page shows the lines it rendered
// and a "refresh" link; with it the log follows, and the page reloads once the
// deployment has ended (its state, buttons and ledgers change then).
(function () {
  "use strict";
  var log = document.getElementById("live-log");
  if (!log || log.dataset.live !== "yes" || !window.EventSource) {
    return;
  }
  var following = true;
  log.addEventListener("scroll", function () {
    following = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  });

  function addLine(line) {
    var span = document.createElement("span");
    span.className = "line " + (line.level || "info");
    span.textContent = (line.host ? "[" + line.host + "] " : "") + line.text + "\n";
    log.appendChild(span);
    if (following) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function showProgress(steps) {
    var bars = {};
    steps.forEach(function (step) {
      ["service", "host"].forEach(function (axis) {
        if (!step[axis]) {
          return;
        }
        var key = axis + ":" + step[axis];
        var bar = bars[key] || (bars[key] = {done: 0, total: 0, failed: false});
        bar.total += 1;
        if (step.status === "done" || step.status === "skipped") {
          bar.done += 1;
        }
        bar.failed = bar.failed || step.status === "failed";
      });
    });
    document.querySelectorAll("progress[data-progress]").forEach(function (element) {
      var bar = bars[element.dataset.progress];
      if (!bar) {
        return;
      }
      element.max = bar.total;
      element.value = bar.done;
      element.className = bar.failed ? "bad" : (bar.done === bar.total ? "ok" : "");
      var count = element.parentNode.querySelector(".progress-count");
      if (count) {
        count.textContent = bar.done + "/" + bar.total;
      }
    });
  }

  function refreshProgress() {
    fetch(log.dataset.deployment, {credentials: "same-origin",
                                   headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (deployment) {
        if (deployment) {
          showProgress(deployment.steps || []);
        }
      })
      .catch(function () { /* the next status or end event tries again */ });
  }

  // the stream sends every line from the first: it replaces the lines rendered
  log.textContent = "";
  var source = new EventSource(log.dataset.events);
  source.addEventListener("log", function (event) {
    addLine(JSON.parse(event.data));
  });
  source.addEventListener("status", function (event) {
    var status = document.getElementById("deployment-status");
    if (status) {
      status.textContent = JSON.parse(event.data).status;
    }
    refreshProgress();
  });
  source.addEventListener("end", function (event) {
    source.close();
    showProgress(JSON.parse(event.data).steps || []);
    window.location.reload();
  });
  var timer = window.setInterval(refreshProgress, 2000);
  window.addEventListener("beforeunload", function () {
    window.clearInterval(timer);
    source.close();
  });
})();
