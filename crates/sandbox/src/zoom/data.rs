//! Zoom's generated account: hosts (users), their webinars and meetings, and
//! each webinar's registrants and participants, all pure functions of
//! (seed, size, index).
//!
//! Registrants are drawn from the shared [`crate::people`] population so the
//! same people appear in the CRM simulators: webinar 0 ("all hands") is
//! attended by people `size/10 .. size/10 + size`, the others by contiguous
//! slices of the population `0 .. size + size/5`. Registrants carry the
//! person's nickname and an email case/whitespace variant.

use crate::hash::{h, pick, push_base62};
use crate::json::Obj;
use crate::people::{Person, person};

/// Webinars each host runs (two past, one upcoming).
pub(crate) const WEBINARS_PER_USER: u64 = 3;
/// Meetings each host schedules.
pub(crate) const MEETINGS_PER_USER: u64 = 4;
/// Webinar `w` has id `WEBINAR_ID_BASE + w` (Zoom ids are 11-digit integers).
const WEBINAR_ID_BASE: i64 = 81_200_000_000;
/// Meeting `m` has id `MEETING_ID_BASE + m`.
const MEETING_ID_BASE: i64 = 85_300_000_000;
/// Hosts are people from this index on (disjoint from registrants).
const HOST_PERSON_BASE: u64 = 5_000_000;
const DAY: i64 = 86_400;

const SALT_USER_ID: u64 = 0x200A_0001;
const SALT_UUID: u64 = 0x200A_0002;
const SALT_REG_COUNT: u64 = 0x200A_0003;
const SALT_REG_START: u64 = 0x200A_0004;
const SALT_REG_ID: u64 = 0x200A_0005;
const SALT_STATUS: u64 = 0x200A_0006;
const SALT_VARIANT: u64 = 0x200A_0007;
const SALT_ATTEND: u64 = 0x200A_0008;
const SALT_TOPIC: u64 = 0x200A_0009;
const SALT_JOB: u64 = 0x200A_000A;

const WEBINAR_TOPICS: &[&str] = &[
    "Quarterly Product Update",
    "Data Pipelines 101",
    "Customer Success Live",
    "Scaling Your Warehouse",
    "Security Best Practices",
    "Roadmap Preview",
    "Office Hours",
    "Partner Summit",
];

const MEETING_TOPICS: &[&str] = &[
    "Weekly sync",
    "1:1",
    "Sprint planning",
    "Customer call",
    "Design review",
    "Standup",
];

const JOB_TITLES: &[&str] = &[
    "Data Engineer",
    "Analyst",
    "VP Marketing",
    "CTO",
    "Product Manager",
    "Sales Director",
    "Consultant",
];

const INDUSTRIES: &[&str] = &["Software", "Healthcare", "Finance", "Retail", "Education"];

/// `secs` as Zoom writes times: `2026-11-01T15:00:00Z`.
pub(crate) fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A registrant's approval status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Approved,
    Pending,
    Denied,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Pending => "pending",
            Status::Denied => "denied",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Status::Approved),
            "pending" => Some(Status::Pending),
            "denied" => Some(Status::Denied),
            _ => None,
        }
    }
}

/// The generated Zoom account.
pub(crate) struct Universe {
    /// Where the generated history ends: the sandbox clock's start (unix seconds).
    pub(crate) epoch: i64,
    pub(crate) seed: u64,
    size: u64,
    users: u64,
}

impl Universe {
    pub(crate) fn new(seed: u64, size: usize, epoch: i64) -> Self {
        let size = size as u64;
        Self {
            seed,
            epoch,
            size,
            users: (size / 100).max(3),
        }
    }

    pub(crate) fn users(&self) -> u64 {
        self.users
    }

    pub(crate) fn webinars(&self) -> u64 {
        self.users * WEBINARS_PER_USER
    }

    /// Size of the population registrants are drawn from (a share of it is
    /// beyond `size`, so not every registrant is in the CRM).
    fn population(&self) -> u64 {
        (self.size + self.size / 5).max(1)
    }

    pub(crate) fn host(&self, u: u64) -> Person {
        person(self.seed, HOST_PERSON_BASE + u)
    }

    pub(crate) fn user_id(&self, u: u64) -> String {
        let mut s = String::with_capacity(22);
        push_base62(&mut s, h(self.seed, SALT_USER_ID, u), 11);
        push_base62(&mut s, u, 4);
        push_base62(&mut s, h(self.seed, SALT_USER_ID, u ^ 0xFFFF), 7);
        s
    }

