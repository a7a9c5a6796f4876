//! The pages as HTML, from the views: no template engine, every text escaped on the way
//! in ([`esc`]), no inline script or style (the Content-Security-Policy forbids both: the
//! one script and the one stylesheet are served from /assets), colours from classes.

use std::fmt::Write as _;

use patchfleet_planner::instances::{InstancePatch, InstanceSummary};

use super::view::{
    AccountView, ConditionView, EventView, GroupView, InstancesView, NodeView, Overview,
    OverviewQuery, RolloutView, RowState, SORT_COLUMNS, WindowView, bar_segments,
};
use crate::report::RowCounts;

/// Escapes text for HTML content and double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value or a path segment.
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What every page has around its content.
pub struct Frame<'a> {
    pub title: &'a str,
    /// (text, link) from the overview down; the last one is this page.
    pub crumbs: Vec<(String, Option<String>)>,
    /// The user as TokenReview named them; None on the login page.
    pub user: Option<&'a str>,
    /// Seconds between the page's checks for a change; 0: it does not check.
    pub refresh: u64,
    /// The ETag of what the page shows, for its first check.
    pub etag: &'a str,
}

pub fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · patchfleet</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script src=\"/assets/app.js\" defer></script></head><body><header>\
         <a class=\"brand\" href=\"/\">patchfleet</a><nav class=\"crumbs\">",
        esc(frame.title)
    );
    for (text, link) in &frame.crumbs {
        match link {
            Some(href) => {
                let _ = write!(out, "<a href=\"{}\">{}</a>", esc(href), esc(text));
            }
            None => {
                let _ = write!(out, "<span>{}</span>", esc(text));
            }
        }
    }
    out.push_str("</nav>");
    if let Some(user) = frame.user {
        let _ = write!(
            out,
            "<form class=\"user\" method=\"post\" action=\"/logout\"><span id=\"user\">{}</span>\
             <button type=\"submit\">Log out</button></form>",
            esc(user)
        );
    }
    let _ = writeln!(
        out,
        "</header><main data-refresh=\"{}\" data-etag=\"{}\">{body}</main></body></html>",
        frame.refresh,
        esc(frame.etag)
    );
    out
}

/// The login form; `error` says why the last token was refused.
pub fn login(next: &str, error: Option<&str>) -> String {
    let mut body = String::from("<section class=\"login\"><h1>Log in</h1>");
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" id=\"login-error\">{}</p>",
            esc(error)
        );
    }
    let _ = write!(
        body,
        "<p>Paste a Kubernetes bearer token (<code>kubectl create token NAME</code>, or your \
         kubeconfig's). It is checked with a TokenReview and kept only in an HttpOnly cookie \
         of this browser; what you see is what RBAC lets its user get.</p>\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <textarea id=\"token\" name=\"token\" rows=\"4\" autocomplete=\"off\" spellcheck=\"false\" \
         required></textarea><button id=\"login\" type=\"submit\">Log in</button></form></section>",
        esc(next)
    );
    page(
        &Frame {
            title: "Log in",
            crumbs: vec![("Log in".into(), None)],
            user: None,
            refresh: 0,
            etag: "",
        },
        &body,
    )
}

/// A short page for a refusal or a failure (401 and 403 say which permission is missing).
pub fn problem(title: &str, message: &str, user: Option<&str>) -> String {
    page(
        &Frame {
            title,
            crumbs: vec![(title.into(), None)],
            user,
            refresh: 0,
            etag: "",
        },
        &format!(
            "<section class=\"problem\"><h1>{}</h1><p id=\"problem\">{}</p></section>",
            esc(title),
            esc(message)
        ),
    )
}

