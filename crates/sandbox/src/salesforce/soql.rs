//! The SOQL subset connectors send:
//! `SELECT f1, f2 FROM Obj [WHERE f op literal [AND|OR ...]] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`,
//! and `SELECT COUNT() FROM Obj [WHERE ...] [LIMIT n]` (which, as in
//! Salesforce, must be the only select item and takes no ORDER BY).

use std::cmp::Ordering;

use super::data::{Val, parse_date, parse_datetime_nanos};
use super::errors::SfError;
use super::schema::{FieldType, SObject};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `field op literal`.
#[derive(Debug, Clone)]
struct Cond {
    field: usize,
    op: Op,
    value: Val,
}

/// A parsed query, with field names resolved to positions in the object's fields.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) object: SObject,
    /// Selected fields (positions in [`SObject::fields`]); empty for `COUNT()`.
    pub(crate) fields: Vec<usize>,
    /// `SELECT COUNT()`: the answer is the number of matching rows, no records.
    pub(crate) count: bool,
    /// Disjunction of conjunctions (`a AND b OR c` is `[[a, b], [c]]`).
    filter: Vec<Vec<Cond>>,
    /// (field, descending, nulls last).
    order: Vec<(usize, bool, bool)>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Comma,
    LParen,
    RParen,
    Op(Op),
}

fn tokenize(q: &str) -> Result<Vec<(Tok, usize)>, SfError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        let start = k;
        match c {
            c if c.is_whitespace() => k += 1,
            ',' => {
                out.push((Tok::Comma, start));
                k += 1;
            }
            '(' => {
                out.push((Tok::LParen, start));
                k += 1;
            }
            ')' => {
                out.push((Tok::RParen, start));
                k += 1;
            }
            '=' => {
                out.push((Tok::Op(Op::Eq), start));
                k += 1;
            }
            '!' if chars.get(k + 1) == Some(&'=') => {
                out.push((Tok::Op(Op::Ne), start));
                k += 2;
            }
            '<' | '>' => {
                let next = chars.get(k + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    _ => (Op::Gt, 1),
                };
                out.push((Tok::Op(op), start));
                k += len;
            }
            '\'' => {
                let mut s = String::new();
                k += 1;
                loop {
                    match chars.get(k) {
                        None => return Err(malformed(q, "unterminated string literal")),
                        Some('\\') => {
                            let escaped = chars.get(k + 1).copied().unwrap_or('\\');
                            s.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            k += 2;
                        }
                        Some('\'') => {
                            k += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            k += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            _ => {
                while k < chars.len()
                    && !chars[k].is_whitespace()
                    && !matches!(chars[k], ',' | '(' | ')' | '=' | '<' | '>' | '!' | '\'')
                {
                    k += 1;
                }
                if k == start {
                    return Err(malformed(q, &format!("unexpected character '{c}'")));
                }
                out.push((Tok::Word(chars[start..k].iter().collect()), start));
            }
        }
    }
    Ok(out)
}

fn malformed(q: &str, what: &str) -> SfError {
    SfError::bad_request(
        "MALFORMED_QUERY",
        format!("\n{q}\n^\nERROR at Row:1:Column:1\n{what}"),
    )
}

struct Parser<'a> {
    q: &'a str,
    toks: Vec<(Tok, usize)>,
    k: usize,
}

impl Parser<'_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.k), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SfError> {
        if self.peek_kw(kw) {
            self.k += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting '{kw}'")))
        }
    }

    fn unexpected(&self, what: &str) -> SfError {
        let (found, col) = match self.toks.get(self.k) {
            Some((Tok::Word(w), c)) => (w.clone(), *c),
            Some((Tok::Str(s), c)) => (format!("'{s}'"), *c),
            Some((t, c)) => (format!("{t:?}"), *c),
            None => ("<EOF>".to_owned(), self.q.len()),
        };
        SfError::bad_request(
            "MALFORMED_QUERY",
            format!(
                "\n{}\n{}^\nERROR at Row:1:Column:{}\nunexpected token: {found} ({what})",
                self.q,
                " ".repeat(col),
                col + 1
            ),
        )
    }

    fn word(&mut self) -> Result<(String, usize), SfError> {
        match self.toks.get(self.k) {
            Some((Tok::Word(w), c)) => {
                let out = (w.clone(), *c);
                self.k += 1;
                Ok(out)
            }
            _ => Err(self.unexpected("expecting an identifier")),
        }
    }
}

