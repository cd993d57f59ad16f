//! Stripe list semantics over lazily generated sequences: parameter parsing
//! (`limit`, `starting_after`, `ending_before`, `created[...]`, event `type`
//! and `types[]`, subscriptions' `status`) and paging newest-first by
//! (created, id).

use std::cmp::Ordering;

use super::errors::StripeError;

/// Largest `limit` Stripe accepts.
pub(crate) const MAX_LIMIT: i64 = 100;
/// `limit` when none is given.
pub(crate) const DEFAULT_LIMIT: usize = 10;

/// A sequence of objects ordered by index, where (created, id) grows with the index.
pub(crate) trait Source {
    fn len(&self) -> u64;
    fn created(&self, i: u64) -> i64;
    fn id(&self, i: u64) -> String;
    /// Whether item `i` is listed (not deleted, matches filters).
    fn visible(&self, i: u64) -> bool;
    fn render(&self, i: u64, out: &mut String);
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Items strictly older than this (created, id).
    After(i64, String),
    /// Items strictly newer than this (created, id).
    Before(i64, String),
}

/// Parsed list parameters common to every list endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListParams {
    pub(crate) limit: usize,
    pub(crate) starting_after: Option<String>,
    pub(crate) ending_before: Option<String>,
    /// Inclusive created bounds.
    pub(crate) created_min: i64,
    pub(crate) created_max: i64,
    /// Event `type` (may hold `*` wildcards).
    pub(crate) event_type: Option<String>,
    /// Event `types[]`.
    pub(crate) event_types: Vec<String>,
}

fn parse_int(param: &str, value: &str) -> Result<i64, StripeError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| StripeError::invalid_integer(param, value))
}

/// Whether `key` is `name[]` or `name[N]`.
fn is_array_key(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|inner| inner.bytes().all(|b| b.is_ascii_digit()))
}

