/*
 * The page's one stylesheet, served from the registry itself (a strict CSP allows no inline
 * style and nothing from elsewhere): system fonts, visible focus, tables that stack on narrow
 * screens and scroll sideways in their own focusable region otherwise.
 */

export const GOVERNANCE_CSS = `
:root {
  --text: #1b1f24; --muted: #4f5761; --line: #c9ced6; --bg: #ffffff; --band: #f3f5f8;
  --accent: #0b4f9c; --focus: #ffbf00;
  --ok-bg: #e3f4e8; --ok: #155d2b; --warn-bg: #fff3cd; --warn: #6b4b00; --bad-bg: #fde7e7; --bad: #8a1414;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--text); background: var(--bg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.page-header, main, .page-footer { max-width: 1240px; margin: 0 auto; padding: 0 1.25rem; }
.page-header { padding-top: 1rem; }
h1 { font-size: 1.5rem; margin: 0.25rem 0; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.5rem; padding-top: 0.75rem; border-top: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.25rem 0 0.5rem; }
h4 { font-size: 1rem; margin: 1rem 0 0.25rem; }
a { color: var(--accent); text-underline-offset: 0.15em; }
a:hover { text-decoration-thickness: 2px; }
a:focus-visible, [tabindex]:focus-visible, summary:focus-visible {
  outline: 3px solid var(--text); outline-offset: 2px; box-shadow: 0 0 0 6px var(--focus); border-radius: 2px;
}
a:focus-visible { background: var(--focus); color: #000; text-decoration: none; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.skip { position: absolute; left: -9999px; top: 0; padding: 0.5rem 1rem; background: var(--focus); color: #000; z-index: 10; }
.skip:focus { left: 1rem; }
.title-row { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 0.5rem 1.5rem; }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
.languages a[aria-current="true"] { font-weight: 700; color: var(--text); text-decoration: none; }
.toc { margin: 0.75rem 0 0; padding: 0.5rem 0.75rem; background: var(--band); border-radius: 4px; }
.toc a { display: inline-block; padding: 0.2rem 0; }
.read-only { margin: 0.5rem 0; padding: 0.6rem 0.9rem; border-left: 4px solid var(--accent); background: var(--band); }
.alert { margin: 1rem 0; padding: 0.75rem 1rem; border: 2px solid var(--bad); background: var(--bad-bg); color: var(--bad); }
.notice { padding: 0.5rem 0.75rem; background: var(--warn-bg); color: var(--warn); }
.problem { margin: 0; color: var(--bad); }
.muted { color: var(--muted); }
.small { font-size: 0.875rem; }
.reason { color: var(--muted); }
.nowrap { white-space: nowrap; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.875em; }
code.wrap, .wrap { overflow-wrap: anywhere; word-break: break-all; }
code.id, time { white-space: nowrap; }
.facts { display: flex; flex-wrap: wrap; gap: 0.5rem 2rem; margin: 0.5rem 0; }
.facts div { min-width: 12rem; }
.facts dt { font-size: 0.875rem; color: var(--muted); }
.facts dd { margin: 0; }
ul.plain, ul.nodes, ul.addresses, ul.changes, ul.proposals { margin: 0; padding-left: 0; list-style: none; }
ul.nodes > li + li { margin-top: 0.5rem; padding-top: 0.5rem; border-top: 1px dashed var(--line); }
ul.addresses { font-size: 0.875rem; }
ul.inline { display: inline; margin: 0; padding: 0; list-style: none; }
ul.inline li { display: inline; }
ul.inline li + li::before { content: ", "; }
ul.changes li { padding-left: 1.25rem; text-indent: -1.25rem; }
ul.changes li::before, .history td span[class^="change-"]::before { display: inline-block; width: 1.25rem; text-indent: 0; font-weight: 700; }
.change-added::before { content: "+"; color: var(--ok); }
.change-changed::before { content: "~"; color: var(--warn); }
.change-removed::before { content: "−"; color: var(--bad); }
.history td span[class^="change-"] { display: block; padding-left: 1.25rem; text-indent: -1.25rem; }
.inst { font-weight: 600; }
.badge { display: inline-block; padding: 0 0.45rem; border: 1px solid currentColor; border-radius: 999px; font-size: 0.8rem; font-weight: 600; white-space: nowrap; }
.badge-active { color: var(--ok); background: var(--ok-bg); }
.badge-suspended { color: var(--warn); background: var(--warn-bg); }
.badge-revoked, .badge-expired { color: var(--bad); background: var(--bad-bg); }
.badge-current { color: var(--accent); background: #e6eef8; }
.threshold { margin: 0.5rem 0; padding: 0.25rem 0.75rem; border-left: 3px solid var(--line); }
.threshold p { margin: 0.25rem 0; }
progress { vertical-align: middle; width: 8rem; margin-left: 0.5rem; }
.table-wrap { overflow-x: auto; margin: 0.5rem 0 1rem; border: 1px solid var(--line); border-radius: 4px; }
table { width: 100%; border-collapse: collapse; font-size: 0.9375rem; }
caption { text-align: left; padding: 0.5rem 0.75rem; font-weight: 600; background: var(--band); }
th, td { text-align: left; vertical-align: top; padding: 0.5rem 0.75rem; border-top: 1px solid var(--line); }
thead th { font-size: 0.875rem; color: var(--muted); background: var(--band); border-top: 0; }
tbody tr:nth-child(even) { background: #fafbfc; }
.back { margin: 0.25rem 0 1rem; font-size: 0.875rem; }
.page-footer { margin-top: 2rem; padding-bottom: 2rem; color: var(--muted); font-size: 0.875rem; }
/* Tablets in portrait and phones: each row becomes a card, each cell labelled by its column. */
@media (max-width: 860px) {
  body { font-size: 15px; }
  .page-header, main, .page-footer { padding: 0 0.75rem; }
  .page-header { padding-top: 0.75rem; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  table.stack, table.stack caption, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-top: 2px solid var(--line); }
  table.stack td { position: relative; padding-left: min(11rem, 38%); border-top: 1px solid #e4e7eb; }
  table.stack td::before {
    content: attr(data-label); position: absolute; left: 0.75rem; width: calc(min(11rem, 38%) - 1.5rem);
    font-weight: 600; font-size: 0.875rem; color: var(--muted); overflow-wrap: anywhere;
  }
  .facts div { min-width: 0; }
}
@media (prefers-reduced-motion: reduce) { * { scroll-behavior: auto !important; } }
@media print { .skip, .toc, .languages { display: none; } .table-wrap { overflow: visible; border: 0; } }
`.trimStart()
