//! The shared "people" generator: the same deterministic population appears
//! in every simulated API, so cross-tool de-duplication is a real test.
//!
//! Person `i` (for a given seed) always has the same formal first name, last
//! name and canonical email `firstname.lastname{i}@example.com`. Vendors render
//! them differently on purpose: a nickname instead of the formal name
//! ("Barry" for "Bartholomew"), and emails with varied case or surrounding
//! whitespace ([`Person::email_variant`]).

use crate::hash::{h, pick};

/// Formal first names and the nickname other tools know the person by
/// (equal when there is no common nickname).
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Bartholomew", "Barry"),
    ("William", "Bill"),
    ("Robert", "Bob"),
    ("Elizabeth", "Liz"),
    ("Katherine", "Kate"),
    ("Jennifer", "Jen"),
    ("Michael", "Mike"),
    ("Christopher", "Chris"),
    ("Alexander", "Alex"),
    ("Margaret", "Peggy"),
    ("Theodore", "Ted"),
    ("Josephine", "Jo"),
    ("Nicholas", "Nick"),
    ("Victoria", "Vicky"),
    ("Benjamin", "Ben"),
    ("Samantha", "Sam"),
    ("Jonathan", "Jon"),
    ("Patricia", "Pat"),
    ("Anthony", "Tony"),
    ("Rebecca", "Becky"),
    ("Daniel", "Dan"),
    ("Abigail", "Abby"),
    ("Matthew", "Matt"),
    ("Deborah", "Debbie"),
    ("Amara", "Amara"),
    ("Hiroshi", "Hiroshi"),
    ("Priya", "Priya"),
    ("Mateo", "Mateo"),
    ("Ingrid", "Ingrid"),
    ("Olusegun", "Segun"),
    ("Chen", "Chen"),
    ("Fatima", "Fatima"),
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Nakamura",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Novak",
    "Larsen",
];

/// (city, state, country, postal code prefix).
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("San Francisco", "CA", "US", "941"),
    ("New York", "NY", "US", "100"),
    ("Austin", "TX", "US", "787"),
    ("Seattle", "WA", "US", "981"),
    ("Chicago", "IL", "US", "606"),
    ("Boston", "MA", "US", "021"),
    ("Denver", "CO", "US", "802"),
    ("Portland", "OR", "US", "972"),
    ("Toronto", "ON", "CA", "M5V"),
    ("London", "", "GB", "EC1"),
    ("Berlin", "", "DE", "101"),
    ("Paris", "", "FR", "750"),
];

const STREETS: &[&str] = &[
    "Market St",
    "Main St",
    "Oak Ave",
    "Pine St",
    "Maple Rd",
    "Cedar Ln",
    "Elm St",
    "Lake Dr",
    "Hill Rd",
    "Park Ave",
    "High St",
    "King St",
];

const COMPANIES: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka Foods",
    "Soylent",
    "Vandelay Industries",
    "Tyrell Systems",
    "Cyberdyne",
    "Massive Dynamic",
    "Aperture Labs",
    "Pied Piper",
    "Dunder Mifflin",
];

const SALT_FIRST: u64 = 0x5EED_0001;
const SALT_LAST: u64 = 0x5EED_0002;
const SALT_CITY: u64 = 0x5EED_0003;
const SALT_STREET: u64 = 0x5EED_0004;
const SALT_COMPANY: u64 = 0x5EED_0005;
const SALT_NUMBERS: u64 = 0x5EED_0006;

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Street line (`"123 Market St"`).
    pub line1: String,
    /// City name.
    pub city: &'static str,
    /// State or province code; empty where the country has none.
    pub state: &'static str,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: &'static str,
}

/// One member of the shared population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Position in the population (stable across APIs).
    pub index: u64,
    /// Formal first name ("Bartholomew").
    pub first_name: &'static str,
    /// The name other tools use ("Barry"); equals `first_name` when there is none.
    pub nickname: &'static str,
    /// Last name.
    pub last_name: &'static str,
    /// Canonical email, lowercase: `firstname.lastname{index}@example.com`.
    pub email: String,
    /// Phone number in E.164 form.
    pub phone: String,
    /// Home address.
    pub address: Address,
    /// Employer.
    pub company: &'static str,
}

impl Person {
    /// "First Last" with the formal first name.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// "Nick Last" with the nickname.
    pub fn informal_name(&self) -> String {
        format!("{} {}", self.nickname, self.last_name)
    }

    /// The canonical email as a given tool might store it: `variant` 0 is the
    /// canonical form; others vary case ("Barry.Smith3@Example.Com",
    /// upper case) or add surrounding whitespace.
    pub fn email_variant(&self, variant: u64) -> String {
        match variant % 4 {
            0 => self.email.clone(),
            1 => title_case_local(&self.email),
            2 => self.email.to_uppercase(),
            _ => format!(" {} ", self.email),
        }
    }
}

