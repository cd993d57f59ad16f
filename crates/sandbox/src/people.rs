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

/// Person `index` of the population generated from `seed`.
pub fn person(seed: u64, index: u64) -> Person {
    let (first_name, nickname) = pick(FIRST_NAMES, seed, SALT_FIRST, index);
    let last_name = pick(LAST_NAMES, seed, SALT_LAST, index);
    let (city, state, country, postal) = pick(CITIES, seed, SALT_CITY, index);
    let street = pick(STREETS, seed, SALT_STREET, index);
    let company = pick(COMPANIES, seed, SALT_COMPANY, index);
    let n = h(seed, SALT_NUMBERS, index);
    let email = format!(
        "{}.{}{}@example.com",
        first_name.to_ascii_lowercase(),
        last_name.to_ascii_lowercase(),
        index
    );
    Person {
        index,
        first_name,
        nickname,
        last_name,
        email,
        phone: format!("+1415555{:04}", n % 10_000),
        address: Address {
            line1: format!("{} {}", 1 + (n >> 16) % 9_899, street),
            city,
            state,
            postal_code: format!("{}{:02}", postal, (n >> 32) % 100),
            country,
        },
        company,
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
