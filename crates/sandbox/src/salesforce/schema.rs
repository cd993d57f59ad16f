//! The simulated org's metadata: the seven sObjects, their key prefixes and
//! their fields, as `describe` reports them and as SOQL resolves them.

use crate::json::Obj;

/// A simulated sObject type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SObject {
    Account,
    Contact,
    Lead,
    Opportunity,
    Campaign,
    CampaignMember,
    User,
}

/// A field's Salesforce data type (`describe`'s `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    String,
    Email,
    Phone,
    Boolean,
    Int,
    Double,
    Currency,
    Date,
    DateTime,
    Reference,
    Picklist,
    TextArea,
    Url,
}

impl FieldType {
    /// The `type` name in `describe`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Reference => "reference",
            FieldType::Picklist => "picklist",
            FieldType::TextArea => "textarea",
            FieldType::Url => "url",
        }
    }

    /// The `soapType` in `describe`.
    fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Int => "xsd:int",
            FieldType::Double | FieldType::Currency => "xsd:double",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }
}

/// One field of an sObject.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) ty: FieldType,
    /// Set by the system (Id, audit fields, formula-like fields): not writable.
    pub(crate) system: bool,
    /// May be null.
    pub(crate) nillable: bool,
    pub(crate) external_id: bool,
    /// The sObject a reference points to.
    pub(crate) refers_to: Option<&'static str>,
    /// Picklist values.
    pub(crate) values: &'static [&'static str],
}

const fn f(name: &'static str, label: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        label,
        ty,
        system: false,
        nillable: true,
        external_id: false,
        refers_to: None,
        values: &[],
    }
}

const fn sys(name: &'static str, label: &'static str, ty: FieldType) -> Field {
    Field {
        system: true,
        nillable: false,
        ..f(name, label, ty)
    }
}

const fn required(name: &'static str, label: &'static str, ty: FieldType) -> Field {
    Field {
        nillable: false,
        ..f(name, label, ty)
    }
}

const fn reference(name: &'static str, label: &'static str, to: &'static str) -> Field {
    Field {
        refers_to: Some(to),
        ..f(name, label, FieldType::Reference)
    }
}

const fn picklist(
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
) -> Field {
    Field {
        values,
        ..f(name, label, FieldType::Picklist)
    }
}

const EXTERNAL_ID: Field = Field {
    external_id: true,
    ..f("External_Id__c", "External Id", FieldType::String)
};

/// Fields every object starts with (`Id`, `IsDeleted`).
macro_rules! head {
    () => {
        [
            sys("Id", "Record ID", FieldType::Id),
            sys("IsDeleted", "Deleted", FieldType::Boolean),
        ]
    };
}

/// Audit fields every object ends with.
macro_rules! audit {
    () => {
        [
            sys("CreatedDate", "Created Date", FieldType::DateTime),
            Field {
                refers_to: Some("User"),
                ..sys("CreatedById", "Created By ID", FieldType::Reference)
            },
            sys(
                "LastModifiedDate",
                "Last Modified Date",
                FieldType::DateTime,
            ),
            Field {
                refers_to: Some("User"),
                ..sys(
                    "LastModifiedById",
                    "Last Modified By ID",
                    FieldType::Reference,
                )
            },
            sys("SystemModstamp", "System Modstamp", FieldType::DateTime),
        ]
    };
}

const OWNER: Field = Field {
    nillable: false,
    ..reference("OwnerId", "Owner ID", "User")
};

const LEAD_SOURCES: &[&str] = &["Web", "Webinar", "Partner Referral", "Trade Show", "Other"];
const INDUSTRIES: &[&str] = &[
    "Technology",
    "Healthcare",
    "Finance",
    "Retail",
    "Manufacturing",
    "Education",
];