/// The compliance bar: one rectangle per segment, widths in proportion to the nodes.
pub fn bar(counts: &RowCounts) -> String {
    let segments = bar_segments(counts);
    let total: u32 = segments.iter().map(|(_, n)| n).sum();
    let label = segments
        .iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        "<svg class=\"bar\" viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" width=\"120\" \
         height=\"12\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(&label),
        esc(&label)
    );
    if total == 0 {
        out.push_str("<rect class=\"empty\" x=\"0\" y=\"0\" width=\"100\" height=\"10\"/>");
    } else {
        let mut x = 0.0_f64;
        for (name, n) in segments {
            if n == 0 {
                continue;
            }
            let width = f64::from(n) * 100.0 / f64::from(total);
            let _ = write!(
                out,
                "<rect class=\"{name}\" x=\"{x:.2}\" y=\"0\" width=\"{width:.2}\" height=\"10\"/>"
            );
            x += width;
        }
    }
    out.push_str("</svg>");
    out
}

fn count_cells(c: &RowCounts) -> String {
    [
        ("instances", c.instances),
        ("online", c.online),
        ("missing", c.missing),
        ("failed", c.failed),
        ("pendingReboot", c.pending_reboot),
        ("agentUpdates", c.agent_updates),
        ("nonCompliant", c.non_compliant),
    ]
    .iter()
    .map(|(col, n)| format!("<td class=\"num\" data-col=\"{col}\">{n}</td>"))
    .collect()
}

const COUNT_HEADERS: &str = "<th>Instances</th><th>Online</th><th>Missing</th><th>Failed</th>\
     <th>Pending reboot</th><th>Agent updates</th><th>Non-compliant</th>";