    /// Finds a host by id, email (any case) or `me` (the first host).
    pub(crate) fn find_user(&self, key: &str) -> Option<u64> {
        if key == "me" {
            return Some(0);
        }
        (0..self.users).find(|&u| {
            self.user_id(u) == key || self.host(u).email.eq_ignore_ascii_case(key.trim())
        })
    }

    pub(crate) fn user_created(&self, u: u64) -> i64 {
        self.epoch - 400 * DAY + (u as i64 % 200) * DAY
    }

    fn uuid(&self, salt: u64, i: u64) -> String {
        let mut s = String::with_capacity(24);
        push_base62(&mut s, h(self.seed, salt, i), 11);
        push_base62(&mut s, h(self.seed, salt ^ 1, i), 11);
        s.push_str("==");
        s
    }

    pub(crate) fn render_user(&self, u: u64, out: &mut String) {
        let p = self.host(u);
        let created = iso(self.user_created(u));
        let mut o = Obj::new(out);
        o.str("id", &self.user_id(u))
            .str("first_name", p.first_name)
            .str("last_name", p.last_name)
            .str("display_name", &p.full_name())
            .str("email", &p.email)
            .int("type", if u % 5 == 4 { 1 } else { 2 })
            .int(
                "pmi",
                3_000_000_000 + (h(self.seed, SALT_UUID, u) % 999_999_999) as i64,
            )
            .str("timezone", "America/Los_Angeles")
            .int("verified", 1)
            .str("dept", pick(INDUSTRIES, self.seed, SALT_JOB, u))
            .str("created_at", &created)
            .str("user_created_at", &created)
            .str(
                "last_login_time",
                &iso(self.epoch - (u as i64 % 9 + 1) * DAY),
            )
            .str("last_client_version", "6.2.5.41727(mac)")
            .str("status", "active")
            .str("role_id", if u == 0 { "0" } else { "2" })
            .raw("group_ids", "[]")
            .raw("im_group_ids", "[]");
        o.end();
    }

    pub(crate) fn webinar_id(&self, w: u64) -> i64 {
        WEBINAR_ID_BASE + w as i64
    }

    /// The webinar index of a Zoom webinar id.
    pub(crate) fn parse_webinar_id(&self, id: &str) -> Option<u64> {
        let n: i64 = id.trim().parse().ok()?;
        let w = u64::try_from(n.checked_sub(WEBINAR_ID_BASE)?).ok()?;
        (w < self.webinars()).then_some(w)
    }

    /// Start of webinar `w`: the first two per host are past, the third upcoming.
    pub(crate) fn webinar_start(&self, w: u64) -> i64 {
        let slot = (w / WEBINARS_PER_USER) as i64 % 60;
        let at_15h = 15 * 3_600;
        match w % WEBINARS_PER_USER {
            0 => self.epoch - (slot + 2) * DAY + at_15h,
            1 => self.epoch - (slot + 70) * DAY + at_15h,
            _ => self.epoch + (slot + 3) * DAY + at_15h,
        }
    }

    pub(crate) fn webinar_is_past(&self, w: u64) -> bool {
        self.webinar_start(w) < self.epoch
    }

    fn webinar_created(&self, w: u64) -> i64 {
        self.webinar_start(w) - 45 * DAY
    }

    pub(crate) fn webinar_duration_min(&self, w: u64) -> i64 {
        [45, 60, 90][(w % 3) as usize]
    }

