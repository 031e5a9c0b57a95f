/* Sort a table by the clicked column: numbers by their raw data-sort-value, text
   in natural order; missing values ("–") always last; equal keys keep their order. */
(function () {
  "use strict";
  function key(cell) {
    if (!cell) return null;
    var raw = cell.getAttribute("data-sort-value");
    if (raw !== null && raw !== "" && !isNaN(Number(raw))) return Number(raw);
    var text = cell.textContent.trim();
    return text === "" || text === "–" ? null : text;
  }
  function order(x, y, ascending) {
    var a = x.key, b = y.key;
    if (a === null || b === null) return a === b ? x.index - y.index : (a === null ? 1 : -1);
    var c = typeof a === "number" && typeof b === "number" ? a - b
      : String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
    return (ascending ? c : -c) || x.index - y.index;
  }
  function sortBy(table, th, column) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    Array.prototype.map.call(body.rows, function (row, index) {
      return { key: key(row.cells[column]), index: index, row: row };
    }).sort(function (x, y) { return order(x, y, ascending); })
      .forEach(function (item) { body.appendChild(item.row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, th, column); });
    });
  });
  /* A table wider than its frame says so (.scrolls) until scrolled to its end (.at-end). */
  function markScrolling() {
    Array.prototype.forEach.call(document.querySelectorAll(".table-frame"), function (frame) {
      var wrap = frame.querySelector(".table-wrap");
      frame.classList.toggle("scrolls", wrap.scrollWidth > wrap.clientWidth + 1);
      frame.classList.toggle("at-end", wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1);
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (wrap) {
    wrap.addEventListener("scroll", markScrolling);
  });
  window.addEventListener("resize", markScrolling);
  document.addEventListener("toggle", markScrolling, true);  /* a table in a section just opened gets its width */
  markScrolling();
  /* Printing shows every collapsed section. */
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
}());
