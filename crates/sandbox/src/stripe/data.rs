//! The lazily generated Stripe universe: how many objects of each kind exist
//! for a (seed, size), their ids, creation times and relationships. Nothing
//! here is stored; every value is computed from its index.
//!
//! Object `i` of a kind is created at `created(kind, i)`, which never
//! decreases with `i`, and ids encode `i` in fixed-width base62 (which sorts
//! like `i`), so "created desc, id desc" is simply "index desc".

use crate::hash::{h, parse_base62, push_base62};

/// How far back generated history goes: about two years.
pub(crate) const HISTORY_SECS: i64 = 730 * 86_400;

/// Width of the index part of an id.
const INDEX_DIGITS: usize = 10;

/// One generated subscription in this many is canceled (those with index
/// `j % CANCELED_EVERY == CANCELED_AT_INDEX`, among the old enough ones).
pub(crate) const CANCELED_EVERY: u64 = 8;
const CANCELED_AT_INDEX: u64 = 5;
/// Generated cancellations happen at least this long before the epoch: outside
/// Stripe's 30 days of events (and of any later clock), so the events feed
/// misses no `customer.subscription.deleted` of the generated history.
const CANCELED_BEFORE_SECS: i64 = 31 * 86_400;
/// A generated subscription is canceled no sooner than this after it started.
const CANCELED_AFTER_SECS: i64 = 30 * 86_400;

/// One charge in this many is disputed (those with index
/// `i % DISPUTED_EVERY == DISPUTED_AT_INDEX`: never a refunded one, as
/// refunds are of every 20th charge from 0).
const DISPUTED_EVERY: u64 = 50;
const DISPUTED_AT_INDEX: u64 = 3;

/// Tax rates: a fixed few, whatever the size.
const TAX_RATES: u64 = 4;

/// A Stripe object type served as a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Customer,
    Product,
    Price,
    Subscription,
    Invoice,
    PaymentIntent,
    Charge,
    Refund,
    BalanceTransaction,
    Coupon,
    Payout,
    Dispute,
    TaxRate,
    PromotionCode,
}

impl Kind {
    pub(crate) const ALL: [Kind; 14] = [
        Kind::Customer,
        Kind::Product,
        Kind::Price,
        Kind::Subscription,
        Kind::Invoice,
        Kind::PaymentIntent,
        Kind::Charge,
        Kind::Refund,
        Kind::BalanceTransaction,
        Kind::Coupon,
        Kind::Payout,
        Kind::Dispute,
        Kind::TaxRate,
        Kind::PromotionCode,
    ];

    /// Id prefix (`cus`).
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Customer => "cus",
            Kind::Product => "prod",
            Kind::Price => "price",
            Kind::Subscription => "sub",
            Kind::Invoice => "in",
            Kind::PaymentIntent => "pi",
            Kind::Charge => "ch",
            Kind::Refund => "re",
            Kind::BalanceTransaction => "txn",
            Kind::Coupon => "co",
            Kind::Payout => "po",
            Kind::Dispute => "dp",
            Kind::TaxRate => "txr",
            Kind::PromotionCode => "promo",
        }
    }

    /// The `/v1/{path}` collection name.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Kind::Customer => "customers",
            Kind::Product => "products",
            Kind::Price => "prices",
            Kind::Subscription => "subscriptions",
            Kind::Invoice => "invoices",
            Kind::PaymentIntent => "payment_intents",
            Kind::Charge => "charges",
            Kind::Refund => "refunds",
            Kind::BalanceTransaction => "balance_transactions",
            Kind::Coupon => "coupons",
            Kind::Payout => "payouts",
            Kind::Dispute => "disputes",
            Kind::TaxRate => "tax_rates",
            Kind::PromotionCode => "promotion_codes",
        }
    }

    /// The `object` field value.
    pub(crate) fn object(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Product => "product",
            Kind::Price => "price",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
            Kind::PaymentIntent => "payment_intent",
            Kind::Charge => "charge",
            Kind::Refund => "refund",
            Kind::BalanceTransaction => "balance_transaction",
            Kind::Coupon => "coupon",
            Kind::Payout => "payout",
            Kind::Dispute => "dispute",
            Kind::TaxRate => "tax_rate",
            Kind::PromotionCode => "promotion_code",
        }
    }

    /// The event Stripe emits when an object of this kind is created.
    pub(crate) fn created_event(self) -> Option<&'static str> {
        match self {
            Kind::Customer => Some("customer.created"),
            Kind::Product => Some("product.created"),
            Kind::Price => Some("price.created"),
            Kind::Subscription => Some("customer.subscription.created"),
            Kind::Invoice => Some("invoice.created"),
            Kind::PaymentIntent => Some("payment_intent.created"),
            Kind::Charge => Some("charge.succeeded"),
            Kind::Refund => Some("charge.refunded"),
            // Not in the generated events feed (which predates these kinds):
            // their lists are read incrementally on `created`.
            Kind::BalanceTransaction
            | Kind::Coupon
            | Kind::Payout
            | Kind::Dispute
            | Kind::TaxRate
            | Kind::PromotionCode => None,
        }
    }

    /// One-character code of the kind inside event ids.
    pub(crate) fn code(self) -> char {
        match self {
            Kind::Customer => '0',
            Kind::Product => '1',
            Kind::Price => '2',
            Kind::Subscription => '3',
            Kind::Invoice => '4',
            Kind::PaymentIntent => '5',
            Kind::Charge => '6',
            Kind::Refund => '7',
            Kind::BalanceTransaction => '8',
            Kind::Coupon => '9',
            Kind::Payout => 'a',
            Kind::Dispute => 'b',
            Kind::TaxRate => 'c',
            Kind::PromotionCode => 'd',
        }
    }

    pub(crate) fn from_code(c: char) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == c)
    }

    pub(crate) fn from_path(path: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path() == path)
    }
}

