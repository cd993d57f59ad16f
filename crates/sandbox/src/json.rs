//! A small hand-rolled JSON writer: objects are rendered straight into the
//! response buffer, which is what makes large pages cheap to serve.

use std::fmt::Write as _;

/// Whether byte `b` must be escaped inside a JSON string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends the escaped contents of a JSON string literal (without quotes).
fn push_escaped(out: &mut String, s: &str) {
    // Generated values rarely need escaping: check the whole value first (a
    // branch-free scan), and copy runs between escapes whole.
    if !s.bytes().fold(false, |any, b| any | needs_escape(b)) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (at, &b) in s.as_bytes().iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.push_str(&s[start..at]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = at + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends `v` in decimal (what `write!(out, "{v}")` writes, without `fmt`).
pub(crate) fn push_int(out: &mut String, v: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push('-');
    }
    push_ascii(out, &buf[at..]);
}

/// Appends ASCII digits to `out`.
fn push_ascii(out: &mut String, digits: &[u8]) {
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Appends `v` in decimal, zero-padded to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    let mut n = v;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    at = at.min(buf.len().saturating_sub(width));
    push_ascii(out, &buf[at..]);
}

/// An open JSON object being written; [`Obj::end`] closes it.
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &str) {
        self.out.push_str(if self.first { "\"" } else { ",\"" });
        self.first = false;
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    /// `"key": "value"`.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_str_lit(self.out, value);
        self
    }

    /// `"key": "value"` or `"key": null`.
    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// `"key": 123`.
    pub(crate) fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        push_int(self.out, value);
        self
    }

    /// `"key": 123`, or `"key": "123"` when `as_string` (schema drift).
    pub(crate) fn int_or_str(&mut self, key: &str, value: i64, as_string: bool) -> &mut Self {
        if as_string {
            self.key(key);
            self.out.push('"');
            push_int(self.out, value);
            self.out.push('"');
            self
        } else {
            self.int(key, value)
        }
    }

    /// `"key": true|false`.
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// `"key": null`.
    pub(crate) fn null(&mut self, key: &str) -> &mut Self {
        self.raw(key, "null")
    }

    /// `"key": <raw JSON>`; `raw` must already be valid JSON.
    pub(crate) fn raw(&mut self, key: &str, raw: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(raw);
        self
    }

    /// Writes `"key":` and returns the buffer, for the caller to write the value.
    pub(crate) fn value(&mut self, key: &str) -> &mut String {
        self.key(key);
        self.out
    }

    /// Opens a nested object under `key`.
    pub(crate) fn obj(&mut self, key: &str) -> Obj<'_> {
        self.key(key);
        Obj::new(self.out)
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn writes_valid_escaped_json() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("a", "q\"\\\n\u{1}")
            .int("b", -3)
            .bool("c", true)
            .null("d");
        let mut n = o.obj("e");
        n.int_or_str("x", 7, true);
        n.end();
        o.end();
        assert_eq!(
            s,
            r#"{"a":"q\"\\\n\u0001","b":-3,"c":true,"d":null,"e":{"x":"7"}}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "q\"\\\n\u{1}");
    }

    #[test]
    fn integers_match_display() {
        for v in [0, 7, -7, 10, 1_793_491_200, -4_900, i64::MAX, i64::MIN] {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        let mut s = String::new();
        push_padded(&mut s, 42, 4);
        push_padded(&mut s, 12_345, 2);
        push_padded(&mut s, 0, 2);
        assert_eq!(s, "00421234500");
    }

    #[test]
    fn escapes_only_what_json_needs() {
        let mut s = String::new();
        push_str_lit(&mut s, "plain é ✓");
        push_str_lit(&mut s, "a\tb\u{1f}\"");
        assert_eq!(s, "\"plain é ✓\"\"a\\tb\\u001f\\\"\"");
    }
}
