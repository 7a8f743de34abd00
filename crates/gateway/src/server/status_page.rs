//! The status page: server-rendered HTML from the status report, with a little inline script that refreshes it
//! every 15 seconds and shows times in the reader's time zone. No build step, no external resource (the page's
//! content-security policy allows none). Every string that comes from outside (error messages above all) is
//! escaped.

use std::fmt::Write;

use crate::record::incidents::Incident;
use crate::record::status::{Bar, RouteStatus, StatusReport, TargetStatus, Window, percent};

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

const STYLE: &str = r#"
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2430;--mute:#6b7585;--line:#e3e7ee;--ok:#2f9e62;--warn:#d9962b;--bad:#d64545;--none:#d5dae2;--info:#3b6fd8}
@media (prefers-color-scheme:dark){:root{--bg:#0f1318;--card:#171c23;--ink:#e6e9ee;--mute:#8c95a3;--line:#262d37;--none:#2b323d}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:980px;margin:0 auto;padding:20px 14px 60px}
header h1{font-size:20px;margin:0 0 4px}header .headline{font-size:17px;font-weight:600}
.mute{color:var(--mute);font-size:13px}
section{margin-top:26px}h2{font-size:15px;text-transform:uppercase;letter-spacing:.06em;color:var(--mute);margin:0 0 10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin-bottom:12px}
.row{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:baseline;justify-content:space-between}
.name{font-weight:600}.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12.5px;font-weight:600;color:#fff;white-space:nowrap}
.healthy{background:var(--ok)}.degraded,.half_open,.rate_limited{background:var(--warn)}.breaker_open,.down,.open{background:var(--bad)}.closed{background:var(--mute)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px;margin-top:8px}
.tile{border:1px solid var(--line);border-radius:8px;padding:8px 10px}.tile b{display:block;font-size:18px}
.bars{display:flex;gap:1px;height:26px;margin:8px 0 2px;align-items:stretch}.bars i{flex:1;border-radius:1px;background:var(--none);min-width:1px}
.bars i.g{background:var(--ok)}.bars i.w{background:var(--warn)}.bars i.b{background:var(--bad)}
.legend{display:flex;justify-content:space-between;color:var(--mute);font-size:12px}
.target{border-top:1px solid var(--line);margin-top:10px;padding-top:10px}
table{border-collapse:collapse;width:100%;font-size:13.5px}td,th{text-align:left;padding:3px 8px 3px 0;vertical-align:top}th{color:var(--mute);font-weight:500}
code{font-size:12.5px;word-break:break-word}.big{font-size:26px;font-weight:700}
"#;

const SCRIPT: &str = r#"
function localTimes(){document.querySelectorAll('time[data-ms]').forEach(function(t){var d=new Date(+t.dataset.ms);t.textContent=d.toLocaleString();});}
localTimes();
setInterval(function(){fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.ok?r.text():null}).then(function(h){if(!h)return;var d=new DOMParser().parseFromString(h,'text/html');var m=d.querySelector('main');if(m){document.querySelector('main').replaceWith(m);localTimes();}}).catch(function(){});},15000);
"#;