const ACCOUNT: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        required("Name", "Account Name", FieldType::String),
        picklist(
            "Type",
            "Account Type",
            &["Prospect", "Customer - Direct", "Partner"],
        ),
        picklist("Industry", "Industry", INDUSTRIES),
        f("BillingStreet", "Billing Street", FieldType::TextArea),
        f("BillingCity", "Billing City", FieldType::String),
        f("BillingState", "Billing State/Province", FieldType::String),
        f(
            "BillingPostalCode",
            "Billing Zip/Postal Code",
            FieldType::String,
        ),
        f("BillingCountry", "Billing Country", FieldType::String),
        f("Phone", "Account Phone", FieldType::Phone),
        f("Website", "Website", FieldType::Url),
        f("NumberOfEmployees", "Employees", FieldType::Int),
        f("AnnualRevenue", "Annual Revenue", FieldType::Currency),
        f("Description", "Account Description", FieldType::TextArea),
        OWNER,
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const CONTACT: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        reference("AccountId", "Account ID", "Account"),
        f("FirstName", "First Name", FieldType::String),
        required("LastName", "Last Name", FieldType::String),
        sys("Name", "Full Name", FieldType::String),
        f("Title", "Title", FieldType::String),
        f("Email", "Email", FieldType::Email),
        f("Phone", "Business Phone", FieldType::Phone),
        f("MailingStreet", "Mailing Street", FieldType::TextArea),
        f("MailingCity", "Mailing City", FieldType::String),
        f("MailingState", "Mailing State/Province", FieldType::String),
        f(
            "MailingPostalCode",
            "Mailing Zip/Postal Code",
            FieldType::String,
        ),
        f("MailingCountry", "Mailing Country", FieldType::String),
        picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        f("HasOptedOutOfEmail", "Email Opt Out", FieldType::Boolean),
        f("Birthdate", "Birthdate", FieldType::Date),
        OWNER,
        f("Webinar_Source__c", "Webinar Source", FieldType::String),
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const LEAD: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        f("FirstName", "First Name", FieldType::String),
        required("LastName", "Last Name", FieldType::String),
        sys("Name", "Full Name", FieldType::String),
        required("Company", "Company", FieldType::String),
        f("Title", "Title", FieldType::String),
        f("Email", "Email", FieldType::Email),
        f("Phone", "Phone", FieldType::Phone),
        picklist(
            "Status",
            "Status",
            &[
                "Open - Not Contacted",
                "Working - Contacted",
                "Closed - Not Converted",
            ],
        ),
        picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        picklist("Industry", "Industry", INDUSTRIES),
        f("City", "City", FieldType::String),
        f("State", "State/Province", FieldType::String),
        f("Country", "Country", FieldType::String),
        f("IsConverted", "Converted", FieldType::Boolean),
        OWNER,
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const OPPORTUNITY: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        reference("AccountId", "Account ID", "Account"),
        required("Name", "Name", FieldType::String),
        Field {
            nillable: false,
            ..picklist(
                "StageName",
                "Stage",
                &[
                    "Prospecting",
                    "Qualification",
                    "Negotiation/Review",
                    "Closed Won",
                    "Closed Lost",
                ],
            )
        },
        f("Amount", "Amount", FieldType::Currency),
        f("Probability", "Probability (%)", FieldType::Double),
        required("CloseDate", "Close Date", FieldType::Date),
        picklist(
            "Type",
            "Opportunity Type",
            &["New Business", "Existing Business"],
        ),
        picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        sys("IsClosed", "Closed", FieldType::Boolean),
        sys("IsWon", "Won", FieldType::Boolean),
        OWNER,
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const CAMPAIGN: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        required("Name", "Name", FieldType::String),
        picklist(
            "Type",
            "Type",
            &["Webinar", "Email", "Conference", "Advertisement"],
        ),
        picklist("Status", "Status", &["Planned", "In Progress", "Completed"]),
        f("StartDate", "Start Date", FieldType::Date),
        f("EndDate", "End Date", FieldType::Date),
        f("IsActive", "Active", FieldType::Boolean),
        f(
            "BudgetedCost",
            "Budgeted Cost in Campaign",
            FieldType::Currency,
        ),
        f("Description", "Description", FieldType::TextArea),
        OWNER,
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const CAMPAIGN_MEMBER: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        Field {
            nillable: false,
            ..reference("CampaignId", "Campaign ID", "Campaign")
        },
        reference("ContactId", "Contact ID", "Contact"),
        reference("LeadId", "Lead ID", "Lead"),
        picklist(
            "Status",
            "Status",
            &["Sent", "Registered", "Attended", "Responded"],
        ),
        f("HasResponded", "Responded", FieldType::Boolean),
        f(
            "FirstRespondedDate",
            "First Responded Date",
            FieldType::Date,
        ),
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

