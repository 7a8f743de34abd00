//! `nines status`: the status report of a running gateway (`/status.json`), printed for a terminal. The text is
//! made by [`text`], which the demo uses too.

use std::fmt::Write;

use crate::record::status::{StatusReport, Window, percent};
use crate::server::status_page::iso;

#[derive(Debug, thiserror::Error)]
pub enum StatusCliError {
    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {hint}")]
    Refused { url: String, status: u16, hint: &'static str },
    #[error("{url} did not answer with a status report")]
    Unreadable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Fetch the report from the gateway at `base` (e.g. `http://127.0.0.1:4000`), with `key` if given.
pub async fn fetch(base: &str, key: Option<&str>) -> Result<StatusReport, StatusCliError> {
    let url = format!("{}/status.json", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|source| StatusCliError::Unreachable { url: url.clone(), source })?;
    let mut req = client.get(&url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.map_err(|source| StatusCliError::Unreachable { url: url.clone(), source })?;
    let status = resp.status().as_u16();
    if status != 200 {
        let hint = match status {
            401 => "set NINES_ADMIN_KEY to the gateway's admin key (or a client key when it has none)",
            404 => "is this a nines gateway?",
            _ => "see the gateway's log",
        };
        return Err(StatusCliError::Refused { url, status, hint });
    }
    resp.json::<StatusReport>().await.map_err(|source| StatusCliError::Unreadable { url, source })
}

fn avail(w: Option<&Window>) -> String {
    match w {
        Some(w) => match w.availability {
            Some(a) => format!("{:>7} ({})", percent(a), w.total),
            None => format!("{:>7}", "no data"),
        },
        None => String::new(),
    }
}

fn windows(ws: &[Window]) -> String {
    ws.iter().map(|w| format!("{} {}", w.window, avail(Some(w)))).collect::<Vec<_>>().join("   ")
}

fn state(s: &str) -> &str {
    match s {
        "half_open" => "recovering",
        "breaker_open" => "breaker open",
        "rate_limited" => "rate-limited",
        other => other,
    }
}

fn clock(ms: u64) -> String {
    // "YYYY-MM-DD HH:MM:SS UTC" → "HH:MM:SS UTC" keeps lines short.
    let full = iso(ms);
    full.get(11..).map(str::to_owned).unwrap_or(full)
}

/// The report as lines for a terminal (at most about 100 columns wide).
pub fn text(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.headline);
    let _ = writeln!(out, "\nYour users (requests)    saved in 24 h: {}", r.gateway.saved_24h);
    let _ = writeln!(out, "  {}", windows(&r.gateway.availability));
    let _ = writeln!(out, "\nProviders (attempts)");
    for p in &r.providers {
        let _ = writeln!(
            out,
            "  {:<12} {:<13} {}",
            p.name,
            state(&p.state),
            windows(&p.availability[..2.min(p.availability.len())])
        );
        for t in r.targets.iter().filter(|t| t.provider == p.name) {
            let until = t.until.map(|u| format!(" until {}", clock(u))).unwrap_or_default();
            let _ = writeln!(out, "    {:<28} {}{until}", t.id, state(&t.state));
        }
    }
    if !r.routes.is_empty() {
        let _ = writeln!(out, "\nRoutes (requests)");
        for rt in &r.routes {
            let _ = writeln!(
                out,
                "  {:<12} {}   saved {}",
                rt.name,
                windows(&rt.availability[..2.min(rt.availability.len())]),
                rt.saved_24h
            );
        }
    }
    let (open, closed): (Vec<_>, Vec<_>) = r.incidents.iter().partition(|i| i.is_open());
    for (title, list) in [("Open incidents", open), ("Recent incidents", closed)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        for i in list.iter().take(10) {
            let kinds: Vec<String> = i
                .kinds
                .iter()
                .map(|(k, c)| {
                    let st: Vec<String> = c.statuses.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
                    format!("{k} ×{} ({})", c.count, st.join(", "))
                })
                .collect();
            let end = i.ended_at.map(|e| format!(" to {}", clock(e))).unwrap_or_default();
            let _ = writeln!(out, "  {} since {}{end}: {}", i.target, clock(i.started_at), kinds.join("; "));
            let _ =
                writeln!(out, "    blast radius: {} — {}", i.blast_radius.scope, i.blast_radius.explanation);
            let q = &i.requests;
            let _ = writeln!(
                out,
                "    {} of {} affected requests saved (failover {}, retry {}, resume {}), {} failed",
                q.saved, q.affected, q.saved_by_failover, q.saved_by_retry, q.saved_by_resume, q.failed
            );
        }
    }
    out
}