/// The generated data for one (seed, size).
#[derive(Debug, Clone)]
pub(crate) struct Universe {
    pub(crate) seed: u64,
    pub(crate) size: u64,
    /// Where the generated history ends: the sandbox clock's start (unix seconds).
    pub(crate) epoch: i64,
    /// Four base62 characters derived from the seed, in every id.
    tag: String,
}

impl Universe {
    pub(crate) fn new(seed: u64, size: usize, epoch: i64) -> Self {
        let mut tag = String::with_capacity(4);
        push_base62(&mut tag, h(seed, 0x7A6, 0) % 14_776_336, 4);
        Self {
            seed,
            size: size as u64,
            epoch,
            tag,
        }
    }

    pub(crate) fn products(&self) -> u64 {
        (self.size / 50).max(5)
    }

    pub(crate) fn subscriptions(&self) -> u64 {
        self.size / 2
    }

    /// Number of generated objects of `kind`.
    pub(crate) fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Customer
            | Kind::Invoice
            | Kind::PaymentIntent
            | Kind::Charge
            | Kind::BalanceTransaction => self.size,
            Kind::Product => self.products(),
            Kind::Price => self.products() * 2,
            Kind::Subscription => self.subscriptions(),
            Kind::Refund => self.size / 20,
            Kind::Coupon => (self.size / 100).max(3),
            Kind::Payout => self.size / 25,
            Kind::Dispute => self.size / DISPUTED_EVERY,
            Kind::TaxRate => TAX_RATES,
            Kind::PromotionCode => self.count(Kind::Coupon) * 2,
        }
    }

    /// Creation time of generated object `i` (non-decreasing in `i`, all before the epoch).
    pub(crate) fn created(&self, kind: Kind, i: u64) -> i64 {
        if kind == Kind::Dispute {
            // A week after the disputed charge, or halfway to the epoch when
            // that is sooner: after the charge, before the epoch, non-decreasing.
            let charged = self.created(Kind::Charge, self.dispute_charge(i));
            return charged + (7 * 86_400).min((self.epoch - charged) / 2);
        }
        if kind == Kind::PromotionCode {
            // A day after its coupon, or halfway to the epoch when sooner.
            let coupon = self.created(Kind::Coupon, self.promotion_code_coupon(i));
            return coupon + 86_400.min((self.epoch - coupon) / 2);
        }
        let n = self.count(kind).max(1);
        let step = (u128::from(i) * HISTORY_SECS as u128 / u128::from(n)) as i64;
        self.epoch - HISTORY_SECS + step
    }

    /// The id of object `i` of `kind`.
    pub(crate) fn id(&self, kind: Kind, i: u64) -> String {
        let mut s = String::with_capacity(20);
        self.push_id(&mut s, kind, i);
        s
    }

    pub(crate) fn push_id(&self, out: &mut String, kind: Kind, i: u64) {
        out.push_str(kind.prefix());
        out.push('_');
        out.push_str(&self.tag);
        push_base62(out, i, INDEX_DIGITS);
    }

    /// The index encoded in an id of `kind` (not checked against the count).
    pub(crate) fn parse_id(&self, kind: Kind, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(kind.prefix())?.strip_prefix('_')?;
        let rest = rest.strip_prefix(self.tag.as_str())?;
        (rest.len() == INDEX_DIGITS)
            .then(|| parse_base62(rest))
            .flatten()
    }

    /// The id of a base event (`code` is a kind code or `m` for stored events).
    pub(crate) fn event_id(&self, code: char, i: u64) -> String {
        let mut s = String::with_capacity(20);
        s.push_str("evt_");
        s.push_str(&self.tag);
        s.push(code);
        push_base62(&mut s, i, INDEX_DIGITS);
        s
    }

    /// (code, index) of an event id.
    pub(crate) fn parse_event_id(&self, id: &str) -> Option<(char, u64)> {
        let rest = id.strip_prefix("evt_")?.strip_prefix(self.tag.as_str())?;
        let code = rest.chars().next()?;
        let digits = rest.get(1..)?;
        (digits.len() == INDEX_DIGITS)
            .then(|| parse_base62(digits).map(|i| (code, i)))
            .flatten()
    }

    /// Index of the customer an object created at `frac` of the history
    /// belongs to: uniform among customers that existed by then.
    fn customer_before(&self, salt: u64, i: u64, n: u64) -> u64 {
        let existing = (u128::from(i) * u128::from(self.size) / u128::from(n.max(1))) as u64 + 1;
        h(self.seed, salt, i) % existing.min(self.size.max(1))
    }

    /// When generated subscription `j` was canceled, if it was: one in
    /// [`CANCELED_EVERY`] of those created over 61 days before the epoch, a
    /// month or more after it started and 31 days or more before the epoch.
    pub(crate) fn subscription_canceled_at(&self, j: u64) -> Option<i64> {
        if j % CANCELED_EVERY != CANCELED_AT_INDEX || j >= self.subscriptions() {
            return None;
        }
        let earliest = self.created(Kind::Subscription, j) + CANCELED_AFTER_SECS;
        let span = self.epoch - CANCELED_BEFORE_SECS - earliest;
        (span > 0).then(|| earliest + span * (1 + (h(self.seed, 0xCA7, j) % 7) as i64) / 8)
    }

    /// The billing status of subscription `j` while it is not canceled:
    /// `past_due` for one in 25, else `active`.
    pub(crate) fn subscription_billing_status(&self, j: u64) -> &'static str {
        if h(self.seed, 0x57A, j).is_multiple_of(25) {
            "past_due"
        } else {
            "active"
        }
    }

    /// The id of the account the sandbox's key belongs to (`acct_` and the
    /// seed's tag): the same for every sandbox with this seed.
    pub(crate) fn account_id(&self) -> String {
        let mut s = String::with_capacity(20);
        s.push_str("acct_");
        s.push_str(&self.tag);
        push_base62(&mut s, 0, INDEX_DIGITS);
        s
    }

    /// Customer of subscription `j`.
    pub(crate) fn subscription_customer(&self, j: u64) -> u64 {
        self.customer_before(0xC5B, j, self.subscriptions())
    }

    /// Subscription billed by payment chain `i` (invoice, payment intent, charge
    /// and balance transaction `i` form one payment), if any.
    pub(crate) fn payment_subscription(&self, i: u64) -> Option<u64> {
        (i.is_multiple_of(2) && i / 2 < self.subscriptions()).then_some(i / 2)
    }

    /// Customer of payment chain `i`.
    pub(crate) fn payment_customer(&self, i: u64) -> u64 {
        match self.payment_subscription(i) {
            Some(j) => self.subscription_customer(j),
            None => self.customer_before(0xC4A, i, self.size),
        }
    }

    /// Price of subscription `j` (always a recurring price: odd indexes).
    pub(crate) fn subscription_price(&self, j: u64) -> u64 {
        (h(self.seed, 0x5B9, j) % self.products()) * 2 + 1
    }

    /// Amount (cents) of payment chain `i`.
    pub(crate) fn payment_amount(&self, i: u64) -> i64 {
        match self.payment_subscription(i) {
            Some(j) => self.price_amount(self.subscription_price(j)),
            None => 500 + (h(self.seed, 0xA40, i) % 20_000) as i64 * 5,
        }
    }

    /// Unit amount (cents) of price `p`.
    pub(crate) fn price_amount(&self, p: u64) -> i64 {
        const AMOUNTS: [i64; 6] = [900, 1_500, 2_900, 4_900, 9_900, 19_900];
        AMOUNTS[(h(self.seed, 0x9A1, p / 2) % AMOUNTS.len() as u64) as usize]
            * if p.is_multiple_of(2) { 10 } else { 1 }
    }

    /// The charge a refund `k` refunds (created no later than the refund).
    pub(crate) fn refund_charge(&self, k: u64) -> u64 {
        k * 20
    }

    /// The charge dispute `k` disputes (never a refunded one).
    pub(crate) fn dispute_charge(&self, k: u64) -> u64 {
        k * DISPUTED_EVERY + DISPUTED_AT_INDEX
    }

    /// The dispute of charge `i`, if it was disputed.
    pub(crate) fn charge_dispute(&self, i: u64) -> Option<u64> {
        let k = i / DISPUTED_EVERY;
        (i % DISPUTED_EVERY == DISPUTED_AT_INDEX && k < self.count(Kind::Dispute)).then_some(k)
    }

    /// The coupon promotion code `k` is a code for (two codes per coupon).
    pub(crate) fn promotion_code_coupon(&self, k: u64) -> u64 {
        k / 2
    }

    /// The refund of charge `i`, if it was refunded.
    pub(crate) fn charge_refund(&self, i: u64) -> Option<u64> {
        (i.is_multiple_of(20) && i / 20 < self.count(Kind::Refund)).then_some(i / 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TEST_EPOCH;

    #[test]
    fn ids_round_trip_and_sort_with_index() {
        let u = Universe::new(9, 1_000, TEST_EPOCH);
        let a = u.id(Kind::Customer, 41);
        let b = u.id(Kind::Customer, 42);
        assert!(a < b);
        assert_eq!(a.len(), "cus_".len() + 14);
        assert_eq!(u.parse_id(Kind::Customer, &b), Some(42));
        assert_eq!(u.parse_id(Kind::Charge, &b), None);
        let e = u.event_id('m', 5);
        assert_eq!(u.parse_event_id(&e), Some(('m', 5)));
    }

    #[test]
    fn created_is_monotonic_and_before_clock_start() {
        let u = Universe::new(1, 777, TEST_EPOCH);
        let mut last = i64::MIN;
        for i in 0..777 {
            let c = u.created(Kind::Customer, i);
            assert!(c >= last && c < u.epoch);
            last = c;
        }
        for i in 0..u.count(Kind::Refund) {
            let ch = u.refund_charge(i);
            assert!(u.created(Kind::Charge, ch) <= u.created(Kind::Refund, i));
            assert_eq!(u.charge_refund(ch), Some(i));
        }
        let mut last = i64::MIN;
        for k in 0..u.count(Kind::Dispute) {
            let ch = u.dispute_charge(k);
            let c = u.created(Kind::Dispute, k);
            assert!(u.created(Kind::Charge, ch) <= c && c < u.epoch && c >= last);
            last = c;
            assert_eq!(u.charge_dispute(ch), Some(k));
            assert_eq!(u.charge_refund(ch), None);
        }
        assert_eq!(u.count(Kind::Dispute), 15);
        for k in 0..u.count(Kind::PromotionCode) {
            let c = u.promotion_code_coupon(k);
            assert!(c < u.count(Kind::Coupon));
            assert!(u.created(Kind::Coupon, c) <= u.created(Kind::PromotionCode, k));
            assert!(u.created(Kind::PromotionCode, k) < u.epoch);
        }
        for kind in [
            Kind::Coupon,
            Kind::Payout,
            Kind::TaxRate,
            Kind::PromotionCode,
        ] {
            let mut last = i64::MIN;
            for i in 0..u.count(kind) {
                let c = u.created(kind, i);
                assert!(c >= last && c < u.epoch);
                last = c;
            }
        }
        for i in 0..777 {
            let c = u.payment_customer(i);
            assert!(u.created(Kind::Customer, c) <= u.created(Kind::Charge, i));
        }
    }

    #[test]
    fn old_subscriptions_are_canceled_one_in_eight_outside_the_event_window() {
        let u = Universe::new(3, 200, TEST_EPOCH);
        let canceled: Vec<u64> = (0..u.subscriptions())
            .filter(|&j| u.subscription_canceled_at(j).is_some())
            .collect();
        // 100 subscriptions, one every 7.3 days: those created over 61 days
        // before the epoch (j <= 91) with j % 8 == 5.
        let want: Vec<u64> = (0..=91).filter(|j| j % 8 == 5).collect();
        assert_eq!(canceled, want);
        assert_eq!(canceled.len(), 11);
        for j in canceled {
            let at = u.subscription_canceled_at(j).unwrap_or_default();
            let created = u.created(Kind::Subscription, j);
            assert!(at >= created + 30 * 86_400, "{j}");
            assert!(at <= u.epoch - 31 * 86_400, "{j}");
        }
        assert_eq!(u.account_id(), Universe::new(3, 5, TEST_EPOCH).account_id());
        assert_ne!(
            u.account_id(),
            Universe::new(4, 200, TEST_EPOCH).account_id()
        );
        assert!(u.account_id().starts_with("acct_"));
    }
}
