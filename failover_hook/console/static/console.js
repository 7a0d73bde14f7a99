// The console's one script: parts of a page marked data-refresh="URL" are fetched again every
// REFRESH_MS and replaced in place (the server renders them), while the tab is visible; a refresh
// that fails marks the page stale instead of leaving old data unmarked, and a lost session leads
// to the login form.
"use strict";
const REFRESH_MS = 1500;

function refresh(part) {
  const url = part.dataset.refresh;
  const note = document.querySelector(".stale-note");
  const again = () => window.setTimeout(() => refresh(part), REFRESH_MS);
  if (document.hidden) {
    // a tab nobody looks at asks nothing: each refresh runs every node's resource checks
    again();
    return;
  }
  fetch(url, { credentials: "same-origin", cache: "no-store" })
    .then((response) => {
      if (response.status === 401) {
        window.location.assign("/ui/login");
        return null;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.text();
    })
    .then((html) => {
      if (html === null) return;
      part.innerHTML = html;
      part.classList.remove("stale");
      if (note) note.hidden = true;
      again();
    })
    .catch(() => {
      part.classList.add("stale");
      if (note) note.hidden = false;
      again();
    });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach((part) => {
    window.setTimeout(() => refresh(part), REFRESH_MS);
  });
});
