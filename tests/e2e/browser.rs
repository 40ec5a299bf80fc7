//! Reports looked at as a person would: rendered by headless Chromium (Debian's `chromium`,
//! installed by `scripts/test`), screenshotted, with every chart's drawn marks counted and
//! every request the page made recorded from Chromium's own network log.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What Chromium made of a page.
#[derive(Debug)]
pub struct Rendered {
    pub screenshot: PathBuf,
    /// Requests the page itself made (not Chromium's background ones), by URL.
    pub requests: Vec<String>,
    /// Per inline SVG chart: its first text (the title), and how many pixels it drew in a
    /// chart colour (not white, grey or black) once rendered.
    pub charts: Vec<(String, u64)>,
    /// The page's text after rendering.
    pub text: String,
}

fn chromium() -> Command {
    let mut c = Command::new("chromium");
    // As root in a container: no sandbox. The rest keeps Chromium's own background traffic
    // (component updates, sync, time checks) quiet on a closed network.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    c
}

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: chromium does not start ({e}); scripts/test installs it"));
    assert!(out.status.success(), "{what}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// Counts each inline SVG's drawn pixels in the browser: the SVG is drawn on a canvas and its
/// coloured pixels counted, into a `<pre id="probe">` the DOM dump carries out.
const PROBE: &str = r#"<script>
window.addEventListener('load', async () => {
  const out = [];
  for (const svg of document.querySelectorAll('svg')) {
    const img = new Image();
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let marks = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, gr, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      const spread = Math.max(r, gr, b) - Math.min(r, gr, b);
      if (a > 0 && spread > 60) marks++;
    }
    const title = svg.querySelector('text');
    out.push([title ? title.textContent : '', marks]);
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"#;

/// Render `page` (an HTML file): a screenshot `width` × `height` next to it, the requests it
/// made, its charts' marks and its text.
pub fn render(page: &Path, width: u32, height: u32) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let screenshot = page.with_extension("png");
    let net = dir.path().join("net.json");
    let mut c = chromium();
    c.arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--log-net-log={}", net.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(url(page));
    run(c, "screenshot");
    assert!(std::fs::metadata(&screenshot).map(|m| m.len() > 1000).unwrap_or(false), "no screenshot");
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&net).unwrap()).unwrap();
    let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().unwrap();
    // A request the page made names its origin as initiator (a file:// page's is "null");
    // Chromium's own requests have none ("not an origin").
    let requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect();

    // The same page with the probe, its DOM dumped after load.
    let html = std::fs::read_to_string(page).unwrap();
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let mut c = chromium();
    c.arg(format!("--user-data-dir={}", dir.path().join("profile2").display()))
        .args(["--dump-dom", "--virtual-time-budget=10000"])
        .arg(url(&probed));
    let dom = run(c, "dump-dom");
    let probe = dom
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| json.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
        .unwrap_or_else(|| panic!("the probe did not run: {}", &dom[dom.len().saturating_sub(2000)..]));
    let charts: Vec<(String, u64)> = serde_json::from_str(&probe).unwrap();
    let text = dom.replace(&probe, "");
    let text = strip_tags(&text);
    Rendered { screenshot, requests, charts, text }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The helper can fail: a page that fetches an image and draws an empty chart is caught.
#[test]
fn the_browser_check_catches_a_page_that_fetches_and_a_chart_without_marks() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>hello report</p><img src=\"http://127.0.0.1:9/logo.png\">\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\"><text x=\"5\" y=\"20\">empty</text></svg>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\"><text x=\"5\" y=\"20\">full</text>\
         <rect x=\"10\" y=\"25\" width=\"80\" height=\"20\" fill=\"#1f77b4\"/></svg></body></html>",
    )
    .unwrap();
    let r = render(&page, 400, 300);
    assert_eq!(r.requests, ["http://127.0.0.1:9/logo.png"], "{r:?}");
    assert_eq!(r.charts.len(), 2, "{r:?}");
    assert_eq!(r.charts[0], ("empty".to_string(), 0), "{r:?}");
    assert!(r.charts[1].1 >= 1000, "an 80 × 20 bar: {r:?}");
    assert!(r.text.contains("hello report"));
}