fn title_case_local(email: &str) -> String {
    let mut out = String::with_capacity(email.len());
    let mut upper_next = true;
    for c in email.chars() {
        if upper_next {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper_next = matches!(c, '.' | '@');
    }
    out
}

/// What person `index` is made of, without allocating: renderers that write
/// straight into a response buffer use it instead of [`person`]. Its texts
/// come from the tables above, which hold nothing JSON must escape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub(crate) index: u64,
    pub(crate) first_name: &'static str,
    pub(crate) nickname: &'static str,
    pub(crate) last_name: &'static str,
    pub(crate) city: &'static str,
    pub(crate) state: &'static str,
    pub(crate) country: &'static str,
    postal_prefix: &'static str,
    street: &'static str,
    pub(crate) company: &'static str,
    /// Drives the phone number, house number and postal code.
    n: u64,
}

impl Parts {
    /// Appends the canonical email (`firstname.lastname{index}@example.com`).
    pub(crate) fn push_email(&self, out: &mut String) {
        let at = out.len();
        out.push_str(self.first_name);
        out.push('.');
        out.push_str(self.last_name);
        out[at..].make_ascii_lowercase();
        crate::json::push_padded(out, self.index, 1);
        out.push_str("@example.com");
    }

    /// Appends the phone number.
    pub(crate) fn push_phone(&self, out: &mut String) {
        out.push_str("+1415555");
        crate::json::push_padded(out, self.n % 10_000, 4);
    }

    /// Appends the street line.
    pub(crate) fn push_line1(&self, out: &mut String) {
        crate::json::push_padded(out, 1 + (self.n >> 16) % 9_899, 1);
        out.push(' ');
        out.push_str(self.street);
    }

    /// Appends the postal code.
    pub(crate) fn push_postal_code(&self, out: &mut String) {
        out.push_str(self.postal_prefix);
        crate::json::push_padded(out, (self.n >> 32) % 100, 2);
    }
}

/// The parts of person `index` of the population generated from `seed`.
pub(crate) fn parts(seed: u64, index: u64) -> Parts {
    let (first_name, nickname) = pick(FIRST_NAMES, seed, SALT_FIRST, index);
    let (city, state, country, postal_prefix) = pick(CITIES, seed, SALT_CITY, index);
    Parts {
        index,
        first_name,
        nickname,
        last_name: pick(LAST_NAMES, seed, SALT_LAST, index),
        city,
        state,
        country,
        postal_prefix,
        street: pick(STREETS, seed, SALT_STREET, index),
        company: pick(COMPANIES, seed, SALT_COMPANY, index),
        n: h(seed, SALT_NUMBERS, index),
    }
}

/// Person `index` of the population generated from `seed`.
pub fn person(seed: u64, index: u64) -> Person {
    let p = parts(seed, index);
    let text = |push: fn(&Parts, &mut String)| {
        let mut s = String::with_capacity(32);
        push(&p, &mut s);
        s
    };
    Person {
        index,
        first_name: p.first_name,
        nickname: p.nickname,
        last_name: p.last_name,
        email: text(Parts::push_email),
        phone: text(Parts::push_phone),
        address: Address {
            line1: text(Parts::push_line1),
            city: p.city,
            state: p.state,
            postal_code: text(Parts::push_postal_code),
            country: p.country,
        },
        company: p.company,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_person_and_canonical_email() {
        let a = person(7, 3);
        assert_eq!(a, person(7, 3));
        assert_eq!(
            a.email,
            format!(
                "{}.{}3@example.com",
                a.first_name.to_lowercase(),
                a.last_name.to_lowercase()
            )
        );
        assert_eq!(a.email_variant(0), a.email);
        assert_eq!(a.email_variant(2), a.email.to_uppercase());
        assert_eq!(a.email_variant(3).trim(), a.email);
        assert_eq!(a.email_variant(1).to_lowercase(), a.email);
        assert_eq!(
            title_case_local("bart.smith1@example.com"),
            "Bart.Smith1@Example.Com"
        );
    }

    #[test]
    fn parts_write_what_the_formatted_person_holds() {
        for i in [0, 1, 9, 10, 99, 12_345, 9_999_999] {
            let p = parts(3, i);
            let person = person(3, i);
            let n = p.n;
            assert_eq!(
                person.email,
                format!(
                    "{}.{}{}@example.com",
                    p.first_name.to_ascii_lowercase(),
                    p.last_name.to_ascii_lowercase(),
                    i
                )
            );
            assert_eq!(person.phone, format!("+1415555{:04}", n % 10_000));
            assert_eq!(
                person.address.line1,
                format!("{} {}", 1 + (n >> 16) % 9_899, p.street)
            );
            assert_eq!(
                person.address.postal_code,
                format!("{}{:02}", p.postal_prefix, (n >> 32) % 100)
            );
        }
    }

    #[test]
    fn table_texts_need_no_json_escaping() {
        let plain = |s: &str| s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
        assert!(FIRST_NAMES.iter().all(|(a, b)| plain(a) && plain(b)));
        assert!(LAST_NAMES.iter().all(|s| plain(s)));
        assert!(
            CITIES
                .iter()
                .all(|(a, b, c, d)| plain(a) && plain(b) && plain(c) && plain(d))
        );
        assert!(STREETS.iter().all(|s| plain(s)));
        assert!(COMPANIES.iter().all(|s| plain(s)));
    }

    #[test]
    fn nicknames_differ_from_formal_names() {
        let with_nick = (0..200)
            .map(|i| person(1, i))
            .filter(|p| p.nickname != p.first_name)
            .count();
        assert!(
            with_nick > 100,
            "most people have a nickname, got {with_nick}"
        );
    }
}
