//! Strict decoding of server-side apply bodies: duplicate keys in a YAML (or JSON) apply
//! configuration, reported with their line as upstream's YAML decoder does
//! (`sigs.k8s.io/yaml.UnmarshalStrict`, used by the apply patcher in
//! apiserver/pkg/endpoints/handlers/patch.go), e.g. `line 9: key "foo" already set in map`.
//! serde_yaml keeps the last value of a duplicate key and does not say where it was, so the
//! document is walked once more as parser events, which carry their positions.

use std::collections::HashSet;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

enum Frame {
    /// A mapping: the scalar keys seen so far, and whether the next node is a key.
    Map {
        seen: HashSet<String>,
        key_next: bool,
    },
    Seq,
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    errors: Vec<String>,
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let starts_node = matches!(
            ev,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if let Some(Frame::Map { seen, key_next }) = self.stack.last_mut() {
            if let (true, Event::Scalar(key, ..)) = (*key_next, &ev) {
                // `<<` merges another mapping in; it may repeat.
                if key != "<<" && !seen.insert(key.clone()) {
                    self.errors.push(format!(
                        "line {}: key {} already set in map",
                        mark.line(),
                        quote(key)
                    ));
                }
            }
            if starts_node {
                *key_next = !*key_next;
            }
        }
        match ev {
            Event::MappingStart(..) => self.stack.push(Frame::Map {
                seen: HashSet::new(),
                key_next: true,
            }),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// A key as Go's `%#v` prints a string: double-quoted with Go escapes.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The strict-decoding error of an apply body with duplicate keys, in upstream's words
/// (`error converting YAML to JSON: yaml: unmarshal errors:\n  line N: key "k" already set in
/// map`), or None when every mapping's keys are unique (or the body does not parse: the regular
/// decoder reports that).
pub fn duplicate_keys_error(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut walker = Walker::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut walker, true).ok()?;
    if walker.errors.is_empty() {
        return None;
    }
    let mut msg = String::from("error converting YAML to JSON: yaml: unmarshal errors:");
    for e in &walker.errors {
        msg.push_str("\n  ");
        msg.push_str(e);
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::duplicate_keys_error;

    #[test]
    fn reports_the_line_of_the_repeated_key() {
        let y = "\napiVersion: a/v1\nkind: K\nmetadata:\n  name: mytest\nspec:\n  unknown: uk1\n  foo: foo1\n  foo: foo2\n  cronSpec: \"* * * * */5\"\n";
        assert_eq!(
            duplicate_keys_error(y.as_bytes()).as_deref(),
            Some(
                "error converting YAML to JSON: yaml: unmarshal errors:\n  line 9: key \"foo\" already set in map"
            )
        );
    }

    #[test]
    fn nested_mappings_lists_and_json_bodies() {
        let y = "a:\n  b: 1\n  c:\n    b: 2\n  b:\n    x: 1\nl:\n- k: 1\n  k: 2\n- k: 3\n";
        assert_eq!(
            duplicate_keys_error(y.as_bytes()).as_deref(),
            Some(
                "error converting YAML to JSON: yaml: unmarshal errors:\n  line 5: key \"b\" already set in map\n  line 9: key \"k\" already set in map"
            )
        );
        assert!(duplicate_keys_error(br#"{"a": {"b": 1}, "c": [{"b": 1}, {"b": 2}]}"#).is_none());
        assert!(duplicate_keys_error(br#"{"a": 1, "a": 2}"#).is_some());
        // Values equal to a key's name, and distinct documents' keys, are not duplicates.
        assert!(duplicate_keys_error(b"a: a\nb: a\n").is_none());
        assert!(duplicate_keys_error(b"a: [1\n").is_none());
    }
}
