"""The dashboard's stylesheet: scoped to ``.palot-dashboard``, JupyterLab theme variables with fallbacks."""

CSS = """
.palot-dashboard { --palot-border: var(--jp-border-color2, #d0d7de); --palot-muted: var(--jp-ui-font-color2, #6e7781);
  --palot-bg: var(--jp-layout-color1, #fff); --palot-bg2: var(--jp-layout-color2, #f6f8fa);
  font-size: 13px; border: 1px solid var(--palot-border); border-radius: 6px; overflow: hidden; }
.palot-dashboard .palot-columns { flex-wrap: wrap; align-items: stretch; }
.palot-dashboard .palot-banner { padding: 2px 8px; }
.palot-dashboard .palot-banner .palot-error { margin: 4px 0; }
.palot-dashboard .palot-sidebar { flex: 0 0 190px; width: 190px; padding: 6px 8px; background: var(--palot-bg2);
  border-right: 1px solid var(--palot-border); box-sizing: border-box; }
.palot-dashboard .palot-sidebar .widget-select { width: 100%; }
.palot-dashboard .palot-sidebar select { width: 100%; font-size: 12px; }
.palot-dashboard .palot-side-h, .palot-dashboard .palot-h { font-size: 11px; font-weight: 600; letter-spacing: .05em;
  color: var(--palot-muted); margin: 8px 0 2px 0; }
.palot-dashboard .palot-today-big { font-size: 18px; font-weight: 600; }
.palot-dashboard .palot-list { flex: 1 1 420px; min-width: 340px; padding: 6px 8px; box-sizing: border-box; }
.palot-dashboard .palot-rows { max-height: 520px; overflow-y: auto; flex-wrap: nowrap; }
.palot-dashboard .palot-row { display: grid !important; grid-template-columns: 112px minmax(0, 1fr) 88px 64px;
  grid-template-areas: "status title title elapsed" "env project tokens cost"; column-gap: 6px; align-items: center;
  border-bottom: 1px solid var(--palot-border); padding: 3px 6px; flex-shrink: 0; }
.palot-dashboard .palot-row:hover { background: var(--palot-bg2); }
.palot-dashboard .palot-row.palot-selected { background: var(--jp-brand-color3, #ddf4ff); }
.palot-dashboard .palot-row.palot-st-failed { box-shadow: inset 3px 0 0 #cf222e; }
.palot-dashboard .palot-row.palot-st-waiting { box-shadow: inset 3px 0 0 #bf8700; }
.palot-dashboard .palot-row.palot-st-migrating { box-shadow: inset 3px 0 0 #8250df; }
.palot-dashboard .palot-row.palot-st-archived { opacity: .6; }
.palot-dashboard .palot-cell { margin: 0; min-width: 0; width: auto; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.palot-dashboard .palot-cell .widget-html-content { white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  line-height: 22px; height: 22px; }
.palot-dashboard .palot-c-status { grid-area: status; }
.palot-dashboard .palot-c-title { grid-area: title; }
.palot-dashboard .palot-c-elapsed { grid-area: elapsed; text-align: right; }
.palot-dashboard .palot-c-environment { grid-area: env; color: var(--palot-muted); }
.palot-dashboard .palot-c-project { grid-area: project; color: var(--palot-muted); }
.palot-dashboard .palot-c-tokens { grid-area: tokens; text-align: right; }
.palot-dashboard .palot-c-cost { grid-area: cost; text-align: right; }
.palot-dashboard .palot-c-elapsed .widget-html-content, .palot-dashboard .palot-c-tokens .widget-html-content,
.palot-dashboard .palot-c-cost .widget-html-content { justify-content: flex-end; text-align: right; }
.palot-dashboard button.palot-c-title { text-align: left; background: transparent; box-shadow: none; border: none;
  font-weight: 600; padding: 0 2px; height: 22px; line-height: 22px; color: var(--jp-content-font-color1, #1f2328); }
.palot-dashboard button.palot-c-title:hover { text-decoration: underline; background: transparent; box-shadow: none; }
.palot-dashboard .palot-badge { font-weight: 600; white-space: nowrap; }
.palot-dashboard .palot-env { font-weight: normal; }
.palot-dashboard .palot-st-running:not(.palot-row), .palot-dashboard .palot-st-migrating:not(.palot-row),
.palot-dashboard .palot-moving { animation: palot-pulse 1.6s ease-in-out infinite; }
@keyframes palot-pulse { 0%, 100% { opacity: 1; } 50% { opacity: .55; } }
.palot-dashboard .palot-muted { color: var(--palot-muted); font-weight: normal; }
.palot-dashboard .palot-empty { color: var(--palot-muted); padding: 16px 4px; }
.palot-dashboard .palot-detail { flex: 1 1 400px; max-width: 560px; min-width: 340px; padding: 6px 10px;
  border-left: 1px solid var(--palot-border); box-sizing: border-box; }
.palot-dashboard .palot-detail-title { font-size: 15px; font-weight: 600; margin: 4px 0; }
.palot-dashboard .palot-detail-line { margin: 2px 0; }
.palot-dashboard .palot-error { color: #cf222e; background: #ffebe9; border-radius: 4px; padding: 4px 6px; margin: 4px 0;
  white-space: pre-wrap; }
.palot-dashboard .palot-message { min-height: 18px; }
.palot-dashboard .palot-move { align-items: center; flex-wrap: wrap; margin: 2px 0; }
.palot-dashboard .palot-move .widget-html { margin-right: 6px; }
.palot-dashboard .palot-move button { width: auto; min-width: 70px; }
.palot-dashboard .palot-move-status .palot-moving { color: #8250df; font-weight: 600; }
.palot-dashboard .palot-move-status .palot-ok { color: #1a7f37; }
.palot-dashboard .palot-move-plan { border: 1px solid #8250df; border-radius: 6px; padding: 4px 8px; margin: 4px 0;
  background: #fbefff; color: #1f2328; }
.palot-dashboard .palot-message .palot-ok { color: #1a7f37; }
.palot-dashboard .palot-perm-box { border: 1px solid #bf8700; border-radius: 6px; padding: 4px 8px; margin: 6px 0;
  background: #fff8c5; color: #1f2328; }
.palot-dashboard .palot-perms { margin: 2px 0 4px 0; padding-left: 18px; }
.palot-dashboard .palot-actions { flex-wrap: wrap; }
.palot-dashboard .palot-actions button { width: auto; min-width: 70px; }
.palot-dashboard .palot-diff-view { max-height: 420px; overflow: auto; }
.palot-dashboard .palot-files { border-collapse: collapse; margin: 2px 0 6px 0; }
.palot-dashboard .palot-files td { padding: 0 6px 0 0; }
.palot-dashboard .palot-mark { font-family: var(--jp-code-font-family, monospace); font-weight: 600; }
.palot-dashboard .palot-path { font-family: var(--jp-code-font-family, monospace); }
.palot-dashboard .palot-add { color: #1a7f37; font-weight: 600; }
.palot-dashboard .palot-del { color: #cf222e; font-weight: 600; }
.palot-dashboard .palot-file-diff summary { cursor: pointer; margin: 4px 0; }
.palot-dashboard pre.palot-patch { margin: 0 0 6px 0; font-size: 12px; line-height: 1.35; background: var(--palot-bg2);
  border: 1px solid var(--palot-border); border-radius: 4px; overflow-x: auto; padding: 2px 0; }
.palot-dashboard pre.palot-patch span { display: block; padding: 0 6px; white-space: pre; }
.palot-dashboard .palot-line-add { background: #dafbe1; color: #116329; }
.palot-dashboard .palot-line-del { background: #ffebe9; color: #82071e; }
.palot-dashboard .palot-hunk { background: #ddf4ff; color: #0550ae; }
.palot-dashboard .palot-form textarea { min-height: 110px; font-size: 13px; }
.palot-dashboard .palot-form .widget-text, .palot-dashboard .palot-form .widget-textarea,
.palot-dashboard .palot-form .widget-combobox, .palot-dashboard .palot-form .widget-dropdown,
.palot-dashboard .palot-prompt .widget-textarea { width: auto; align-self: stretch; flex: 1 1 auto; }
.palot-dashboard .palot-prompt textarea { min-height: 44px; }
.palot-dashboard .palot-prompt button { flex: 0 0 80px; width: 80px; }
.palot-dashboard .palot-counts { margin: 4px 0; line-height: 1.8; }
.palot-dashboard .palot-item { align-items: center; border-bottom: 1px solid var(--palot-border); padding: 2px 0; }
.palot-dashboard .palot-item .widget-html { flex: 1 1 auto; }
.palot-dashboard .palot-item-line { white-space: normal; }
.palot-dashboard .palot-note { border-radius: 6px; padding: 4px 8px; margin: 4px 0; white-space: normal; }
.palot-dashboard .palot-note-body { white-space: pre-wrap; }
.palot-dashboard .palot-note-needs-you { border: 1px solid #bf8700; background: #fff8c5; color: #1f2328; }
.palot-dashboard .palot-note-done { border: 1px solid #1a7f37; background: #dafbe1; color: #1f2328; }
.palot-dashboard .palot-note-info { color: var(--palot-muted); }
.palot-dashboard .palot-inbox-count { color: #9a6700; margin: 2px 0; }
.palot-dashboard .palot-over { color: #cf222e; }
.palot-dashboard .palot-paused { color: #9a6700; margin: 2px 0; }
.palot-dashboard code.palot-asks { white-space: pre-wrap; word-break: break-all; }
.palot-dashboard .palot-inbox-item { align-items: center; border-bottom: 1px solid var(--palot-border); padding: 2px 0; }
.palot-dashboard .palot-inbox-item .widget-html { flex: 1 1 auto; }
.palot-dashboard .palot-inbox-item button { width: auto; min-width: 60px; }
.palot-dashboard pre.palot-template { white-space: pre-wrap; font-size: 12px; background: var(--palot-bg2);
  padding: 4px 6px; margin: 0 0 4px 0; }
.palot-dashboard pre.palot-settings { font-size: 12px; max-height: 300px; overflow: auto; }
"""