fn query_string(q: &OverviewQuery, sort: Option<&str>, order: Option<&str>) -> String {
    let mut parts = Vec::new();
    for (key, value) in [
        ("provider", q.provider.as_deref()),
        ("label", q.label.as_deref()),
        ("state", q.state.as_deref()),
        ("sort", sort),
        ("order", order),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            parts.push(format!("{key}={}", enc(v)));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub fn overview(view: &Overview) -> String {
    let q = &view.query;
    let mut out = String::from("<h1>Fleet</h1>");
    // Filters: a plain GET form, so they work without the script and land in the URL.
    out.push_str("<form class=\"filters\" method=\"get\" action=\"/\"><label>Provider <select name=\"provider\" id=\"filter-provider\"><option value=\"\">any</option>");
    for p in &view.providers {
        let selected = if q.provider.as_deref() == Some(p) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{selected}>{}</option>", esc(p));
    }
    let _ = write!(
        out,
        "</select></label><label>Label <input name=\"label\" id=\"filter-label\" \
         placeholder=\"key=value\" value=\"{}\"></label><label>State <select name=\"state\" \
         id=\"filter-state\"><option value=\"\">any</option>",
        esc(q.label.as_deref().unwrap_or(""))
    );
    for s in RowState::ALL {
        let selected = if q.state.as_deref() == Some(s.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{selected}>{}</option>", s.as_str());
    }
    out.push_str("</select></label>");
    for (key, value) in [("sort", &q.sort), ("order", &q.order)] {
        if let Some(v) = value {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{key}\" value=\"{}\">",
                esc(v)
            );
        }
    }
    out.push_str(
        "<button type=\"submit\" id=\"filter\">Filter</button> <a href=\"/\">clear</a></form>",
    );

    out.push_str("<table id=\"accounts\"><thead><tr>");
    let current = q.sort.as_deref().unwrap_or("account");
    let descending = q.order.as_deref() == Some("desc");
    for (column, title) in SORT_COLUMNS {
        // The bar's column sits between the counts and the last run, as in the rows.
        if column == "lastRun" {
            out.push_str("<th>Compliance</th>");
        }
        let (mark, next) = match (column == current, descending) {
            (true, false) => (" ▲", "desc"),
            (true, true) => (" ▼", "asc"),
            (false, _) => ("", "asc"),
        };
        let _ = write!(
            out,
            "<th><a class=\"sort\" data-sort=\"{column}\" href=\"/{}\">{title}{mark}</a></th>",
            esc(&query_string(q, Some(column), Some(next)))
        );
    }
    out.push_str("</tr></thead><tbody>");
    for r in &view.accounts {
        let row = &r.row;
        let _ = write!(
            out,
            "<tr class=\"state-{}\" data-account=\"{}\" data-region=\"{}\" data-state=\"{}\">\
             <td>{}</td><td><a href=\"/accounts/{}\">{}</a><div class=\"sub\">{}</div></td><td class=\"nw\">{}</td>",
            r.state.as_str(),
            esc(&row.account),
            esc(&row.region),
            r.state.as_str(),
            esc(&row.provider),
            enc(&row.account),
            esc(&row.account),
            esc(&row.account_id),
            esc(&row.region),
        );
        out.push_str(&count_cells(&row.counts));
        let _ = write!(out, "<td>{}</td>", bar(&row.counts));
        let stale = if r.stale {
            " <span class=\"badge stale\" data-col=\"stale\">stale</span>"
        } else {
            ""
        };
        let error = if row.error.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"badge error\" title=\"{}\">error</span>",
                esc(&row.error)
            )
        };
        let _ = write!(
            out,
            "<td data-col=\"lastRun\">{}</td><td data-col=\"observedAt\">{}{stale}{error}</td></tr>",
            esc(&row.last_run),
            esc(&row.observed_at),
        );
    }
    let t = &view.totals;
    let _ = write!(
        out,
        "</tbody><tfoot><tr id=\"totals\"><th colspan=\"3\">{} account-regions</th>{}<td>{}</td>\
         <td colspan=\"2\"></td></tr></tfoot></table>",
        view.accounts.len(),
        count_cells(t),
        bar(t)
    );
    if !view.unread_accounts.is_empty() {
        out.push_str("<p class=\"note\">Not read yet by a compliance pass: ");
        let links: Vec<String> = view
            .unread_accounts
            .iter()
            .map(|a| format!("<a href=\"/accounts/{}\">{}</a>", enc(a), esc(a)))
            .collect();
        out.push_str(&links.join(", "));
        out.push_str("</p>");
    }
    out.push_str(
        "<p class=\"legend\"><span class=\"key failed\"></span>failed <span class=\"key reboot\"></span>pending reboot \
         <span class=\"key missing\"></span>missing <span class=\"key compliant\"></span>compliant \
         <span class=\"key unreported\"></span>not reported</p>",
    );
    if !view.groups.is_empty() {
        let _ = write!(
            out,
            "<h2>Patch groups</h2><table id=\"groups\"><thead><tr><th>Namespace</th><th>Name</th>\
             <th>Patch Group</th>{COUNT_HEADERS}<th>Compliance</th></tr></thead><tbody>"
        );
        for g in &view.groups {
            let _ = write!(
                out,
                "<tr data-group=\"{}/{}\"><td>{}</td><td><a href=\"/groups/{}/{}\">{}</a></td><td>{}</td>{}<td>{}</td></tr>",
                esc(&g.namespace),
                esc(&g.name),
                esc(&g.namespace),
                enc(&g.namespace),
                enc(&g.name),
                esc(&g.name),
                esc(&g.group),
                count_cells(&g.counts),
                bar(&g.counts)
            );
        }
        out.push_str("</tbody></table>");
    }
    if !view.windows.is_empty() {
        out.push_str(
            "<h2>Maintenance windows</h2><table id=\"windows\"><thead><tr><th>Namespace</th>\
             <th>Name</th><th>Succeeded</th><th>Failed</th><th>Never run</th></tr></thead><tbody>",
        );
        for w in &view.windows {
            let _ = write!(
                out,
                "<tr data-window=\"{}/{}\"><td>{}</td><td><a href=\"/windows/{}/{}\">{}</a></td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&w.namespace),
                esc(&w.name),
                esc(&w.namespace),
                enc(&w.namespace),
                enc(&w.name),
                esc(&w.name),
                w.succeeded,
                w.failed,
                w.never_run
            );
        }
        out.push_str("</tbody></table>");
    }
    out
}

