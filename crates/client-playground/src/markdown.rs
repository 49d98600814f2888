//! Answers as Markdown: paragraphs, lists, tables and code blocks become HTML, while any HTML the
//! model wrote is shown as text, never run in the window.

use pulldown_cmark::{html, Event, Options, Parser};

/// The answer's Markdown as safe HTML.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_and_lists_render_and_html_is_shown_as_text() {
        let html = to_html("Use **this**:\n\n```rust\nfn main() {}\n```\n\n- one\n- two");
        assert!(html.contains("<strong>this</strong>"), "{html}");
        assert!(html.contains("<pre><code class=\"language-rust\">fn main() {}"), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
        let hostile = to_html("<script>alert(1)</script> and <img src=x onerror=alert(1)>");
        assert!(!hostile.contains("<script") && !hostile.contains("<img"), "{hostile}");
        assert!(hostile.contains("&lt;script&gt;"), "{hostile}");
    }
}
