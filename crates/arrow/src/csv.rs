//! RFC 4180 CSV rows (Salesforce Bulk API results and other CSV exports).
//!
//! Text flows in; rows of fields flow out, borrowed from the text unless a
//! field holds an escaped quote. Fields are separated by `,`, rows by CRLF or
//! LF; a quoted field may hold commas, quotes (written `""`) and line breaks.
//! A final line break is optional and ends no extra row.
//!
//! ```
//! let rows: Vec<Vec<String>> = weft_arrow::csv_rows("id,note\r\n1,\"say \"\"hi\"\"\nbye\"\r\n")
//!     .map(|r| r.unwrap().into_iter().map(|f| f.into_owned()).collect())
//!     .collect();
//! assert_eq!(rows, vec![vec!["id", "note"], vec!["1", "say \"hi\"\nbye"]]);
//! ```

use std::borrow::Cow;

use crate::ArrowConvError;

/// The rows of CSV `text`, in order.
pub fn csv_rows(text: &str) -> CsvRows<'_> {
    CsvRows {
        text,
        pos: 0,
        line: 0,
    }
}

/// Iterator over the rows of a CSV text; see [`csv_rows`]. Stops after an error.
#[derive(Debug, Clone)]
pub struct CsvRows<'a> {
    text: &'a str,
    /// Byte offset of the next row.
    pos: usize,
    /// Lines consumed so far (1-based line of the last row start, for errors).
    line: usize,
}

impl<'a> CsvRows<'a> {
    fn fail(
        &mut self,
        line: usize,
        reason: &str,
    ) -> Option<Result<Vec<Cow<'a, str>>, ArrowConvError>> {
        self.pos = self.text.len();
        Some(Err(ArrowConvError::Csv {
            line,
            reason: reason.to_string(),
        }))
    }
}

impl<'a> Iterator for CsvRows<'a> {
    type Item = Result<Vec<Cow<'a, str>>, ArrowConvError>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.text;
        let bytes = text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        self.line += 1;
        let row_line = self.line;
        let mut fields = Vec::new();
        loop {
            if bytes.get(self.pos) == Some(&b'"') {
                let mut i = self.pos + 1;
                let mut segment = i;
                let mut owned: Option<String> = None;
                loop {
                    match bytes.get(i) {
                        None => return self.fail(row_line, "a quoted field is never closed"),
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                            owned
                                .get_or_insert_with(String::new)
                                .push_str(&text[segment..=i]);
                            i += 2;
                            segment = i;
                        }
                        Some(b'"') => break,
                        Some(b'\n') => {
                            self.line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
                fields.push(match owned {
                    Some(mut s) => {
                        s.push_str(&text[segment..i]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&text[segment..i]),
                });
                self.pos = i + 1;
                match bytes.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b'\r') if bytes.get(self.pos + 1) == Some(&b'\n') => {
                        self.pos += 2;
                        return Some(Ok(fields));
                    }
                    Some(b'\n') => {
                        self.pos += 1;
                        return Some(Ok(fields));
                    }
                    None => return Some(Ok(fields)),
                    Some(_) => {
                        return self.fail(
                            self.line,
                            "a closing quote is followed by something other than `,` or a line break",
                        );
                    }
                }
            } else {
                let end = bytes[self.pos..]
                    .iter()
                    .position(|b| *b == b',' || *b == b'\n')
                    .map_or(bytes.len(), |p| self.pos + p);
                let at_comma = bytes.get(end) == Some(&b',');
                let mut field_end = end;
                if !at_comma && field_end > self.pos && bytes[field_end - 1] == b'\r' {
                    field_end -= 1;
                }
                fields.push(Cow::Borrowed(&text[self.pos..field_end]));
                self.pos = (end + 1).min(bytes.len());
                if !at_comma {
                    return Some(Ok(fields));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rows(text: &str) -> Vec<Vec<String>> {
        csv_rows(text)
            .map(|r| r.unwrap().into_iter().map(Cow::into_owned).collect())
            .collect()
    }

    #[test]
    fn plain_rows_with_either_line_ending_and_no_final_break() {
        assert_eq!(
            rows("a,b\r\n1,2\n3,4"),
            vec![vec!["a", "b"], vec!["1", "2"], vec!["3", "4"]]
        );
        assert_eq!(rows("a,b\n"), vec![vec!["a", "b"]]);
        assert!(rows("").is_empty());
    }

    #[test]
    fn empty_fields_stay_empty() {
        assert_eq!(rows(",\n,x,\r\n"), vec![vec!["", ""], vec!["", "x", ""]]);
        assert_eq!(rows("a,"), vec![vec!["a", ""]]);
        assert_eq!(rows("\"\",b"), vec![vec!["", "b"]]);
    }

    #[test]
    fn quotes_commas_and_line_breaks_inside_quoted_fields() {
        let text =
            "id,text\r\n\"1\",\"a, \"\"quoted\"\" word\"\r\n2,\"two\r\nlines\nhere\"\n3,\"\"\"\"\n";
        assert_eq!(
            rows(text),
            vec![
                vec!["id", "text"],
                vec!["1", "a, \"quoted\" word"],
                vec!["2", "two\r\nlines\nhere"],
                vec!["3", "\""],
            ]
        );
        // Fields without escapes are borrowed, not copied.
        let first = csv_rows("\"plain\"").next().unwrap().unwrap();
        assert!(matches!(first[0], Cow::Borrowed("plain")));
    }

    #[test]
    fn utf8_text_is_kept() {
        assert_eq!(rows("é,\"ü,ß\"\n"), vec![vec!["é", "ü,ß"]]);
    }

    #[test]
    fn malformed_quotes_are_errors_with_the_line() {
        let mut it = csv_rows("a\n\"open,b\n");
        assert_eq!(it.next().unwrap().unwrap(), vec![Cow::Borrowed("a")]);
        let e = it.next().unwrap().unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("never closed"), "{e}");
        assert!(it.next().is_none());
        let e = csv_rows("\"a\"x,b")
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("closing quote"), "{e}");
    }
}