fn time(ms: u64) -> String {
    format!("<time data-ms=\"{ms}\">{}</time>", esc(&iso(ms)))
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS UTC` (the script shows local time).
pub fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02} UTC")
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn state_label(state: &str) -> &str {
    match state {
        "healthy" => "healthy",
        "degraded" => "degraded",
        "half_open" => "recovering",
        "breaker_open" => "breaker open",
        "rate_limited" => "rate-limited",
        "down" => "down",
        other => other,
    }
}

fn availability_text(w: &Window) -> String {
    match w.availability {
        Some(a) => percent(a),
        None => "no data".to_owned(),
    }
}

fn tiles(out: &mut String, windows: &[Window], what: &str) {
    out.push_str("<div class=\"tiles\">");
    for w in windows {
        let budget = match w.budget_left {
            Some(b) if b < 0.0 => "budget overspent".to_owned(),
            Some(b) => format!("{} of budget left", percent(b.min(1.0))),
            None => String::new(),
        };
        let _ = write!(
            out,
            "<div class=\"tile\"><span class=\"mute\">{}</span><b>{}</b><span class=\"mute\">{} {what}{}</span></div>",
            esc(&w.window),
            availability_text(w),
            w.total,
            if budget.is_empty() { String::new() } else { format!(" · {budget}") }
        );
    }
    out.push_str("</div>");
}

/// A strip of `n` bars of `width` seconds ending at `end` (exclusive), with gaps shown as "no data".
fn bars(out: &mut String, data: &[Bar], end: u64, width: u64, n: u64, objective: f64, label: (&str, &str)) {
    out.push_str("<div class=\"bars\">");
    let first = end.saturating_sub(n * width);
    for k in 0..n {
        let start = first + k * width;
        match data.iter().find(|b| b.start == start) {
            Some(b) if b.total > 0 => {
                let a = b.good as f64 / b.total as f64;
                let class = if a >= objective {
                    "g"
                } else if a >= 0.95 {
                    "w"
                } else {
                    "b"
                };
                let _ = write!(
                    out,
                    "<i class=\"{class}\" title=\"{}: {} ({} of {})\"></i>",
                    esc(&iso(start * 1000)),
                    percent(a),
                    b.good,
                    b.total
                );
            }
            _ => {
                let _ = write!(out, "<i title=\"{}: no data\"></i>", esc(&iso(start * 1000)));
            }
        }
    }
    let _ = write!(out, "</div><div class=\"legend\"><span>{}</span><span>{}</span></div>", label.0, label.1);
}

fn history(out: &mut String, minutes: &[Bar], hours: &[Bar], now_s: u64, objective: f64) {
    let minute_end = (now_s / 60 + 1) * 60;
    bars(out, minutes, minute_end, 60, 60, objective, ("60 min ago", "now · per minute"));
    let hour_end = (now_s / 3600 + 1) * 3600;
    bars(out, hours, hour_end, 3600, 168, objective, ("7 days ago", "now · per hour"));
}

fn target(out: &mut String, t: &TargetStatus, now_s: u64, objective: f64) {
    let day = t.availability.get(1).map(availability_text).unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"target\" data-target=\"{id}\"><div class=\"row\"><span><span class=\"name\">{id}</span> \
         <span class=\"pill {state}\">{label}</span></span><span>{day} <span class=\"mute\">of attempts, 24 h</span></span></div>",
        id = esc(&t.id),
        state = esc(&t.state),
        label = esc(state_label(&t.state)),
    );
    let mut facts = Vec::new();
    if !t.detail.is_empty() {
        facts.push(esc(&t.detail));
    }
    if let Some(u) = t.until {
        facts.push(format!("until {}", time(u)));
    }
    if let Some(p) = t.ttft_p50_ms_1h {
        facts.push(format!("first token p50 {p} ms"));
    }
    if let Some(p) = t.latency_p50_ms_1h {
        facts.push(format!("latency p50 {p} ms"));
    }
    if !t.failures_24h.is_empty() {
        let f: Vec<String> = t.failures_24h.iter().map(|(k, n)| format!("{} {n}", esc(k))).collect();
        facts.push(format!("failures (24 h): {}", f.join(", ")));
    }
    if !facts.is_empty() {
        let _ = write!(out, "<div class=\"mute\">{}</div>", facts.join(" · "));
    }
    history(out, &t.minutes, &t.hours, now_s, objective);
    out.push_str("</div>");
}

fn route(out: &mut String, r: &RouteStatus, now_s: u64, objective: f64) {
    let _ = write!(
        out,
        "<div class=\"card\" data-route=\"{n}\"><div class=\"row\"><span class=\"name\">{n}</span><span>{s} \
         <span class=\"mute\">requests saved in 24 h</span></span></div>",
        n = esc(&r.name),
        s = r.saved_24h
    );
    tiles(out, &r.availability, "requests");
    history(out, &r.minutes, &r.hours, now_s, objective);
    out.push_str("</div>");
}

fn incident(out: &mut String, i: &Incident, now_ms: u64) {
    let (state, label) = if i.is_open() { ("open", "open") } else { ("closed", "resolved") };
    let lasted = i.ended_at.unwrap_or(now_ms).saturating_sub(i.started_at);
    let _ = write!(
        out,
        "<div class=\"card incident\" data-incident=\"{id}\"><div class=\"row\"><span><span class=\"name\">{t}</span> \
         <span class=\"pill {state}\">{label}</span></span><span class=\"mute\">since {start}{end} · {lasted}</span></div>",
        id = esc(&i.id),
        t = esc(&i.target),
        start = time(i.started_at),
        end = i.ended_at.map(|e| format!(" to {}", time(e))).unwrap_or_default(),
        lasted = duration(lasted),
    );
    let _ = write!(
        out,
        "<p><b>Blast radius: {}</b> — {}</p>",
        esc(&i.blast_radius.scope),
        esc(&i.blast_radius.explanation)
    );
    out.push_str("<table><tr><th>failure</th><th>count</th><th>statuses</th></tr>");
    for (k, c) in &i.kinds {
        let st: Vec<String> = c.statuses.iter().map(|(s, n)| format!("{} ×{n}", esc(s))).collect();
        let _ = write!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(k), c.count, st.join(", "));
    }
    out.push_str("</table>");
    let r = &i.requests;
    let _ = write!(
        out,
        "<p><span class=\"big\">{}</span> requests saved of {} affected (failover {}, retry {}, resume {}); {} failed. \
         {} of {} attempts failed.</p>",
        r.saved,
        r.affected,
        r.saved_by_failover,
        r.saved_by_retry,
        r.saved_by_resume,
        r.failed,
        i.failures,
        i.attempts
    );
    if let Some(rl) = &i.rate_limit {
        let _ = write!(
            out,
            "<p>Rate limit: <b>{}</b>, {}</p>",
            esc(&rl.limit),
            if rl.predicted { "predicted by the provider's headers" } else { "not predicted by its headers" }
        );
    }
    if i.ttft.before_ms.is_some() || i.ttft.during_ms.is_some() {
        let ms = |v: Option<u64>| v.map_or("?".to_owned(), |v| format!("{v} ms"));
        let _ = write!(
            out,
            "<p>First token p50: {} before, {} during</p>",
            ms(i.ttft.before_ms),
            ms(i.ttft.during_ms)
        );
    }
    let _ = write!(
        out,
        "<p class=\"mute\">first error: <code>{}</code><br>last error: <code>{}</code></p></div>",
        esc(&i.first_error),
        esc(&i.last_error)
    );
}

/// The whole page.
pub fn render(r: &StatusReport) -> String {
    let now_s = r.generated_at / 1000;
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>nines status</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body><main>");
    let open = r.incidents.iter().filter(|i| i.is_open()).count();
    let _ = write!(
        out,
        "<header><h1>nines status</h1><div class=\"headline\" id=\"headline\">{}</div>\
         <div class=\"mute\">{} · objective {} · updated {} · refreshes every 15 s</div></header>",
        esc(&r.headline),
        if open == 0 { "no open incident".to_owned() } else { format!("{open} open incident(s)") },
        percent(r.objective),
        time(r.generated_at)
    );
    out.push_str("<section><h2>Your users</h2><div class=\"card\" data-route=\"gateway\">");
    let _ = write!(
        out,
        "<div class=\"row\"><span class=\"name\">All requests</span><span><span class=\"big\" id=\"saved\">{}</span> \
         <span class=\"mute\">requests saved in 24 h</span></span></div>",
        r.gateway.saved_24h
    );
    tiles(&mut out, &r.gateway.availability, "requests");
    history(&mut out, &r.gateway.minutes, &r.gateway.hours, now_s, r.objective);
    out.push_str("</div></section>");
    if open > 0 {
        out.push_str("<section><h2>Open incidents</h2>");
        for i in r.incidents.iter().filter(|i| i.is_open()) {
            incident(&mut out, i, r.generated_at);
        }
        out.push_str("</section>");
    }
    out.push_str("<section><h2>Providers</h2>");
    for p in &r.providers {
        let _ = write!(
            out,
            "<div class=\"card\" data-provider=\"{n}\"><div class=\"row\"><span><span class=\"name\">{n}</span> \
             <span class=\"pill {s}\">{l}</span></span></div>",
            n = esc(&p.name),
            s = esc(&p.state),
            l = esc(state_label(&p.state))
        );
        tiles(&mut out, &p.availability, "attempts");
        for t in r.targets.iter().filter(|t| t.provider == p.name) {
            target(&mut out, t, now_s, r.objective);
        }
        out.push_str("</div>");
    }
    out.push_str("</section><section><h2>Routes</h2>");
    for rt in &r.routes {
        route(&mut out, rt, now_s, r.objective);
    }
    out.push_str("</section>");
    let recent: Vec<&Incident> = r.incidents.iter().filter(|i| !i.is_open()).collect();
    out.push_str("<section><h2>Recent incidents</h2>");
    if recent.is_empty() {
        out.push_str("<p class=\"mute\">None in the history kept.</p>");
    }
    for i in recent {
        incident(&mut out, i, r.generated_at);
    }
    out.push_str("</section></main><script>");
    out.push_str(SCRIPT);
    out.push_str("</script></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escaping() {
        assert_eq!(iso(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(iso(1_796_256_000_000), "2026-12-03 00:00:00 UTC");
        assert_eq!(iso(1_709_175_723_000), "2024-02-29 03:02:03 UTC");
        assert_eq!(esc("<script>\"x\"&'"), "&lt;script&gt;&quot;x&quot;&amp;&#39;");
    }
}
