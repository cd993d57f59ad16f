//! A small hand-rolled JSON writer: objects are rendered straight into the
//! response buffer, which is what makes large pages cheap to serve.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
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
        let _ = write!(self.out, "{value}");
        self
    }

    /// `"key": 123`, or `"key": "123"` when `as_string` (schema drift).
    pub(crate) fn int_or_str(&mut self, key: &str, value: i64, as_string: bool) -> &mut Self {
        if as_string {
            self.key(key);
            let _ = write!(self.out, "\"{value}\"");
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
}