const USER: &[Field] = &{
    let h = head!();
    let a = audit!();
    [
        h[0],
        h[1],
        required("Username", "Username", FieldType::String),
        f("FirstName", "First Name", FieldType::String),
        required("LastName", "Last Name", FieldType::String),
        sys("Name", "Full Name", FieldType::String),
        Field {
            nillable: false,
            ..f("Email", "Email", FieldType::Email)
        },
        required("Alias", "Alias", FieldType::String),
        f("Title", "Title", FieldType::String),
        f("IsActive", "Active", FieldType::Boolean),
        picklist(
            "TimeZoneSidKey",
            "Time Zone",
            &["America/Los_Angeles", "America/New_York", "Europe/London"],
        ),
        EXTERNAL_ID,
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
    ]
};

impl SObject {
    pub(crate) const ALL: [SObject; 7] = [
        SObject::Account,
        SObject::Contact,
        SObject::Lead,
        SObject::Opportunity,
        SObject::Campaign,
        SObject::CampaignMember,
        SObject::User,
    ];

    /// API name (`Contact`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            SObject::Account => "Account",
            SObject::Contact => "Contact",
            SObject::Lead => "Lead",
            SObject::Opportunity => "Opportunity",
            SObject::Campaign => "Campaign",
            SObject::CampaignMember => "CampaignMember",
            SObject::User => "User",
        }
    }

    /// Plural label (`Contacts`).
    pub(crate) fn label_plural(self) -> &'static str {
        match self {
            SObject::Account => "Accounts",
            SObject::Contact => "Contacts",
            SObject::Lead => "Leads",
            SObject::Opportunity => "Opportunities",
            SObject::Campaign => "Campaigns",
            SObject::CampaignMember => "Campaign Members",
            SObject::User => "Users",
        }
    }

    /// The three-character key prefix of its record ids.
    pub(crate) fn key_prefix(self) -> &'static str {
        match self {
            SObject::Account => "001",
            SObject::Contact => "003",
            SObject::Lead => "00Q",
            SObject::Opportunity => "006",
            SObject::Campaign => "701",
            SObject::CampaignMember => "00v",
            SObject::User => "005",
        }
    }

    /// Finds an object by API name (case-insensitive, like SOQL).
    pub(crate) fn parse(name: &str) -> Option<SObject> {
        SObject::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(name))
    }

    /// Fields in `describe` order.
    pub(crate) fn fields(self) -> &'static [Field] {
        match self {
            SObject::Account => ACCOUNT,
            SObject::Contact => CONTACT,
            SObject::Lead => LEAD,
            SObject::Opportunity => OPPORTUNITY,
            SObject::Campaign => CAMPAIGN,
            SObject::CampaignMember => CAMPAIGN_MEMBER,
            SObject::User => USER,
        }
    }

    /// Position of a field in [`SObject::fields`] (case-insensitive).
    pub(crate) fn field_index(self, name: &str) -> Option<usize> {
        self.fields()
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Whether users may create records of this type through the API.
    pub(crate) fn createable(self) -> bool {
        self != SObject::User
    }
}

/// Renders `GET /sobjects/{obj}/describe`.
pub(crate) fn describe(obj: SObject, version: &str, out: &mut String) {
    let mut o = Obj::new(out);
    object_summary(&mut o, obj, version);
    let buf = o.value("fields");
    buf.push('[');
    for (n, field) in obj.fields().iter().enumerate() {
        if n > 0 {
            buf.push(',');
        }
        describe_field(field, buf);
    }
    buf.push(']');
    o.raw("childRelationships", "[]")
        .raw("recordTypeInfos", "[]")
        .raw(
            "supportedScopes",
            r#"[{"label":"All records","name":"everything"}]"#,
        );
    o.end();
}