impl ListParams {
    /// Parses a list query; `events` enables `type`/`types[]`; `ignored` are
    /// documented filters accepted without effect on generated data.
    pub(crate) fn parse(
        pairs: &[(String, String)],
        events: bool,
        ignored: &[&str],
    ) -> Result<Self, StripeError> {
        let mut p = ListParams {
            limit: DEFAULT_LIMIT,
            starting_after: None,
            ending_before: None,
            created_min: i64::MIN,
            created_max: i64::MAX,
            event_type: None,
            event_types: Vec::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let n = parse_int("limit", value)?;
                    if n > MAX_LIMIT {
                        return Err(StripeError::invalid(
                            format!(
                                "This value must be less than or equal to {MAX_LIMIT} (it currently is '{n}')."
                            ),
                            Some("limit"),
                        ));
                    }
                    if n < 1 {
                        return Err(StripeError::invalid(
                            format!(
                                "This value must be greater than or equal to 1 (it currently is '{n}')."
                            ),
                            Some("limit"),
                        ));
                    }
                    p.limit = n as usize;
                }
                "starting_after" => p.starting_after = Some(value.clone()),
                "ending_before" => p.ending_before = Some(value.clone()),
                "created" => {
                    let n = parse_int("created", value)?;
                    p.created_min = p.created_min.max(n);
                    p.created_max = p.created_max.min(n);
                }
                "created[gt]" => {
                    p.created_min = p.created_min.max(parse_int(key, value)?.saturating_add(1));
                }
                "created[gte]" => p.created_min = p.created_min.max(parse_int(key, value)?),
                "created[lt]" => {
                    p.created_max = p.created_max.min(parse_int(key, value)?.saturating_sub(1));
                }
                "created[lte]" => p.created_max = p.created_max.min(parse_int(key, value)?),
                "type" if events => p.event_type = Some(value.clone()),
                k if events && is_array_key(k, "types") => p.event_types.push(value.clone()),
                k if is_array_key(k, "expand") => {}
                k if ignored.contains(&k) => {}
                k => return Err(StripeError::unknown_param(k)),
            }
        }
        if p.starting_after.is_some() && p.ending_before.is_some() {
            return Err(StripeError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                Some("ending_before"),
            ));
        }
        if p.event_type.is_some() && !p.event_types.is_empty() {
            return Err(StripeError::invalid(
                "You may only specify one of these parameters: type, types.",
                Some("types"),
            ));
        }
        if p.event_types.len() > 20 {
            return Err(StripeError::invalid(
                "You may pass at most 20 event types.",
                Some("types"),
            ));
        }
        Ok(p)
    }

    /// Whether an event type passes the `type` / `types[]` filter.
    pub(crate) fn type_matches(&self, event_type: &str) -> bool {
        if let Some(pattern) = &self.event_type {
            return glob(pattern, event_type);
        }
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// The `status` filter of `GET /v1/subscriptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscriptionStatus {
    /// No `status`: Stripe lists every subscription not canceled.
    NotCanceled,
    /// `status=all`.
    All,
    /// `status=ended`: canceled and `incomplete_expired` ones.
    Ended,
    /// Exactly this status (`canceled`, `active`, `past_due`, ...).
    Is(&'static str),
}

impl SubscriptionStatus {
    /// The values Stripe documents, in the order its error message lists them.
    const VALUES: [&'static str; 10] = [
        "active",
        "past_due",
        "unpaid",
        "canceled",
        "incomplete",
        "incomplete_expired",
        "trialing",
        "paused",
        "all",
        "ended",
    ];

    /// Parses the `status` parameter (`None`: not given).
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, StripeError> {
        let Some(value) = value else {
            return Ok(Self::NotCanceled);
        };
        match Self::VALUES.into_iter().find(|v| *v == value) {
            Some("all") => Ok(Self::All),
            Some("ended") => Ok(Self::Ended),
            Some(v) => Ok(Self::Is(v)),
            None => {
                let (last, rest) = Self::VALUES.split_last().unwrap_or((&"", &[]));
                Err(StripeError::invalid(
                    format!(
                        "Invalid status: must be one of {}, or {last}",
                        rest.join(", ")
                    ),
                    Some("status"),
                ))
            }
        }
    }

    /// Whether a subscription with `status` is listed.
    pub(crate) fn matches(self, status: &str) -> bool {
        match self {
            Self::NotCanceled => status != "canceled",
            Self::All => true,
            Self::Ended => matches!(status, "canceled" | "incomplete_expired"),
            Self::Is(s) => s == status,
        }
    }
}

/// `*` matches any run of characters.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return s.is_empty();
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Smallest `i` in `lo..hi` with `pred(i)` (monotone false→true), else `hi`.
fn first(mut lo: u64, mut hi: u64, pred: impl Fn(u64) -> bool) -> u64 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn cmp_key(src: &dyn Source, i: u64, created: i64, id: &str) -> Ordering {
    src.created(i)
        .cmp(&created)
        .then_with(|| src.id(i).as_str().cmp(id))
}

/// One page: `(source, index)` newest first, and whether more items follow
/// in the direction of travel.
pub(crate) fn page(
    sources: &[&dyn Source],
    created_min: i64,
    created_max: i64,
    cursor: Option<&Cursor>,
    limit: usize,
) -> (Vec<(usize, u64)>, bool) {
    let mut bounds = Vec::with_capacity(sources.len());
    for src in sources {
        let len = src.len();
        let mut lo = first(0, len, |i| src.created(i) >= created_min);
        let mut hi = first(lo, len, |i| src.created(i) > created_max);
        match cursor {
            Some(Cursor::After(c, id)) => {
                hi = first(lo, hi, |i| cmp_key(*src, i, *c, id) != Ordering::Less);
            }
            Some(Cursor::Before(c, id)) => {
                lo = first(lo, hi, |i| cmp_key(*src, i, *c, id) == Ordering::Greater);
            }
            None => {}
        }
        bounds.push((lo, hi));
    }
    let ascending = matches!(cursor, Some(Cursor::Before(..)));
    let mut picked: Vec<(usize, u64)> = Vec::with_capacity(limit + 1);
    while picked.len() <= limit {
        let mut best: Option<(usize, u64, i64, String)> = None;
        for (s, src) in sources.iter().enumerate() {
            let (lo, hi) = &mut bounds[s];
            // Skip hidden items at the edge we take from.
            let candidate = loop {
                if *lo >= *hi {
                    break None;
                }
                let i = if ascending { *lo } else { *hi - 1 };
                if src.visible(i) {
                    break Some(i);
                }
                if ascending {
                    *lo += 1;
                } else {
                    *hi -= 1;
                }
            };
            let Some(i) = candidate else { continue };
            if sources.len() == 1 {
                best = Some((s, i, 0, String::new()));
                break;
            }
            let (created, id) = (src.created(i), src.id(i));
            let better = match &best {
                None => true,
                Some((_, _, bc, bid)) => {
                    let ord = (created, id.as_str()).cmp(&(*bc, bid.as_str()));
                    if ascending {
                        ord == Ordering::Less
                    } else {
                        ord == Ordering::Greater
                    }
                }
            };
            if better {
                best = Some((s, i, created, id));
            }
        }
        let Some((s, i, _, _)) = best else { break };
        picked.push((s, i));
        let (lo, hi) = &mut bounds[s];
        if ascending {
            *lo += 1;
        } else {
            *hi -= 1;
        }
    }
    let has_more = picked.len() > limit;
    picked.truncate(limit);
    if ascending {
        picked.reverse();
    }
    (picked, has_more)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nums {
        created: Vec<i64>,
        hidden: Vec<u64>,
    }

    impl Source for Nums {
        fn len(&self) -> u64 {
            self.created.len() as u64
        }
        fn created(&self, i: u64) -> i64 {
            self.created[i as usize]
        }
        fn id(&self, i: u64) -> String {
            format!("x_{i:04}")
        }
        fn visible(&self, i: u64) -> bool {
            !self.hidden.contains(&i)
        }
        fn render(&self, i: u64, out: &mut String) {
            out.push_str(&self.id(i));
        }
    }

    #[test]
    fn glob_matches_like_stripe_type_filter() {
        assert!(glob("customer.*", "customer.updated"));
        assert!(glob("customer.*", "customer.subscription.created"));
        assert!(!glob("customer.*", "charge.succeeded"));
        assert!(glob("*.created", "invoice.created"));
        assert!(glob("customer.updated", "customer.updated"));
        assert!(!glob("customer.updated", "customer.updated2"));
    }

    #[test]
    fn pages_desc_with_cursors_and_hidden_items() {
        let src = Nums {
            created: vec![1, 2, 2, 3, 5, 8],
            hidden: vec![3],
        };
        let s: &[&dyn Source] = &[&src];
        let (p, more) = page(s, i64::MIN, i64::MAX, None, 2);
        assert_eq!(p, vec![(0, 5), (0, 4)]);
        assert!(more);
        let (p, more) = page(
            s,
            i64::MIN,
            i64::MAX,
            Some(&Cursor::After(5, "x_0004".into())),
            2,
        );
        assert_eq!(p, vec![(0, 2), (0, 1)]);
        assert!(more);
        let (p, more) = page(
            s,
            i64::MIN,
            i64::MAX,
            Some(&Cursor::Before(2, "x_0001".into())),
            2,
        );
        assert_eq!(p, vec![(0, 4), (0, 2)]);
        assert!(more);
        let (p, more) = page(s, 2, 5, None, 10);
        assert_eq!(p, vec![(0, 4), (0, 2), (0, 1)]);
        assert!(!more);
    }

    #[test]
    fn merges_sources_newest_first() {
        let a = Nums {
            created: vec![1, 4, 6],
            hidden: vec![],
        };
        let b = Nums {
            created: vec![2, 4, 5],
            hidden: vec![],
        };
        let s: &[&dyn Source] = &[&a, &b];
        let (p, more) = page(s, i64::MIN, i64::MAX, None, 10);
        // created 4 ties: both ids are x_0001, so either order is stable; a (index 0) wins ties by position.
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], (0, 2));
        assert_eq!(p[1], (1, 2));
        assert_eq!(p[5], (0, 0));
        assert!(!more);
    }

    #[test]
    fn subscription_status_defaults_to_not_canceled() {
        let parse = |v| SubscriptionStatus::parse(v).ok();
        assert_eq!(parse(None), Some(SubscriptionStatus::NotCanceled));
        assert_eq!(parse(Some("all")), Some(SubscriptionStatus::All));
        assert_eq!(
            parse(Some("canceled")),
            Some(SubscriptionStatus::Is("canceled"))
        );
        let listed = |s: SubscriptionStatus| {
            ["active", "past_due", "canceled"]
                .into_iter()
                .filter(|v| s.matches(v))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            listed(SubscriptionStatus::NotCanceled),
            ["active", "past_due"]
        );
        assert_eq!(
            listed(SubscriptionStatus::All),
            ["active", "past_due", "canceled"]
        );
        assert_eq!(listed(SubscriptionStatus::Ended), ["canceled"]);
        assert_eq!(listed(SubscriptionStatus::Is("past_due")), ["past_due"]);
        let e = SubscriptionStatus::parse(Some("gone")).err();
        assert_eq!(
            e.map(|e| (e.message, e.param)),
            Some((
                "Invalid status: must be one of active, past_due, unpaid, canceled, incomplete, \
                 incomplete_expired, trialing, paused, all, or ended"
                    .to_owned(),
                Some("status".to_owned())
            ))
        );
    }

    #[test]
    fn parses_params_and_rejects_bad_ones() {
        let q =
            |s: &str| serde_urlencoded::from_str::<Vec<(String, String)>>(s).unwrap_or_default();
        let p = ListParams::parse(
            &q("limit=100&created%5Bgte%5D=10&created%5Blt%5D=20"),
            false,
            &[],
        )
        .ok();
        assert_eq!(
            p.as_ref().map(|p| (p.limit, p.created_min, p.created_max)),
            Some((100, 10, 19))
        );
        let e = ListParams::parse(&q("limit=101"), false, &[]).err();
        assert_eq!(
            e.map(|e| e.message),
            Some(
                "This value must be less than or equal to 100 (it currently is '101').".to_owned()
            )
        );
        let e = ListParams::parse(&q("types[]=a"), false, &[]).err();
        assert_eq!(e.and_then(|e| e.param), Some("types[]".to_owned()));
        let p = ListParams::parse(&q("types[]=a&types[]=b&expand[]=data.customer"), true, &[]).ok();
        assert_eq!(
            p.map(|p| p.event_types),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
    }
}
