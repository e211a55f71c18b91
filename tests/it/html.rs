//! Reading the HTML report back in tests: a small element tree (quick-xml's tokenizer, lenient about HTML's void
//! elements and unclosed tags) and the CSS selectors the tests use — descendant chains of `tag`, `#id`,
//! `.class` and `[attr]`. The report is our own, regular HTML; this is not a general HTML parser.

use quick_xml::events::Event;

struct Node {
    tag: String,
    attrs: Vec<(String, String)>,
    children: Vec<usize>,
    parent: Option<usize>,
    /// Text directly inside, in document order with the children (as `None` placeholders).
    content: Vec<Option<String>>,
}

/// A parsed page.
pub struct Doc {
    nodes: Vec<Node>,
}

/// One element of a [`Doc`].
#[derive(Clone, Copy)]
pub struct Elem<'a> {
    doc: &'a Doc,
    id: usize,
}

const VOID: &[&str] = &["meta", "link", "br", "img", "input", "hr", "area", "base", "col", "source", "wbr"];

fn unescape_ref(name: &str) -> String {
    match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" | "#39" => "'".into(),
        n if n.starts_with("#x") => {
            u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32).map(String::from).unwrap_or_default()
        }
        n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32).map(String::from).unwrap_or_default(),
        other => format!("&{other};"),
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        match rest[at..].find(';') {
            Some(end) => {
                out.push_str(&unescape_ref(&rest[at + 1..at + end]));
                rest = &rest[at + end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Doc {
    pub fn parse(html: &str) -> Doc {
        let mut reader = quick_xml::Reader::from_str(html);
        reader.config_mut().check_end_names = false;
        let root = Node { tag: "#root".into(), attrs: vec![], children: vec![], parent: None, content: vec![] };
        let mut doc = Doc { nodes: vec![root] };
        let mut stack = vec![0usize];
        loop {
            let event = reader.read_event().unwrap_or_else(|e| panic!("the page does not parse: {e}"));
            let top = *stack.last().expect("the root stays");
            let self_closed = matches!(event, Event::Empty(_));
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let tag = String::from_utf8_lossy(e.name().as_ref()).to_lowercase();
                    let attrs = e
                        .attributes()
                        .flatten()
                        .map(|a| {
                            let value = unescape(&String::from_utf8_lossy(&a.value));
                            (String::from_utf8_lossy(a.key.as_ref()).into_owned(), value)
                        })
                        .collect();
                    let id = doc.nodes.len();
                    doc.nodes.push(Node {
                        tag: tag.clone(),
                        attrs,
                        children: vec![],
                        parent: Some(top),
                        content: vec![],
                    });
                    doc.nodes[top].children.push(id);
                    doc.nodes[top].content.push(None);
                    if !self_closed && !VOID.contains(&tag.as_str()) {
                        stack.push(id);
                    }
                }
                Event::End(e) => {
                    let tag = String::from_utf8_lossy(e.name().as_ref()).to_lowercase();
                    if let Some(pos) = stack.iter().rposition(|&n| doc.nodes[n].tag == tag) {
                        stack.truncate(pos.max(1));
                    }
                }
                Event::Text(t) => {
                    let text = unescape(&String::from_utf8_lossy(&t));
                    doc.nodes[top].content.push(Some(text));
                }
                Event::CData(t) => doc.nodes[top].content.push(Some(String::from_utf8_lossy(&t).into_owned())),
                Event::GeneralRef(r) => {
                    doc.nodes[top].content.push(Some(unescape_ref(&String::from_utf8_lossy(&r))));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        doc
    }

    /// Every element matching `css`, in document order.
    pub fn select(&self, css: &str) -> Vec<Elem<'_>> {
        Elem { doc: self, id: 0 }.select(css)
    }
}

/// One compound selector: `tag#id.class[attr]`, each part optional.
#[derive(Default)]
struct Compound {
    tag: Option<String>,
    id: Option<String>,
    classes: Vec<String>,
    attrs: Vec<String>,
}

fn compound(text: &str) -> Compound {
    let mut c = Compound::default();
    let mut rest = text;
    let take = |rest: &mut &str| -> String {
        let end = rest.find(['#', '.', '[']).unwrap_or(rest.len());
        let word = rest[..end].to_string();
        *rest = &rest[end..];
        word
    };
    if !rest.starts_with(['#', '.', '[']) {
        c.tag = Some(take(&mut rest));
    }
    while let Some(first) = rest.chars().next() {
        rest = &rest[1..];
        match first {
            '#' => c.id = Some(take(&mut rest)),
            '.' => c.classes.push(take(&mut rest)),
            '[' => {
                let end = rest.find(']').expect("a closing ]");
                c.attrs.push(rest[..end].to_string());
                rest = &rest[end + 1..];
            }
            other => panic!("unsupported selector character {other:?} in {text:?}"),
        }
    }
    c
}

impl<'a> Elem<'a> {
    fn node(&self) -> &'a Node {
        &self.doc.nodes[self.id]
    }

    pub fn attr(&self, name: &str) -> Option<&'a str> {
        self.node().attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The text inside, trimmed.
    pub fn text(&self) -> String {
        fn collect(doc: &Doc, id: usize, out: &mut String) {
            let node = &doc.nodes[id];
            let mut children = node.children.iter();
            for part in &node.content {
                match part {
                    Some(text) => out.push_str(text),
                    None => collect(doc, *children.next().expect("a child per placeholder"), out),
                }
            }
        }
        let mut out = String::new();
        collect(self.doc, self.id, &mut out);
        out.trim().to_string()
    }

    fn matches(&self, c: &Compound) -> bool {
        let n = self.node();
        c.tag.as_ref().is_none_or(|t| *t == n.tag)
            && c.id.as_ref().is_none_or(|id| self.attr("id") == Some(id.as_str()))
            && c.classes.iter().all(|cl| self.attr("class").is_some_and(|v| v.split_whitespace().any(|x| x == cl)))
            && c.attrs.iter().all(|a| self.attr(a).is_some())
    }

    fn descendants(&self, out: &mut Vec<Elem<'a>>) {
        for &child in &self.node().children {
            let e = Elem { doc: self.doc, id: child };
            out.push(e);
            e.descendants(out);
        }
    }

    /// Descendants matching `css` (a descendant chain), in document order.
    pub fn select(&self, css: &str) -> Vec<Elem<'a>> {
        let chain: Vec<Compound> = css.split_whitespace().map(compound).collect();
        let (last, ancestors) = chain.split_last().expect("a selector");
        let mut all = Vec::new();
        self.descendants(&mut all);
        all.into_iter().filter(|e| e.matches(last) && e.has_ancestors(ancestors, self.id)).collect()
    }

    /// Whether `chain` matches ancestors of this element, innermost last, below `scope`.
    fn has_ancestors(&self, chain: &[Compound], scope: usize) -> bool {
        let Some((innermost, outer)) = chain.split_last() else { return true };
        let mut at = self.node().parent;
        while let Some(id) = at {
            if id == scope {
                return false;
            }
            let e = Elem { doc: self.doc, id };
            if e.matches(innermost) && e.has_ancestors(outer, scope) {
                return true;
            }
            at = e.node().parent;
        }
        false
    }
}

#[test]
fn selectors_find_elements_by_tag_id_class_and_attribute() {
    let doc = Doc::parse(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><style>a>b{}</style></head><body><table id="t"><tr class="object x"><td data-n="3">3 &amp; 4</td><td>b</td></tr></table><svg role="img"><title>T</title></svg></body></html>"#,
    );
    assert_eq!(doc.select("#t td[data-n]")[0].attr("data-n"), Some("3"));
    assert_eq!(doc.select("#t tr.object").len(), 1);
    let row = doc.select("tr")[0];
    assert_eq!(row.select("td").iter().map(|e| e.text()).collect::<Vec<_>>(), vec!["3 & 4", "b"]);
    assert_eq!(doc.select("svg title")[0].text(), "T");
    assert_eq!(doc.select("svg")[0].attr("role"), Some("img"));
}