fn describe_field(field: &Field, out: &mut String) {
    let updateable = !field.system;
    let length = match field.ty {
        FieldType::Id | FieldType::Reference => 18,
        FieldType::String | FieldType::Email | FieldType::Url | FieldType::Picklist => 255,
        FieldType::Phone => 40,
        FieldType::TextArea => 32_000,
        _ => 0,
    };
    let mut o = Obj::new(out);
    o.str("name", field.name)
        .str("label", field.label)
        .str("type", field.ty.name())
        .str("soapType", field.ty.soap_type())
        .int("length", length)
        .bool("nillable", field.nillable)
        .bool("createable", updateable)
        .bool("updateable", updateable)
        .bool("custom", field.name.ends_with("__c"))
        .bool("externalId", field.external_id)
        .bool("idLookup", field.external_id || field.ty == FieldType::Id)
        .bool("unique", field.external_id)
        .bool("filterable", true)
        .bool("sortable", field.ty != FieldType::TextArea)
        .bool("calculated", false)
        .bool(
            "defaultedOnCreate",
            field.system || field.ty == FieldType::Boolean,
        )
        .int(
            "precision",
            if field.ty == FieldType::Currency {
                18
            } else {
                0
            },
        )
        .int(
            "scale",
            if field.ty == FieldType::Currency {
                2
            } else {
                0
            },
        );
    let refs = o.value("referenceTo");
    match field.refers_to {
        Some(to) => {
            refs.push('[');
            crate::json::push_str_lit(refs, to);
            refs.push(']');
        }
        None => refs.push_str("[]"),
    }
    o.opt_str(
        "relationshipName",
        field
            .refers_to
            .and_then(|_| field.name.strip_suffix("Id").filter(|s| !s.is_empty())),
    );
    let vals = o.value("picklistValues");
    vals.push('[');
    for (n, v) in field.values.iter().enumerate() {
        if n > 0 {
            vals.push(',');
        }
        let mut p = Obj::new(vals);
        p.bool("active", true)
            .bool("defaultValue", false)
            .str("label", v)
            .null("validFor")
            .str("value", v);
        p.end();
    }
    vals.push(']');
    o.end();
}

/// The object summary fields shared by `describe` and the global describe.
fn object_summary(o: &mut Obj<'_>, obj: SObject, version: &str) {
    let name = obj.name();
    let base = format!("/services/data/{version}/sobjects/{name}");
    o.str("name", name)
        .str("label", name_label(obj))
        .str("labelPlural", obj.label_plural())
        .str("keyPrefix", obj.key_prefix())
        .bool("custom", false)
        .bool("queryable", true)
        .bool("retrieveable", true)
        .bool("searchable", true)
        .bool("createable", obj.createable())
        .bool("updateable", true)
        .bool("deletable", obj.createable())
        .bool("replicateable", true)
        .bool("triggerable", true)
        .bool("layoutable", true);
    let mut urls = o.obj("urls");
    urls.str("sobject", &base)
        .str("describe", &format!("{base}/describe"))
        .str("rowTemplate", &format!("{base}/{{ID}}"));
    urls.end();
}

fn name_label(obj: SObject) -> &'static str {
    match obj {
        SObject::CampaignMember => "Campaign Member",
        other => other.name(),
    }
}

/// Renders `GET /sobjects` (the global describe).
pub(crate) fn describe_global(version: &str, out: &mut String) {
    let mut o = Obj::new(out);
    o.str("encoding", "UTF-8").int("maxBatchSize", 200);
    let buf = o.value("sobjects");
    buf.push('[');
    for (n, obj) in SObject::ALL.into_iter().enumerate() {
        if n > 0 {
            buf.push(',');
        }
        let mut s = Obj::new(buf);
        object_summary(&mut s, obj, version);
        s.end();
    }
    buf.push(']');
    o.end();
}