fn conditions(list: &[ConditionView]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Conditions</h2><table class=\"conditions\"><thead><tr><th>Type</th><th>Status</th>\
         <th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>",
    );
    for c in list {
        let _ = write!(
            out,
            "<tr data-condition=\"{}\"><td>{}</td><td class=\"cond-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.type_),
            esc(&c.type_),
            esc(&c.status.to_lowercase()),
            esc(&c.status),
            esc(&c.reason),
            esc(&c.message),
            esc(&c.since)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn events(list: &[EventView]) -> String {
    let mut out = String::from("<h2>Recent events</h2>");
    if list.is_empty() {
        out.push_str("<p class=\"note\">None.</p>");
        return out;
    }
    out.push_str(
        "<table class=\"events\"><thead><tr><th>Type</th><th>Reason</th><th>Message</th>\
         <th>Count</th><th>Last seen</th></tr></thead><tbody>",
    );
    for e in list {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&e.type_),
            esc(&e.reason),
            esc(&e.message),
            e.count,
            esc(&e.last_seen)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn run_cells(run: &patchfleet_api::v1alpha1::WindowRun) -> String {
    format!(
        "<td class=\"run-{}\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        esc(&run.status.to_lowercase()),
        esc(&run.status),
        esc(run.start_time.as_deref().unwrap_or("")),
        esc(run.end_time.as_deref().unwrap_or("")),
        run.succeeded,
        run.failed
    )
}

const RUN_HEADERS: &str =
    "<th>Status</th><th>Started</th><th>Ended</th><th>Nodes succeeded</th><th>Nodes failed</th>";

pub fn account(view: &AccountView) -> String {
    let mut out = format!(
        "<h1>{} <span class=\"sub\">{} · {}</span></h1>",
        esc(&view.name),
        esc(&view.account_id),
        esc(&view.provider)
    );
    if !view.labels.is_empty() {
        out.push_str("<p class=\"labels\">");
        for (k, v) in &view.labels {
            let _ = write!(out, "<span class=\"badge\">{}={}</span> ", esc(k), esc(v));
        }
        out.push_str("</p>");
    }
    if let Some(arn) = &view.caller_arn {
        let _ = write!(
            out,
            "<p class=\"note\">Acts as <code>{}</code></p>",
            esc(arn)
        );
    }
    let _ = write!(
        out,
        "<h2>Regions</h2><table id=\"regions\"><thead><tr><th>Region</th><th>Converged</th>\
         {COUNT_HEADERS}<th>Compliance</th><th>Node headroom</th><th>Last Install run</th>\
         <th>Observed</th></tr></thead><tbody>"
    );
    for r in &view.regions {
        let row = &r.row.row;
        let converged = match r.converged {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let stale = if r.row.stale {
            " <span class=\"badge stale\">stale</span>"
        } else {
            ""
        };
        let error = if row.error.is_empty() {
            String::new()
        } else {
            format!("<div class=\"error\">{}</div>", esc(&row.error))
        };
        let _ = write!(
            out,
            "<tr class=\"state-{}\" data-region=\"{}\"><td>{}</td><td>{converged}</td>{}<td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}{stale}{error}</td></tr>",
            r.row.state.as_str(),
            esc(&row.region),
            esc(&row.region),
            count_cells(&row.counts),
            bar(&row.counts),
            r.node_headroom.map(|h| h.to_string()).unwrap_or_default(),
            esc(&row.last_run),
            esc(&row.observed_at),
        );
    }
    out.push_str("</tbody></table>");
    if !view.groups.is_empty() {
        let _ = write!(
            out,
            "<h2>Patch groups here</h2><table id=\"account-groups\"><thead><tr><th>Group</th>\
             <th>Region</th>{COUNT_HEADERS}<th>Compliance</th><th>Nodes</th></tr></thead><tbody>"
        );
        for g in &view.groups {
            for (region, counts) in &g.regions {
                let _ = write!(
                    out,
                    "<tr data-group=\"{}/{}\" data-region=\"{}\"><td><a href=\"/groups/{}/{}\">{}/{}</a>\
                     <div class=\"sub\">{}</div></td><td>{}</td>{}<td>{}</td>\
                     <td><a class=\"nodes\" href=\"/instances/{}/{}/{}/{}\">nodes</a></td></tr>",
                    esc(&g.namespace),
                    esc(&g.name),
                    esc(region),
                    enc(&g.namespace),
                    enc(&g.name),
                    esc(&g.namespace),
                    esc(&g.name),
                    esc(&g.group),
                    esc(region),
                    count_cells(counts),
                    bar(counts),
                    enc(&view.name),
                    enc(region),
                    enc(&g.namespace),
                    enc(&g.name),
                );
            }
        }
        out.push_str("</tbody></table>");
    }
    if !view.windows.is_empty() {
        let _ = write!(
            out,
            "<h2>Maintenance windows here</h2><table id=\"account-windows\"><thead><tr><th>Window</th>\
             <th>Region</th>{RUN_HEADERS}</tr></thead><tbody>"
        );
        for w in &view.windows {
            for (region, run) in &w.runs {
                let _ = write!(
                    out,
                    "<tr data-window=\"{}/{}\"><td><a href=\"/windows/{}/{}\">{}/{}</a></td><td>{}</td>{}</tr>",
                    esc(&w.namespace),
                    esc(&w.name),
                    enc(&w.namespace),
                    enc(&w.name),
                    esc(&w.namespace),
                    esc(&w.name),
                    esc(region),
                    run_cells(run)
                );
            }
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(&conditions(&view.conditions));
    out.push_str(&events(&view.events));
    out
}

pub fn group(view: &GroupView) -> String {
    let mut out = format!(
        "<h1>{}/{} <span class=\"sub\">Patch Group {} · policy {}</span></h1>",
        esc(&view.namespace),
        esc(&view.name),
        esc(&view.group),
        esc(&view.policy)
    );
    if let Some(stage) = &view.rollout {
        let _ = write!(
            out,
            "<p id=\"group-rollout\">Stage <b>{}</b> of rollout <a href=\"/rollouts/{}/{}\">{}</a>: \
             <span class=\"state\">{:?}</span>{}</p>",
            esc(&stage.stage),
            enc(&view.namespace),
            enc(&stage.rollout),
            esc(&stage.rollout),
            stage.state,
            match (&stage.release, &stage.cutoff) {
                (Some(release), Some(cutoff)) => format!(
                    ", release {} (patches released up to {})",
                    esc(release),
                    esc(cutoff)
                ),
                _ => ", no release yet".to_owned(),
            }
        );
    }
    if let Some(total) = &view.total {
        let _ = write!(
            out,
            "<table id=\"group-total\"><thead><tr>{COUNT_HEADERS}<th>Compliance</th><th>Overwritten</th></tr></thead>\
             <tbody><tr>{}<td>{}</td><td class=\"num\">{}</td></tr></tbody></table>",
            count_cells(total),
            bar(total),
            total.overwritten
        );
    } else {
        out.push_str("<p class=\"note\">No compliance pass has read this group yet.</p>");
    }
    let _ = write!(
        out,
        "<h2>Account-regions, worst first</h2><table id=\"group-regions\"><thead><tr><th>Account</th>\
         <th>Region</th>{COUNT_HEADERS}<th>Compliance</th><th>Nodes</th></tr></thead><tbody>"
    );
    for r in &view.regions {
        let (account, nodes) = match &r.account {
            Some(name) => (
                format!(
                    "<a href=\"/accounts/{}\">{}</a><div class=\"sub\">{}</div>",
                    enc(name),
                    esc(name),
                    esc(&r.account_id)
                ),
                format!(
                    "<a class=\"nodes\" href=\"/instances/{}/{}/{}/{}\">nodes</a>",
                    enc(name),
                    enc(&r.region),
                    enc(&view.namespace),
                    enc(&view.name)
                ),
            ),
            None => (esc(&r.account_id), String::new()),
        };
        let _ = write!(
            out,
            "<tr data-account-id=\"{}\" data-region=\"{}\"><td>{account}</td><td>{}</td>{}<td>{}</td><td>{nodes}</td></tr>",
            esc(&r.account_id),
            esc(&r.region),
            esc(&r.region),
            count_cells(&r.counts),
            bar(&r.counts),
        );
    }
    out.push_str("</tbody></table>");
    if view.omitted_regions > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{} more account-regions are in the totals only.</p>",
            view.omitted_regions
        );
    }
    out.push_str(&conditions(&view.conditions));
    out.push_str(&events(&view.events));
    out
}

pub fn window(view: &WindowView) -> String {
    let mut out = format!(
        "<h1>{}/{} <span class=\"sub\">{}</span></h1><p>Succeeded <b>{}</b> · failed <b>{}</b> · \
         in progress <b>{}</b> · never run <b>{}</b></p>",
        esc(&view.namespace),
        esc(&view.name),
        esc(&view.schedule),
        view.succeeded,
        view.failed,
        view.in_progress,
        view.never_run
    );
    let _ = write!(
        out,
        "<h2>Last run per account-region</h2><table id=\"window-runs\"><thead><tr><th>Account</th>\
         <th>Region</th>{RUN_HEADERS}</tr></thead><tbody>"
    );
    for r in &view.runs {
        let account = match &r.account {
            Some(name) => format!("<a href=\"/accounts/{}\">{}</a>", enc(name), esc(name)),
            None => esc(&r.account_id),
        };
        let _ = write!(
            out,
            "<tr><td>{account}</td><td>{}</td>{}</tr>",
            esc(&r.region),
            run_cells(&r.run)
        );
    }
    out.push_str("</tbody></table>");
    out.push_str(&conditions(&view.conditions));
    out.push_str(&events(&view.events));
    out
}

fn patch_count_cells(i: &InstanceSummary) -> String {
    match &i.patches {
        Some(p) => {
            [
                ("installed", p.installed + p.installed_other),
                ("missing", p.missing),
                ("failed", p.failed),
                ("pendingReboot", p.installed_pending_reboot),
                ("critical", p.critical_non_compliant),
            ]
            .iter()
            .map(|(col, n)| format!("<td class=\"num\" data-col=\"{col}\">{n}</td>"))
            .collect::<String>()
                + &format!(
                    "<td>{} {}</td>",
                    esc(&p.operation),
                    esc(p.operation_end.as_deref().unwrap_or(""))
                )
        }
        None => "<td colspan=\"6\" class=\"note\">no patch operation reported</td>".into(),
    }
}

pub fn instances(view: &InstancesView) -> String {
    let mut out = format!(
        "<h1>{}/{} <span class=\"sub\">in {} · {}</span></h1><p class=\"note\">Read from SSM at \
         {}; a reload within the cache's lifetime costs no SSM call.</p>",
        esc(&view.namespace),
        esc(&view.name),
        esc(&view.account),
        esc(&view.region),
        esc(&view.read_at)
    );
    out.push_str(
        "<table id=\"instances\"><thead><tr><th>Node</th><th>Platform</th><th>Provider</th>\
         <th>Ping</th><th>Agent</th><th>Installed</th><th>Missing</th><th>Failed</th>\
         <th>Pending reboot</th><th>Critical</th><th>Last operation</th></tr></thead><tbody>",
    );
    for i in &view.instances {
        let agent = match i.latest_agent {
            Some(false) => " <span class=\"badge\">update</span>",
            _ => "",
        };
        let _ = write!(
            out,
            "<tr data-node=\"{}\"><td><a href=\"/nodes/{}/{}/{}\">{}</a><div class=\"sub\">{}</div></td>\
             <td>{}</td><td>{}</td><td class=\"ping-{}\">{}</td><td>{}{agent}</td>{}</tr>",
            esc(&i.id),
            enc(&view.account),
            enc(&view.region),
            enc(&i.id),
            esc(&i.id),
            esc(i.computer_name.as_deref().unwrap_or("")),
            esc(i.platform_name.as_deref().unwrap_or(&i.platform_type)),
            esc(i.provider.as_str()),
            esc(&i.ping_status.to_lowercase()),
            esc(&i.ping_status),
            esc(i.agent_version.as_deref().unwrap_or("")),
            patch_count_cells(i),
        );
    }
    out.push_str("</tbody></table>");
    if view.instances.is_empty() {
        out.push_str("<p class=\"note\">No managed node carries this Patch Group here.</p>");
    }
    out
}

fn patch_row(p: &InstancePatch) -> String {
    format!(
        "<tr class=\"patch-{}\" data-patch=\"{}\"><td>{}<div class=\"sub\">{}</div></td><td data-col=\"state\">{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&p.state.to_lowercase()),
        esc(&p.title),
        esc(&p.title),
        esc(&p.kb_id),
        esc(&p.state),
        esc(&p.classification),
        esc(&p.severity),
        esc(&p.cve_ids.join(", ")),
        esc(p.installed_time.as_deref().unwrap_or("")),
    )
}

pub fn node(view: &NodeView) -> String {
    let i = &view.detail.instance;
    let mut out = format!(
        "<h1>{} <span class=\"sub\">{} · {} · {}</span></h1><p class=\"note\">Read from SSM at {}.</p>\
         <table id=\"node\"><tbody><tr><th>Platform</th><td>{}</td></tr><tr><th>Provider</th><td>{}</td></tr>\
         <tr><th>Ping</th><td>{}</td></tr><tr><th>Agent</th><td>{}</td></tr>",
        esc(&i.id),
        esc(i.computer_name.as_deref().unwrap_or("")),
        esc(&view.account),
        esc(&view.region),
        esc(&view.read_at),
        esc(i.platform_name.as_deref().unwrap_or(&i.platform_type)),
        esc(i.provider.as_str()),
        esc(&i.ping_status),
        esc(i.agent_version.as_deref().unwrap_or("")),
    );
    if let Some(p) = &i.patches {
        let _ = write!(
            out,
            "<tr><th>Patch Group</th><td>{}</td></tr><tr><th>Baseline</th><td>{}</td></tr>\
             <tr><th>Last operation</th><td>{} {}</td></tr>",
            esc(&p.patch_group),
            esc(&p.baseline_id),
            esc(&p.operation),
            esc(p.operation_end.as_deref().unwrap_or(""))
        );
    }
    out.push_str(
        "</tbody></table><h2>Patches</h2><table id=\"patches\"><thead><tr><th>Patch</th><th>State</th>\
         <th>Classification</th><th>Severity</th><th>CVEs</th><th>Installed</th></tr></thead><tbody>",
    );
    for p in &view.detail.patches {
        out.push_str(&patch_row(p));
    }
    out.push_str("</tbody></table>");
    if view.detail.patches.is_empty() {
        out.push_str("<p class=\"note\">SSM reports no patch for this node yet.</p>");
    }
    out
}

/// A rollout: its release, then one row per stage with its gate and evidence.
pub fn rollout(view: &RolloutView) -> String {
    let release = match (&view.release, &view.cutoff) {
        (Some(release), Some(cutoff)) => format!(
            "release <b>{}</b> · patches released up to <b>{}</b> · started {}",
            esc(release),
            esc(cutoff),
            esc(view.started.as_deref().unwrap_or(""))
        ),
        _ => "no release started yet".to_owned(),
    };
    let mut out = format!(
        "<h1>{}/{} <span class=\"sub\">rollout of policy {}</span></h1><p>{release}</p>",
        esc(&view.namespace),
        esc(&view.name),
        esc(&view.policy)
    );
    out.push_str(
        "<h2>Stages, in order</h2><table id=\"rollout-stages\"><thead><tr><th>Stage</th>\
         <th>Groups</th><th>State</th><th>Release</th><th>Since</th><th>Gate</th>\
         <th class=\"num\">Nodes</th><th class=\"num\">Installed</th><th class=\"num\">Failed</th>\
         <th class=\"num\">Pending reboot</th><th>Window execution</th><th>Why</th></tr></thead><tbody>",
    );
    for s in &view.stages {
        let groups: Vec<String> = s
            .groups
            .iter()
            .map(|g| {
                format!(
                    "<a href=\"/groups/{}/{}\">{}</a>",
                    enc(&view.namespace),
                    enc(g),
                    esc(g)
                )
            })
            .collect();
        let release = match (&s.release, &s.cutoff) {
            (Some(release), Some(cutoff)) => format!("{} (≤ {})", esc(release), esc(cutoff)),
            _ => "none yet".to_owned(),
        };
        let gate = format!(
            "{} · soak {} · at most {} failed · at least {} installed",
            esc(&s.approval),
            esc(&s.soak),
            esc(&s.max_failed),
            esc(&s.min_installed)
        );
        let evidence = match &s.evidence {
            Some(e) => format!(
                "<td class=\"num\" data-col=\"nodes\">{}</td><td class=\"num\" data-col=\"installed\">{}</td>\
                 <td class=\"num\" data-col=\"failed\">{}</td><td class=\"num\">{}</td><td>{}</td>",
                e.nodes,
                e.installed,
                e.failed,
                e.pending_reboot,
                esc(e.window_execution.as_deref().unwrap_or(""))
            ),
            None => "<td colspan=\"5\" class=\"note\">no evidence read for its release yet</td>"
                .to_owned(),
        };
        let _ = write!(
            out,
            "<tr data-stage=\"{}\"><td>{}</td><td>{}</td><td class=\"state\">{:?}</td><td>{release}</td>\
             <td>{}</td><td>{gate}</td>{evidence}<td>{}</td></tr>",
            esc(&s.name),
            esc(&s.name),
            groups.join(", "),
            s.state,
            esc(s.since.as_deref().unwrap_or("")),
            esc(&s.message)
        );
    }
    out.push_str("</tbody></table>");
    out.push_str(&conditions(&view.conditions));
    out.push_str(&events(&view.events));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            esc("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(enc("env=prod&x y/é"), "env%3Dprod%26x%20y%2F%C3%A9");
    }

    #[test]
    fn a_page_has_no_inline_script_or_style() {
        let html = problem(
            "Forbidden",
            "<img src=x onerror=alert(1)>",
            Some("<b>u</b>"),
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>u"), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script src=\"/assets/app.js\" defer></script>"));
    }

    #[test]
    fn the_bar_draws_each_node_once_in_proportion() {
        let counts = RowCounts {
            instances: 10,
            non_compliant: 4,
            failed: 1,
            pending_reboot: 1,
            missing: 3,
            compliant: 4,
            unreported: 2,
            ..RowCounts::default()
        };
        let svg = bar(&counts);
        // 1 failed, 1 reboot, 2 missing (4 non-compliant), 4 compliant, 2 unreported.
        assert!(
            svg.contains("class=\"failed\" x=\"0.00\" y=\"0\" width=\"10.00\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"reboot\" x=\"10.00\" y=\"0\" width=\"10.00\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"missing\" x=\"20.00\" y=\"0\" width=\"20.00\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"compliant\" x=\"40.00\" y=\"0\" width=\"40.00\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"unreported\" x=\"80.00\" y=\"0\" width=\"20.00\""),
            "{svg}"
        );
        assert!(bar(&RowCounts::default()).contains("class=\"empty\""));
    }
}
