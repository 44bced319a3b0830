// Open the box that a link to #anchor lands on, or that holds it: a file of a stage's
// diff (<details class="fd-file">) starts closed when it is a test or a lock file, and
// the links from the page's prose and the diffstat should show its change. Without this
// script the links still scroll to the file's summary line, one click from the change.
(function () {
  function openTarget(hash) {
    var id = decodeURIComponent((hash || "").slice(1));
    var node = id && document.getElementById(id);
    for (; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") {
        node.open = true;
      }
    }
  }

  function openCurrent() {
    openTarget(location.hash);
  }

  // A click on a link to the current address changes no hash, so it is watched too:
  // the reader may have closed the box since.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[href^="#"]');
    if (link) {
      openTarget(link.hash);
    }
  });
  window.addEventListener("hashchange", openCurrent);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", openCurrent);
  } else {
    openCurrent();
  }
})();
