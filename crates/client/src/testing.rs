//! Renders a page to HTML the way the window would show it — with the real services, a language,
//! and every pending read finished — so component tests can assert on what a person would read.

use std::time::Duration;

use dioxus::dioxus_core::NoOpMutations;
use dioxus::prelude::*;

use crate::{I18n, Lang, Page, Refresh, Services};

#[derive(Clone)]
struct Root {
    services: Services,
    lang: Lang,
    page: Page,
}

fn root(props: Root) -> Element {
    use_context_provider(|| props.services.clone());
    use_context_provider(|| I18n { lang: Signal::new(props.lang) });
    use_context_provider(|| Refresh(Signal::new(0)));
    rsx! { Host { page: props.page } }
}

#[component]
fn Host(page: Page) -> Element {
    (page.render)()
}

/// A live page under test: render it, click in it, render again.
pub struct PageUnderTest {
    dom: VirtualDom,
}

impl PageUnderTest {
    pub async fn open(services: Services, lang: Lang, render: fn() -> Element) -> PageUnderTest {
        let page = Page { id: "test", title: "test", icon: "", render };
        let mut dom = VirtualDom::new_with_props(root, Root { services, lang, page });
        dom.rebuild_in_place();
        let mut page = PageUnderTest { dom };
        page.settle().await;
        page
    }

    /// Lets resources and effects finish, for at most about a second.
    pub async fn settle(&mut self) {
        for _ in 0..20 {
            if tokio::time::timeout(Duration::from_millis(50), self.dom.wait_for_work()).await.is_err() {
                break;
            }
            self.dom.render_immediate(&mut NoOpMutations);
        }
    }

    pub fn html(&self) -> String {
        dioxus_ssr::render(&self.dom)
    }

    /// The page's text without tags, whitespace collapsed: what a person reads.
    pub fn text(&self) -> String {
        let html = self.html();
        let mut text = String::with_capacity(html.len());
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    text.push(' ');
                }
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}