fn no_such_column(q: &str, col: usize, name: &str, obj: SObject) -> SfError {
    SfError::bad_request(
        "INVALID_FIELD",
        format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\nNo such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(col),
            col + 1,
            obj.name()
        ),
    )
}

/// Parses `q`.
pub(crate) fn parse(q: &str) -> Result<Query, SfError> {
    let toks = tokenize(q)?;
    let mut p = Parser { q, toks, k: 0 };
    p.expect_kw("SELECT")?;
    let mut names = Vec::new();
    let count = p.peek_kw("COUNT") && matches!(p.toks.get(p.k + 1), Some((Tok::LParen, _)));
    if count {
        p.k += 2;
        if !matches!(p.toks.get(p.k), Some((Tok::RParen, _))) {
            return Err(malformed(
                q,
                "only COUNT() is supported by the sandbox, not COUNT(fieldName)",
            ));
        }
        p.k += 1;
    } else {
        loop {
            names.push(p.word()?);
            if matches!(p.toks.get(p.k), Some((Tok::Comma, _))) {
                p.k += 1;
            } else {
                break;
            }
        }
    }
    p.expect_kw("FROM")?;
    let (obj_name, obj_col) = p.word()?;
    let Some(object) = SObject::parse(&obj_name) else {
        return Err(SfError::bad_request(
            "INVALID_TYPE",
            format!(
                "\n{q}\n{}^\nERROR at Row:1:Column:{}\nsObject type '{obj_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                " ".repeat(obj_col),
                obj_col + 1
            ),
        ));
    };
    let resolve = |name: &str, col: usize| {
        object
            .field_index(name)
            .ok_or_else(|| no_such_column(q, col, name, object))
    };
    let mut fields = Vec::new();
    for (name, col) in &names {
        if name.eq_ignore_ascii_case("FIELDS") || name.contains('(') {
            return Err(malformed(q, "functions are not supported by the sandbox"));
        }
        let idx = resolve(name, *col)?;
        if fields.contains(&idx) {
            return Err(SfError::bad_request(
                "INVALID_FIELD",
                format!("duplicate field selected: {name}"),
            ));
        }
        fields.push(idx);
    }
    let mut filter: Vec<Vec<Cond>> = Vec::new();
    if p.peek_kw("WHERE") {
        p.k += 1;
        let mut conj = Vec::new();
        loop {
            let (name, col) = p.word()?;
            let field = resolve(&name, col)?;
            let op = match p.toks.get(p.k) {
                Some((Tok::Op(op), _)) => *op,
                _ => return Err(p.unexpected("expecting an operator")),
            };
            p.k += 1;
            let ty = object.fields()[field].ty;
            let value = match p.toks.get(p.k) {
                Some((Tok::Str(s), _)) => match ty {
                    FieldType::DateTime | FieldType::Date => {
                        return Err(SfError::bad_request(
                            "INVALID_FIELD",
                            format!(
                                "\n{q}\nvalue of filter criterion for field '{name}' must be of type {} and should not be enclosed in quotes",
                                if ty == FieldType::Date {
                                    "date"
                                } else {
                                    "dateTime"
                                }
                            ),
                        ));
                    }
                    _ => Val::Str(s.clone()),
                },
                Some((Tok::Word(w), _)) => literal(ty, op, w)
                    .ok_or_else(|| p.unexpected(&format!("invalid literal for field {name}")))?,
                _ => return Err(p.unexpected("expecting a literal")),
            };
            p.k += 1;
            conj.push(Cond { field, op, value });
            if p.peek_kw("AND") {
                p.k += 1;
            } else if p.peek_kw("OR") {
                p.k += 1;
                filter.push(std::mem::take(&mut conj));
            } else {
                break;
            }
        }
        filter.push(conj);
    }
    let mut order = Vec::new();
    if p.peek_kw("ORDER") {
        p.k += 1;
        p.expect_kw("BY")?;
        if count {
            return Err(malformed(
                q,
                "COUNT() can't be used with ORDER BY; use COUNT(fieldName)",
            ));
        }
        loop {
            let (name, col) = p.word()?;
            let field = resolve(&name, col)?;
            let mut desc = false;
            if p.peek_kw("ASC") {
                p.k += 1;
            } else if p.peek_kw("DESC") {
                p.k += 1;
                desc = true;
            }
            let mut nulls_last = desc;
            if p.peek_kw("NULLS") {
                p.k += 1;
                if p.peek_kw("FIRST") {
                    nulls_last = false;
                } else if p.peek_kw("LAST") {
                    nulls_last = true;
                } else {
                    return Err(p.unexpected("expecting FIRST or LAST"));
                }
                p.k += 1;
            }
            order.push((field, desc, nulls_last));
            if matches!(p.toks.get(p.k), Some((Tok::Comma, _))) {
                p.k += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    if p.peek_kw("LIMIT") {
        p.k += 1;
        let (n, _) = p.word()?;
        limit = Some(n.parse().map_err(|_| p.unexpected("expecting a number"))?);
    }
    let mut offset = 0;
    if p.peek_kw("OFFSET") {
        p.k += 1;
        let (n, _) = p.word()?;
        offset = n.parse().map_err(|_| p.unexpected("expecting a number"))?;
    }
    if p.k < p.toks.len() {
        return Err(p.unexpected("end of query expected"));
    }
    Ok(Query {
        object,
        fields,
        count,
        filter,
        order,
        limit,
        offset,
    })
}

fn literal(ty: FieldType, op: Op, w: &str) -> Option<Val> {
    if w.eq_ignore_ascii_case("null") {
        return Some(Val::Null);
    }
    Some(match ty {
        // Stored datetimes have whole seconds: against a literal with a
        // fraction, `<` and `>=` compare with the next second (x < 5.5 is
        // x < 6), `>` and `<=` with its own, as Salesforce compares exactly.
        FieldType::DateTime => {
            let (secs, nanos) = parse_datetime_nanos(w)?;
            match op {
                Op::Lt | Op::Ge if nanos > 0 => Val::DateTime(secs.saturating_add(1)),
                _ => Val::DateTime(secs),
            }
        }
        FieldType::Date => Val::Date(parse_date(w)?),
        FieldType::Boolean => match w.to_ascii_lowercase().as_str() {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            _ => return None,
        },
        FieldType::Int => Val::Int(w.parse().ok()?),
        FieldType::Double | FieldType::Currency => Val::Num(w.parse().ok()?),
        _ => return None,
    })
}

/// Orders two values of the same field (null first).
pub(crate) fn compare(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Null, _) => Ordering::Less,
        (_, Val::Null) => Ordering::Greater,
        (Val::Str(x), Val::Str(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Num(x), Val::Num(y)) => x.total_cmp(y),
        (Val::Int(x), Val::Num(y)) => (*x as f64).total_cmp(y),
        (Val::Num(x), Val::Int(y)) => x.total_cmp(&(*y as f64)),
        (Val::DateTime(x), Val::DateTime(y)) | (Val::Date(x), Val::Date(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl Query {
    /// Fields the filter and ordering read (to fetch only those while scanning).
    pub(crate) fn scanned_fields(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .filter
            .iter()
            .flatten()
            .map(|c| c.field)
            .chain(self.order.iter().map(|o| o.0))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether a record matches; `get` returns a field's value.
    pub(crate) fn matches(&self, get: &dyn Fn(usize) -> Val) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        self.filter.iter().any(|conj| {
            conj.iter().all(|c| {
                let v = get(c.field);
                if let (Val::Null, Op::Eq) = (&c.value, c.op) {
                    return v == Val::Null;
                }
                if let (Val::Null, Op::Ne) = (&c.value, c.op) {
                    return v != Val::Null;
                }
                if v == Val::Null {
                    return c.op == Op::Ne;
                }
                let ord = compare(&v, &c.value);
                match c.op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                }
            })
        })
    }

    /// Whether the query has an ORDER BY (otherwise rows come in Id order).
    pub(crate) fn is_ordered(&self) -> bool {
        !self.order.is_empty()
    }

    /// Compares two records by the ORDER BY; `a`/`b` return field values.
    pub(crate) fn order_cmp(&self, a: &dyn Fn(usize) -> Val, b: &dyn Fn(usize) -> Val) -> Ordering {
        for &(field, desc, nulls_last) in &self.order {
            let (x, y) = (a(field), b(field));
            let ord = match (&x, &y) {
                (Val::Null, Val::Null) => Ordering::Equal,
                (Val::Null, _) => {
                    if nulls_last {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (_, Val::Null) => {
                    if nulls_last {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                _ => {
                    let o = compare(&x, &y);
                    if desc { o.reverse() } else { o }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_connector_subset() {
        let q = parse(
            "select Id, Email, SystemModstamp from contact where SystemModstamp > 2024-01-01T00:00:00Z and IsDeleted = false order by SystemModstamp asc limit 10",
        )
        .unwrap();
        assert_eq!(q.object, SObject::Contact);
        assert_eq!(q.fields.len(), 3);
        assert_eq!(q.limit, Some(10));
        assert!(q.is_ordered());
        let modstamp = SObject::Contact.field_index("SystemModstamp").unwrap();
        let get_after = |f: usize| {
            if f == modstamp {
                Val::DateTime(1_704_067_201)
            } else {
                Val::Bool(false)
            }
        };
        let get_at = |f: usize| {
            if f == modstamp {
                Val::DateTime(1_704_067_200)
            } else {
                Val::Bool(false)
            }
        };
        assert!(q.matches(&get_after));
        assert!(!q.matches(&get_at));
    }

    /// A window cut at milliseconds: the record at a whole second belongs
    /// to exactly one of `< cut` and `>= cut`, as in Salesforce.
    #[test]
    fn a_literal_with_milliseconds_compares_exactly() {
        let modstamp = SObject::Contact.field_index("SystemModstamp").unwrap();
        let at = |secs: i64| {
            move |f: usize| {
                if f == modstamp {
                    Val::DateTime(secs)
                } else {
                    Val::Null
                }
            }
        };
        let below = parse("SELECT Id FROM Contact WHERE SystemModstamp < 2024-01-01T00:00:00.500Z")
            .unwrap();
        let above =
            parse("SELECT Id FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00.500Z")
                .unwrap();
        let le = parse("SELECT Id FROM Contact WHERE SystemModstamp <= 2024-01-01T00:00:00.500Z")
            .unwrap();
        let gt = parse("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00.500Z")
            .unwrap();
        // 1_704_067_200 is 2024-01-01T00:00:00Z, before the literal.
        for (secs, before) in [(1_704_067_200, true), (1_704_067_201, false)] {
            assert_eq!(below.matches(&at(secs)), before, "< at {secs}");
            assert_eq!(above.matches(&at(secs)), !before, ">= at {secs}");
            assert_eq!(le.matches(&at(secs)), before, "<= at {secs}");
            assert_eq!(gt.matches(&at(secs)), !before, "> at {secs}");
        }
    }

    #[test]
    fn count_parses_with_a_filter_and_selects_no_fields() {
        let q = parse("select count() from Contact where IsDeleted = true limit 5").unwrap();
        assert!(q.count);
        assert_eq!(q.object, SObject::Contact);
        assert!(q.fields.is_empty());
        assert_eq!(q.limit, Some(5));
        assert!(!q.is_ordered());
        assert!(q.matches(&|_| Val::Bool(true)));
        assert!(!q.matches(&|_| Val::Bool(false)));
        let all = parse("SELECT COUNT() FROM Account").unwrap();
        assert!(all.count);
        assert!(all.matches(&|_| Val::Null));
        assert!(!parse("SELECT Id FROM Account").unwrap().count);
    }

    #[test]
    fn count_rejects_what_salesforce_rejects() {
        for bad in [
            "SELECT COUNT() FROM Contact ORDER BY Id",
            "SELECT COUNT(Id) FROM Contact",
            "SELECT Id, COUNT() FROM Contact",
            "SELECT COUNT(), Id FROM Contact",
            "SELECT COUNT( FROM Contact",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, "MALFORMED_QUERY", "{bad}");
        }
        assert_eq!(
            parse("SELECT COUNT() FROM Widget").unwrap_err().code,
            "INVALID_TYPE"
        );
        assert_eq!(
            parse("SELECT COUNT() FROM Contact WHERE Foo = 1")
                .unwrap_err()
                .code,
            "INVALID_FIELD"
        );
    }

    #[test]
    fn unknown_field_and_object_are_rejected() {
        let e = parse("SELECT Id, Foo FROM Contact").unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        assert!(
            e.message
                .contains("No such column 'Foo' on entity 'Contact'")
        );
        assert!(e.message.contains("Column:12"));
        assert_eq!(
            parse("SELECT Id FROM Widget").unwrap_err().code,
            "INVALID_TYPE"
        );
        assert_eq!(
            parse("SELECT Id Contact").unwrap_err().code,
            "MALFORMED_QUERY"
        );
        assert_eq!(
            parse("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'")
                .unwrap_err()
                .code,
            "INVALID_FIELD"
        );
    }
}
