//! One self-contained HTML page: inline CSS and inline SVG, no script, nothing fetched.

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// A whole page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

const STYLE: &str = "body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 20px; margin-top: 40px; border-bottom: 2px solid #1f77b4; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 28px; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f4f8; }
td.low { color: #b00; font-weight: 600; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
.person { background: #eef6ff; border-left: 4px solid #1f77b4; padding: 8px 12px; }
figure { margin: 8px 0 24px; }
figcaption { color: #555; font-size: 13px; }
";
