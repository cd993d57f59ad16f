//! Stripe's form-encoded request bodies (`a[b][c]=v`, `a[]=v`, `a[0]=v`)
//! decoded into JSON, with the customer endpoint's parameter rules.

use serde_json::{Map, Value};

use super::errors::StripeError;

/// Top-level parameters of `POST /v1/customers` and `POST /v1/customers/{id}`
/// (from the spec's request bodies).
const CUSTOMER_PARAMS: &[&str] = &[
    "address",
    "balance",
    "bank_account",
    "card",
    "cash_balance",
    "coupon",
    "default_alipay_account",
    "default_bank_account",
    "default_card",
    "default_source",
    "description",
    "email",
    "expand",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "payment_method",
    "phone",
    "preferred_locales",
    "promotion_code",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
];

/// Fields a customer update stores (the rest are accepted and have no effect here).
const CUSTOMER_STORED: &[&str] = &[
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
];

const CUSTOMER_INTEGERS: &[&str] = &["balance", "next_invoice_sequence"];

/// Splits `a[b][c]` into `["a", "b", "c"]`.
fn segments(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(pos) => (&key[..pos], &key[pos..]),
        None => return Some(vec![key]),
    };
    let mut out = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        out.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    Some(out)
}

fn insert(target: &mut Value, path: &[&str], value: String) {
    let Some((first, rest)) = path.split_first() else {
        *target = Value::String(value);
        return;
    };
    if first.is_empty() || first.bytes().all(|b| b.is_ascii_digit()) {
        if !target.is_array() {
            *target = Value::Array(Vec::new());
        }
        if let Value::Array(items) = target {
            let idx = if first.is_empty() {
                items.len()
            } else {
                first
                    .parse::<usize>()
                    .map_or(items.len(), |n| n.min(items.len()))
            };
            while items.len() <= idx {
                items.push(Value::Null);
            }
            insert(&mut items[idx], rest, value);
        }
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        insert(
            map.entry((*first).to_owned()).or_insert(Value::Null),
            rest,
            value,
        );
    }
}

/// Decodes a form body into a JSON object of strings, arrays and objects.
pub(crate) fn decode(body: &[u8]) -> Result<Map<String, Value>, StripeError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| StripeError::invalid("Invalid request body: not form-encoded.", None))?;
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let path = segments(&key).ok_or_else(|| {
            StripeError::invalid(format!("Invalid parameter name: {key}"), Some(&key))
        })?;
        insert(&mut root, &path, value);
    }
    match root {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Checks customer parameters and converts them to stored field values:
/// integers parsed, `""` meaning "unset" (null; `metadata` to `{}`), unknown
/// parameters rejected as Stripe does. Returns only the stored fields.
pub(crate) fn customer_fields(form: Map<String, Value>) -> Result<Map<String, Value>, StripeError> {
    let mut out = Map::new();
    for (key, value) in form {
        if !CUSTOMER_PARAMS.contains(&key.as_str()) {
            return Err(StripeError::unknown_param(&key));
        }
        if !CUSTOMER_STORED.contains(&key.as_str()) {
            continue;
        }
        let value = match value {
            Value::String(s) if CUSTOMER_INTEGERS.contains(&key.as_str()) => Value::from(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| StripeError::invalid_integer(&key, &s))?,
            ),
            Value::String(s) if key == "email" && !s.is_empty() && !plausible_email(&s) => {
                return Err(StripeError {
                    code: Some("email_invalid"),
                    ..StripeError::invalid(format!("Invalid email address: {s}"), Some("email"))
                });
            }
            Value::String(s) if s.is_empty() => {
                if key == "metadata" {
                    Value::Object(Map::new())
                } else {
                    Value::Null
                }
            }
            other => other,
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// Stripe's email check, roughly: `local@domain.tld`, no spaces.
fn plausible_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Merges an update into a current field value the way Stripe does:
/// `metadata` keys merge (an empty value deletes the key), other hashes merge
/// key by key, everything else is replaced.
pub(crate) fn merge_field(key: &str, current: Option<&Value>, update: Value) -> Value {
    match (current, update) {
        (Some(Value::Object(cur)), Value::Object(upd)) => {
            let mut merged = cur.clone();
            for (k, v) in upd {
                let empty = matches!(&v, Value::String(s) if s.is_empty()) || v.is_null();
                if key == "metadata" && empty {
                    merged.remove(&k);
                } else {
                    let next = merge_field("", merged.get(&k), v);
                    merged.insert(k, next);
                }
            }
            Value::Object(merged)
        }
        (_, update) => update,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_nested_form_keys() {
        let m = decode(b"name=Ann&metadata[a]=1&preferred_locales[]=en&preferred_locales[]=fr&address[city]=Oslo&invoice_settings[custom_fields][0][name]=n&invoice_settings[custom_fields][0][value]=v").unwrap();
        assert_eq!(
            Value::Object(m),
            json!({
                "name": "Ann",
                "metadata": {"a": "1"},
                "preferred_locales": ["en", "fr"],
                "address": {"city": "Oslo"},
                "invoice_settings": {"custom_fields": [{"name": "n", "value": "v"}]}
            })
        );
    }

    #[test]
    fn customer_fields_convert_and_reject() {
        let f =
            customer_fields(decode(b"balance=-500&phone=&metadata=&expand[]=x").unwrap()).unwrap();
        assert_eq!(
            Value::Object(f),
            json!({"balance": -500, "phone": null, "metadata": {}})
        );
        let e = customer_fields(decode(b"nickname=x").unwrap()).unwrap_err();
        assert_eq!(e.message, "Received unknown parameter: nickname");
        let e = customer_fields(decode(b"balance=abc").unwrap()).unwrap_err();
        assert_eq!(e.message, "Invalid integer: abc");
        let e = customer_fields(decode(b"email=not-an-email").unwrap()).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code, e.param.as_deref()),
            (
                "Invalid email address: not-an-email",
                Some("email_invalid"),
                Some("email")
            )
        );
        let ok = customer_fields(decode(b"email=a%40b.co&name=").unwrap()).unwrap();
        assert_eq!(Value::Object(ok), json!({"email": "a@b.co", "name": null}));
    }

    #[test]
    fn metadata_merges_and_deletes() {
        let cur = json!({"a": "1", "b": "2"});
        let merged = merge_field("metadata", Some(&cur), json!({"a": "", "c": "3"}));
        assert_eq!(merged, json!({"b": "2", "c": "3"}));
        assert_eq!(
            merge_field("name", Some(&json!("x")), json!("y")),
            json!("y")
        );
    }
}
