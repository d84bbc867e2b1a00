//! JSON text laid out the way jsoncpp's `StyledWriter` lays it out: the bodies of the original
//! daemons' HTTP answers (login_server's `/msg_server`, http_msg_server's `/query/…`), so a
//! client comparing bytes sees the same ones.
//!
//! The layout rules:
//!
//! - an object is `{`, then one member per line (`"key" : value`) indented by three spaces
//!   more than the object, keys in byte-wise order, `,` after every member but the last, then
//!   `}` on a line of its own at the object's indentation; `{}` when empty;
//! - an array of scalars (or of empty arrays and objects) whose one-line form `[ a, b ]` stays
//!   under 74 characters and which has fewer than 25 elements is written on one line;
//!   otherwise it is written like an object, one element per line; `[]` when empty;
//! - a value that follows `" : "` starts on that line (so `"key" : {` and `"key" : [`);
//! - strings are raw UTF-8 with `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t` escaped by their short
//!   forms and every other control character as `\u00XX` (upper-case hexadecimal);
//! - integers in decimal; a fractional number in serde_json's shortest form (the original
//!   daemons write none);
//! - the whole text ends with a newline.

use serde_json::Value;

/// jsoncpp's right margin: a one-line array must stay under it.
const RIGHT_MARGIN: usize = 74;
/// One level of indentation.
const INDENT: &str = "   ";

/// `value` as jsoncpp's `StyledWriter::write` writes it (see the module documentation).
pub fn styled(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

/// Appends `value`, its inner lines indented `depth` levels.
fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, member)) in members.iter().enumerate() {
                new_line(out, depth + 1);
                quote_into(out, key);
                out.push_str(" : ");
                write_value(out, member, depth + 1);
                if i + 1 < members.len() {
                    out.push(',');
                }
            }
            new_line(out, depth);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => match one_line(items) {
            Some(parts) => {
                out.push_str("[ ");
                out.push_str(&parts.join(", "));
                out.push_str(" ]");
            }
            None => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    new_line(out, depth + 1);
                    write_value(out, item, depth + 1);
                    if i + 1 < items.len() {
                        out.push(',');
                    }
                }
                new_line(out, depth);
                out.push(']');
            }
        },
        Value::String(s) => quote_into(out, s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

/// The elements of an array written on one line, or `None` when it takes one line each.
fn one_line(items: &[Value]) -> Option<Vec<String>> {
    if items.len() * 3 >= RIGHT_MARGIN {
        return None;
    }
    let nested = |v: &Value| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    };
    if items.iter().any(nested) {
        return None;
    }
    let parts: Vec<String> = items
        .iter()
        .map(|item| {
            let mut s = String::new();
            write_value(&mut s, item, 0);
            s
        })
        .collect();
    // "[ " and " ]", and ", " between elements.
    let width = 4 + (items.len() - 1) * 2 + parts.iter().map(String::len).sum::<usize>();
    (width < RIGHT_MARGIN).then_some(parts)
}

fn new_line(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

/// Appends `s` as a JSON string with the escapes of the module documentation.
fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flat_objects_sorted_and_indented() {
        let body = styled(&json!({ "group_id": 123, "error_msg": "成功", "error_code": 0 }));
        assert_eq!(
            body,
            "{\n   \"error_code\" : 0,\n   \"error_msg\" : \"成功\",\n   \"group_id\" : 123\n}\n"
        );
        assert_eq!(body.len(), 72, "the original's byte count");
        assert_eq!(styled(&json!({})), "{}\n");
        assert_eq!(styled(&json!([])), "[]\n");
        assert_eq!(styled(&json!("x")), "\"x\"\n");
    }

    #[test]
    fn nested_values_and_arrays() {
        let v = json!({ "b": { "z": [1, 2, 3], "a": [] }, "a": null, "c": [true, {}] });
        assert_eq!(
            styled(&v),
            "{\n   \"a\" : null,\n   \"b\" : {\n      \"a\" : [],\n      \"z\" : [ 1, 2, 3 ]\n   \
             },\n   \"c\" : [ true, {} ]\n}\n"
        );
        // An array holding a non-empty object takes one line per element.
        let v = json!([{ "k": 1 }, 2]);
        assert_eq!(styled(&v), "[\n   {\n      \"k\" : 1\n   },\n   2\n]\n");
    }

    #[test]
    fn long_arrays_take_one_line_per_element() {
        // 24 one-digit elements: 4 + 23 * 2 + 24 = 74, not under the margin.
        let v = Value::Array((0..24).map(|i| json!(i % 10)).collect());
        let text = styled(&v);
        assert!(text.starts_with("[\n   0,\n   1,\n"), "{text}");
        assert!(text.ends_with("\n   3\n]\n"), "{text}");
        // 23 of them fit: 4 + 22 * 2 + 23 = 71.
        let v = Value::Array((0..23).map(|i| json!(i % 10)).collect());
        assert_eq!(styled(&v).lines().count(), 1);
        // 25 elements are never on one line, however short.
        let v = Value::Array(vec![json!(0); 25]);
        assert_eq!(styled(&v).lines().count(), 27);
    }

    #[test]
    fn string_escapes() {
        let v = json!({ "k\"": "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{1f}/é" });
        assert_eq!(
            styled(&v),
            "{\n   \"k\\\"\" : \"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001F/é\"\n}\n"
        );
    }
}