    pub(crate) fn webinar_topic(&self, w: u64) -> &'static str {
        if w == 0 {
            "All Hands: Weft Customer Conference"
        } else {
            pick(WEBINAR_TOPICS, self.seed, SALT_TOPIC, w)
        }
    }

    pub(crate) fn webinar_join_url(&self, w: u64) -> String {
        format!("https://weft-sandbox.zoom.us/j/{}", self.webinar_id(w))
    }

    pub(crate) fn render_webinar(&self, w: u64, out: &mut String) {
        let host = w / WEBINARS_PER_USER;
        let mut o = Obj::new(out);
        o.str("uuid", &self.uuid(SALT_UUID, w))
            .int("id", self.webinar_id(w))
            .str("host_id", &self.user_id(host))
            .str("topic", self.webinar_topic(w))
            .int("type", 5)
            .str("start_time", &iso(self.webinar_start(w)))
            .int("duration", self.webinar_duration_min(w))
            .str("timezone", "America/Los_Angeles")
            .str("agenda", "")
            .str("created_at", &iso(self.webinar_created(w)))
            .str("join_url", &self.webinar_join_url(w))
            .bool("is_simulive", false);
        o.end();
    }

    pub(crate) fn render_meeting(&self, m: u64, out: &mut String) {
        let host = m / MEETINGS_PER_USER;
        let start = self.epoch + ((m % 14) as i64 - 7) * DAY + (9 + (m % 8) as i64) * 3_600;
        let mut o = Obj::new(out);
        o.str("uuid", &self.uuid(SALT_UUID ^ 0xA, m))
            .int("id", MEETING_ID_BASE + m as i64)
            .str("host_id", &self.user_id(host))
            .str("topic", pick(MEETING_TOPICS, self.seed, SALT_TOPIC ^ 1, m))
            .int("type", 2)
            .str("start_time", &iso(start))
            .int("duration", 30)
            .str("timezone", "America/Los_Angeles")
            .str("agenda", "")
            .str("created_at", &iso(start - 10 * DAY))
            .str(
                "join_url",
                &format!(
                    "https://weft-sandbox.zoom.us/j/{}",
                    MEETING_ID_BASE + m as i64
                ),
            );
        o.end();
    }

    /// Number of generated registrants of webinar `w`.
    pub(crate) fn registrant_count(&self, w: u64) -> u64 {
        if w == 0 {
            self.size
        } else {
            (5 + h(self.seed, SALT_REG_COUNT, w) % (self.size / 20 + 1)).min(self.population())
        }
    }

    /// Population index of generated registrant `k` of webinar `w`.
    pub(crate) fn registrant_person(&self, w: u64, k: u64) -> u64 {
        let start = if w == 0 {
            self.size / 10
        } else {
            h(self.seed, SALT_REG_START, w)
        };
        (start + k) % self.population()
    }

    fn key(w: u64, k: u64) -> u64 {
        (w << 32) | k
    }

    /// Registrant ids encode (webinar, position) followed by a hash.
    pub(crate) fn registrant_id(&self, w: u64, k: u64) -> String {
        let mut s = String::with_capacity(22);
        push_base62(&mut s, w, 5);
        push_base62(&mut s, k, 6);
        push_base62(&mut s, h(self.seed, SALT_REG_ID, Self::key(w, k)), 11);
        s
    }

    /// (webinar, position) of a registrant id this universe issued.
    pub(crate) fn parse_registrant_id(&self, id: &str) -> Option<(u64, u64)> {
        if id.len() != 22 || !id.is_ascii() {
            return None;
        }
        let w = crate::hash::parse_base62(&id[..5])?;
        let k = crate::hash::parse_base62(&id[5..11])?;
        (w < self.webinars() && self.registrant_id(w, k) == id).then_some((w, k))
    }

    pub(crate) fn registrant_status(&self, w: u64, k: u64) -> Status {
        match h(self.seed, SALT_STATUS, Self::key(w, k)) % 20 {
            0 => Status::Pending,
            1 => Status::Denied,
            _ => Status::Approved,
        }
    }

    /// The email as this registrant typed it (case/whitespace variant).
    pub(crate) fn registrant_email(&self, w: u64, k: u64) -> String {
        person(self.seed, self.registrant_person(w, k)).email_variant(h(
            self.seed,
            SALT_VARIANT,
            Self::key(w, k),
        ))
    }

    /// When registrant `k` signed up: spread over the registration window.
    pub(crate) fn registrant_created(&self, w: u64, k: u64) -> i64 {
        let open = self.webinar_created(w);
        let close = self.webinar_start(w).min(self.epoch);
        let n = self.registrant_count(w).max(1) as i64;
        open + (close - open) * k as i64 / n
    }

    /// The generated fields of registrant `k` of webinar `w`.
    pub(crate) fn registrant(&self, w: u64, k: u64) -> Registrant {
        let p = person(self.seed, self.registrant_person(w, k));
        Registrant {
            email: self.registrant_email(w, k),
            first_name: p.nickname.to_owned(),
            last_name: p.last_name.to_owned(),
            address: p.address.line1.clone(),
            city: p.address.city.to_owned(),
            state: p.address.state.to_owned(),
            zip: p.address.postal_code.clone(),
            country: p.address.country.to_owned(),
            phone: p.phone.clone(),
            org: p.company.to_owned(),
            job_title: pick(JOB_TITLES, self.seed, SALT_JOB, p.index).to_owned(),
            industry: pick(INDUSTRIES, self.seed, SALT_JOB ^ 1, p.index).to_owned(),
            comments: String::new(),
            status: self.registrant_status(w, k),
            create_time: self.registrant_created(w, k),
        }
    }

    /// Whether generated registrant `k` attended past webinar `w`.
    pub(crate) fn attended(&self, w: u64, k: u64) -> bool {
        self.webinar_is_past(w)
            && self.registrant_status(w, k) == Status::Approved
            && !h(self.seed, SALT_ATTEND, Self::key(w, k)).is_multiple_of(3)
    }

    pub(crate) fn render_participant(&self, w: u64, k: u64, r: &Registrant, out: &mut String) {
        let start = self.webinar_start(w);
        let key = Self::key(w, k);
        let late = (h(self.seed, SALT_ATTEND ^ 1, key) % 600) as i64;
        let duration = self.webinar_duration_min(w) * 60 - late;
        let mut id = String::with_capacity(22);
        push_base62(&mut id, h(self.seed, SALT_ATTEND ^ 2, key), 11);
        push_base62(&mut id, h(self.seed, SALT_ATTEND ^ 3, key), 11);
        let mut o = Obj::new(out);
        o.str("id", &id)
            .str("name", &format!("{} {}", r.first_name, r.last_name))
            .str("user_id", &(16_778_240 + k).to_string())
            .str("registrant_id", &self.registrant_id(w, k))
            .str("user_email", &r.email)
            .str("join_time", &iso(start + late))
            .str("leave_time", &iso(start + late + duration))
            .int("duration", duration)
            .bool("failover", false)
            .str("status", "in_meeting")
            .bool("internal_user", false);
        o.end();
    }
}

