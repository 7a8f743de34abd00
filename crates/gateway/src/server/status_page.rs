//! The status page: server-rendered HTML from the status report, with a little inline script that refreshes it
//! every 15 seconds (keeping the last content, with a note, when the gateway cannot be reached) and shows times in
//! the reader's time zone. A banner on top says whether the clients are affected; the tab's icon has its colour. No
//! build step, no external resource (the page's content-security policy allows none: the icon is a `data:` image).
//! Every string that comes from outside (error messages above all) is escaped. `tests/browser` looks at it in a
//! real Chromium, on a phone and a desktop.

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
:root{color-scheme:light dark;--bg:#f4f6f9;--card:#fff;--ink:#1d2430;--mute:#626c7c;--line:#e1e5ec;--ok:#2f9e62;--warn:#d48a1a;--bad:#d64545;--none:#d9dee6;--info:#3b6fd8}
@media (prefers-color-scheme:dark){:root{--bg:#0f1318;--card:#171c23;--ink:#e6e9ee;--mute:#8f98a6;--line:#29303a;--none:#2b323d}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;-webkit-text-size-adjust:100%}
main{max-width:980px;margin:0 auto;padding:20px 14px 60px}
header h1{font-size:14px;margin:0 0 10px;color:var(--mute);letter-spacing:.04em;text-transform:uppercase}
.banner{display:flex;gap:12px;align-items:flex-start;border-radius:12px;padding:14px 16px;border:1px solid var(--line);border-left:6px solid var(--ok);background:color-mix(in srgb,var(--ok) 10%,var(--card))}
.banner.warn{border-left-color:var(--warn);background:color-mix(in srgb,var(--warn) 12%,var(--card))}
.banner.bad{border-left-color:var(--bad);background:color-mix(in srgb,var(--bad) 12%,var(--card))}
.banner .dot{flex:none;width:14px;height:14px;border-radius:50%;margin-top:5px;background:var(--ok)}.banner.warn .dot{background:var(--warn)}.banner.bad .dot{background:var(--bad)}
.banner .state{font-size:19px;font-weight:700;line-height:1.3}.headline{font-size:15px;font-weight:500;margin-top:2px}
header .mute{margin-top:8px}
.fleet-degraded{border-left:4px solid var(--warn)}
.stale{position:sticky;top:0;z-index:1;background:var(--warn);color:#1d2430;padding:8px 14px;text-align:center;font-size:14px;font-weight:600}
.mute{color:var(--mute);font-size:13px}
section{margin-top:26px}h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--mute);margin:0 0 10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px;margin-bottom:12px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.row{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:baseline;justify-content:space-between}
.name{font-weight:600;overflow-wrap:anywhere}.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12.5px;font-weight:600;color:#fff;white-space:nowrap;vertical-align:1px}
.healthy{background:var(--ok)}.degraded,.half_open,.rate_limited{background:var(--warn)}.breaker_open,.down,.open{background:var(--bad)}.closed{background:var(--mute)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px;margin-top:10px}
.tile{border:1px solid var(--line);border-radius:8px;padding:8px 10px;min-width:0}.tile b{display:block;font-size:18px}.tile span{display:block}
.tile.low b{color:var(--bad)}
.bars{display:flex;gap:1px;height:26px;margin:10px 0 2px;align-items:stretch;overflow:hidden}.bars i{flex:1 1 0;border-radius:1px;background:var(--none);min-width:0}
.bars.hours{gap:0;height:18px}.bars.hours i{border-radius:0}
.bars i.g{background:var(--ok)}.bars i.w{background:var(--warn)}.bars i.b{background:var(--bad)}
.legend{display:flex;justify-content:space-between;gap:8px;color:var(--mute);font-size:12px}
.target{border-top:1px solid var(--line);margin-top:12px;padding-top:12px}
table{border-collapse:collapse;font-size:13.5px;margin:6px 0}td,th{text-align:left;padding:4px 28px 4px 0;vertical-align:top;border-bottom:1px solid var(--line)}th{color:var(--mute);font-weight:500}
code{font-size:12.5px;overflow-wrap:anywhere}.big{font-size:26px;font-weight:700;line-height:1.1}
.incident p{margin:10px 0}.bad-text{color:var(--bad);font-weight:600}
@media (max-width:480px){main{padding:14px 10px 40px}.card{padding:12px}.tiles{grid-template-columns:1fr 1fr;gap:6px}.tile{padding:6px 8px}.tile span{font-size:12px}td,th{padding-right:18px}.banner{padding:12px}.banner .state{font-size:17px}}
"#;

/// Refresh every 15 s (and at once when the tab comes back), keep the last good content and say so when a refresh
/// fails, show times in the reader's time zone.
const SCRIPT: &str = r#"
function localTimes(){document.querySelectorAll('time[data-ms]').forEach(function(t){var d=new Date(+t.dataset.ms);t.textContent=d.toLocaleString();});}
function stale(e){var s=document.getElementById('stale');if(!e){s.hidden=true;return;}var u=document.getElementById('updated');s.textContent='Could not refresh ('+(e.message||e)+'); showing the status as of '+(u?u.textContent:'the last load')+'.';s.hidden=false;}
function refresh(){fetch(location.href,{credentials:'same-origin',cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text();}).then(function(h){var d=new DOMParser().parseFromString(h,'text/html');var m=d.querySelector('main');if(!m)throw new Error('no status in the answer');document.querySelector('main').replaceWith(m);document.title=d.title;var i=d.querySelector('link[rel=icon]'),o=document.querySelector('link[rel=icon]');if(i&&o)o.href=i.href;localTimes();stale(null);}).catch(function(e){stale(e);});}
localTimes();
setInterval(function(){if(!document.hidden)refresh();},15000);
document.addEventListener('visibilitychange',function(){if(!document.hidden)refresh();});
"#;

/// A dot of the banner's colour as the tab's icon (inline: the policy allows `data:` images only).
fn favicon(level: &str) -> &'static str {
    match level {
        "bad" => "%23d64545",
        "warn" => "%23d48a1a",
        _ => "%232f9e62",
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

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
        let low = w.budget_left.is_some_and(|b| b < 0.0);
        let _ = write!(
            out,
            "<div class=\"tile{}\"><span class=\"mute\">{}</span><b>{}</b><span class=\"mute\">{} {what}</span>{}</div>",
            if low { " low" } else { "" },
            esc(&w.window),
            availability_text(w),
            w.total,
            if budget.is_empty() { String::new() } else { format!("<span class=\"mute\">{budget}</span>") }
        );
    }
    out.push_str("</div>");
}

/// A strip of `n` bars of `width` seconds ending at `end` (exclusive), with gaps shown as "no data".
fn bars(out: &mut String, data: &[Bar], end: u64, width: u64, n: u64, objective: f64, label: (&str, &str)) {
    out.push_str(if width >= 3600 { "<div class=\"bars hours\">" } else { "<div class=\"bars\">" });
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
    let how: Vec<String> =
        [("failover", r.saved_by_failover), ("retry", r.saved_by_retry), ("resume", r.saved_by_resume)]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
    let _ = write!(
        out,
        "<p><span class=\"big\">{}</span> requests saved of {} affected{}; {}. {} of {} attempts failed.</p>",
        r.saved,
        r.affected,
        if how.is_empty() { String::new() } else { format!(" ({})", how.join(", ")) },
        if r.failed == 0 {
            "none failed".to_owned()
        } else {
            format!("<span class=\"bad-text\">{} failed</span>", r.failed)
        },
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
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">",
    );
    let open: Vec<&Incident> = r.incidents.iter().filter(|i| i.is_open()).collect();
    let failed: u64 = open.iter().map(|i| i.requests.failed).sum();
    let saved: u64 = open.iter().map(|i| i.requests.saved).sum();
    let incidents = match open.len() {
        0 => "no open incident".to_owned(),
        1 => "1 open incident".to_owned(),
        n => format!("{n} open incidents"),
    };
    let (level, state) = match (open.len(), failed) {
        (0, _) => ("ok", "All systems normal".to_owned()),
        (_, 0) => (
            "warn",
            format!("Provider trouble — your users are unaffected ({saved} request{} saved)", plural(saved)),
        ),
        (_, f) => ("bad", format!("Your users are affected: {f} request{} failed", plural(f))),
    };
    let _ = write!(
        out,
        "<title>{title}</title><link rel=\"icon\" href=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
         viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='{color}'/%3E%3C/svg%3E\"><style>{STYLE}</style>\
         </head><body><div id=\"stale\" class=\"stale\" role=\"status\" hidden></div><main>\
         <header><h1>nines status</h1><div class=\"banner {level}\" id=\"banner\"><span class=\"dot\"></span><div>\
         <div class=\"state\">{state}</div><div class=\"headline\" id=\"headline\">{headline}</div></div></div>\
         <div class=\"mute\">{incidents} · objective {objective} · updated <span id=\"updated\">{updated}</span> · \
         refreshes every 15 s</div></header>",
        title =
            if open.is_empty() { "nines status".to_owned() } else { format!("{incidents} · nines status") },
        color = favicon(level),
        state = esc(&state),
        headline = esc(&r.headline),
        objective = percent(r.objective),
        updated = time(r.generated_at),
    );
    // A fleet: whether this page is the fleet's view, or (Redis away) this replica's alone.
    if let Some(f) = &r.fleet {
        let (class, what) = match f.state.as_str() {
            "shared" => ("card mute", "Fleet view"),
            _ => ("card fleet-degraded", "Fleet view degraded"),
        };
        let _ = write!(
            out,
            "<div class=\"{class}\" id=\"fleet\" data-state=\"{state}\" role=\"status\"><b>{what}</b> — {detail}</div>",
            state = esc(&f.state),
            detail = esc(&f.detail),
        );
    }
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
    if !open.is_empty() {
        out.push_str("<section><h2>Open incidents</h2>");
        for i in open {
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

    fn report(incidents: Vec<Incident>) -> StatusReport {
        let route = |name: &str| RouteStatus {
            name: name.to_owned(),
            availability: vec![],
            minutes: vec![],
            hours: vec![],
            saved_24h: 7,
        };
        StatusReport {
            schema: crate::record::status::SCHEMA.to_owned(),
            generated_at: 1_796_256_000_000,
            objective: 0.999,
            headline: "p<b> 50% — your users 100% (24 h)".to_owned(),
            gateway: route("gateway"),
            providers: vec![],
            targets: vec![],
            routes: vec![route("r\"><script>")],
            incidents,
            fleet: None,
        }
    }

    /// The banner says who is affected; whatever came from outside is escaped; the page's one script is its own.
    #[test]
    fn the_banner_and_everything_from_outside_escaped() {
        let calm = render(&report(vec![]));
        assert!(calm.contains("banner ok") && calm.contains("All systems normal"), "{calm}");
        assert!(calm.contains("<title>nines status</title>"));
        let incident = |failed| Incident {
            id: "inc_1".to_owned(),
            target: "p/<img src=x>".to_owned(),
            provider: "p".to_owned(),
            model: "m".to_owned(),
            started_at: 1_796_255_000_000,
            ended_at: None,
            opened_by: "breaker".to_owned(),
            attempts: 3,
            failures: 3,
            kinds: [("overload".to_owned(), Default::default())].into(),
            first_error: "overload 529: <script>alert(1)</script>".to_owned(),
            last_error: "'\"&".to_owned(),
            ttft: Default::default(),
            requests: crate::record::incidents::Requests {
                affected: 4,
                saved: 4 - failed,
                failed,
                ..Default::default()
            },
            rate_limit: None,
            blast_radius: Default::default(),
            updated_at: None,
        };
        let saved = render(&report(vec![incident(0)]));
        assert!(
            saved.contains("banner warn") && saved.contains("your users are unaffected (4 requests saved)")
        );
        assert!(saved.contains("<title>1 open incident · nines status</title>"), "{saved}");
        let page = render(&report(vec![incident(2)]));
        assert!(page.contains("banner bad") && page.contains("Your users are affected: 2 requests failed"));
        assert_eq!(page.matches("<script").count(), 1, "only the page's own script: {page}");
        assert!(!page.contains("<img") && !page.contains("p<b>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && page.contains("&#39;&quot;&amp;"));
    }
}