/// A registrant's fields (generated, or given to the add endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registrant {
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) address: String,
    pub(crate) city: String,
    pub(crate) state: String,
    pub(crate) zip: String,
    pub(crate) country: String,
    pub(crate) phone: String,
    pub(crate) org: String,
    pub(crate) job_title: String,
    pub(crate) industry: String,
    pub(crate) comments: String,
    pub(crate) status: Status,
    pub(crate) create_time: i64,
}

impl Registrant {
    /// Renders the registrant in the list-registrants shape.
    pub(crate) fn render(&self, id: &str, join_url: &str, out: &mut String) {
        let mut o = Obj::new(out);
        o.str("id", id)
            .str("email", &self.email)
            .str("first_name", &self.first_name)
            .str("last_name", &self.last_name)
            .str("address", &self.address)
            .str("city", &self.city)
            .str("country", &self.country)
            .str("zip", &self.zip)
            .str("state", &self.state)
            .str("phone", &self.phone)
            .str("industry", &self.industry)
            .str("org", &self.org)
            .str("job_title", &self.job_title)
            .str("purchasing_time_frame", "")
            .str("role_in_purchase_process", "")
            .str("no_of_employees", "")
            .str("comments", &self.comments)
            .raw("custom_questions", "[]")
            .str("status", self.status.as_str())
            .str("create_time", &iso(self.create_time))
            .str("join_url", join_url);
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TEST_EPOCH;

    #[test]
    fn ids_round_trip_and_registrants_come_from_people() {
        let u = Universe::new(7, 1_000, TEST_EPOCH);
        assert_eq!(u.users(), 10);
        assert_eq!(u.registrant_count(0), 1_000);
        let id = u.registrant_id(4, 17);
        assert_eq!(id.len(), 22);
        assert_eq!(u.parse_registrant_id(&id), Some((4, 17)));
        assert_eq!(u.parse_registrant_id("x"), None);
        assert_eq!(u.parse_webinar_id(&u.webinar_id(5).to_string()), Some(5));
        assert_eq!(u.parse_webinar_id("1"), None);
        assert_eq!(u.find_user(&u.user_id(3)), Some(3));
        let r = u.registrant(0, 0);
        let p = person(7, 100);
        assert_eq!(r.first_name, p.nickname);
        assert_eq!(r.email.trim().to_lowercase(), p.email);
        assert!(u.webinar_is_past(0) && !u.webinar_is_past(2));
    }
}
