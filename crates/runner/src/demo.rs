//! `weft demo`: the headline story, offline, against the built-in sandbox.
//!
//! Zoom webinar registrants + Salesforce contacts (+ Stripe) -> stage ->
//! DuckDB (or PostgreSQL: [`DemoWarehouse`]) -> a SQL model with one row per person by normalised email -> a
//! Mailchimp audience, Zendesk users, and Salesforce Contacts for the
//! people only Zoom knew. The demo starts the sandbox in-process, writes a
//! `weft.toml` (and the sandbox's credentials as files) under the demo
//! directory, and runs it with exactly the code `weft run` uses. Running it
//! again sends nothing: the model has not changed, and the simulated tools
//! keep what earlier runs wrote to them (`sandbox-state.json` in the demo
//! directory).

use std::path::{Path, PathBuf};

use weft_core::{CancellationToken, SecretRef, SyncWriteMode};
use weft_sandbox::{Api, Sandbox, SandboxConfig};

use crate::{RunOptions, RunOutcome, RunnerError, WeftConfig};

/// The demo's dedupe model (also in `models/demo/01_people.sql`).
pub const PEOPLE_MODEL: &str = include_str!("../../../models/demo/01_people.sql");

/// The demo's CRM model: people only Zoom knew (also in
/// `models/demo/02_crm_contacts.sql`), synced into Salesforce Contacts.
pub const CRM_MODEL: &str = include_str!("../../../models/demo/02_crm_contacts.sql");

/// The file in the demo directory that keeps the simulated tools' state
/// (what the demo wrote to them) from one `weft demo` to the next.
pub const SANDBOX_STATE: &str = "sandbox-state.json";

/// Where `weft demo` loads.
#[derive(Debug, Clone, Default)]
pub enum DemoWarehouse {
    /// A DuckDB file in the demo directory, `weft.duckdb`.
    #[default]
    DuckDb,
    /// A PostgreSQL database; its URL (which may hold a password) is read
    /// from this secret ref at run time and never written to the config.
    Postgres(SecretRef),
}

impl DemoWarehouse {
    /// The config's `[warehouse]` table.
    fn toml(&self) -> String {
        match self {
            DemoWarehouse::DuckDb => {
                "[warehouse]\nkind = \"duckdb\"\npath = \"weft.duckdb\"\n".to_string()
            }
            DemoWarehouse::Postgres(url) => {
                format!(
                    "[warehouse]\nkind = \"postgres\"\nurl = {}\n",
                    secret_toml(url)
                )
            }
        }
    }
}

/// A secret ref as an inline TOML table.
fn secret_toml(secret: &SecretRef) -> String {
    match secret {
        SecretRef::Env { env } => format!("{{ env = {env:?} }}"),
        SecretRef::File { file } => format!("{{ file = {:?} }}", file.display().to_string()),
    }
}

/// What a demo run did and where its results are.
#[derive(Debug)]
pub struct DemoSummary {
    /// The demo directory.
    pub dir: PathBuf,
    /// The generated config file.
    pub config_path: PathBuf,
    /// Where the demo loaded.
    pub warehouse: DemoWarehouse,
    /// The DuckDB file (used when [`DemoSummary::warehouse`] is DuckDB).
    pub warehouse_path: PathBuf,
    /// The Parquet stage directory.
    pub stage_path: PathBuf,
    /// People in `models.people` after de-duplication.
    pub people: u64,
    /// Members the sandbox's Mailchimp audience holds after the run.
    pub audience_members: usize,
    /// Salesforce Contacts the demo's syncs have written (this sandbox run).
    pub crm_contacts: usize,
    /// What the run did.
    pub outcome: RunOutcome,
}

impl DemoSummary {
    /// Human-readable summary: per-stream table, model, sync, paths, a query to try.
    pub fn render(&self) -> String {
        let query = "SELECT email, first_name, last_name, sources FROM models.people LIMIT 10";
        let warehouse = match &self.warehouse {
            DemoWarehouse::DuckDb => self.warehouse_path.display().to_string(),
            DemoWarehouse::Postgres(SecretRef::Env { env }) => {
                format!("PostgreSQL (the URL in ${env})")
            }
            DemoWarehouse::Postgres(SecretRef::File { file }) => {
                format!("PostgreSQL (the URL in {})", file.display())
            }
        };
        let client = format!(
            "weft query --config {} \"{query}\"",
            self.config_path.display()
        );
        let mut out = self.outcome.render();
        out.push_str(&format!(
            "\npeople after dedupe: {} (models.people); the sandbox Mailchimp audience holds {} members (kept in {} across demo runs); \
             {} people only Zoom knew were written to Salesforce Contacts by this run\n\n\
             warehouse  {warehouse}\nstage      {}\nconfig     {}\n\ntry:\n  \
             weft sync --config {} --dry-run\n  {client}\n",
            self.people,
            self.audience_members,
            self.dir.join(SANDBOX_STATE).display(),
            self.crm_contacts,
            self.stage_path.display(),
            self.config_path.display(),
            self.config_path.display(),
        ));
        out
    }
}

/// Runs the demo in `dir` against a sandbox of `size` people, loading into
/// `warehouse`.
pub async fn run_demo(
    dir: &Path,
    size: usize,
    warehouse: DemoWarehouse,
    cancel: CancellationToken,
) -> Result<DemoSummary, RunnerError> {
    let dir = create_dir(dir)?;
    let sandbox_config = SandboxConfig {
        size,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(sandbox_config.clone()).await?;
    let control = sandbox.control();
    // The simulated tools keep what the demo wrote to them across runs.
    let saved = dir.join(SANDBOX_STATE);
    if saved.exists() {
        let text = std::fs::read_to_string(&saved).map_err(|source| RunnerError::Io {
            what: "reading",
            path: saved.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| RunnerError::Io {
                what: "parsing",
                path: saved.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
        control.restore_state(&value)?;
    }
    let config_path = write_demo_config(
        &dir,
        &sandbox,
        &sandbox_config,
        &warehouse,
        SyncWriteMode::Upsert,
        None,
    )?;
    let config = WeftConfig::load(&config_path)?;
    let outcome = crate::run(&config, &RunOptions::default(), cancel, None).await;
    let audience_members = control
        .mailchimp_members(&control.mailchimp_list_id())
        .len();
    let crm_contacts = control
        .salesforce_upserted("Contact")
        .map_or(0, |c| c.len());
    let state = control.save_state();
    sandbox.shutdown().await;
    write(&saved, &serde_json::to_string(&state).unwrap_or_default())?;
    let outcome = outcome?;
    let people = outcome
        .models
        .iter()
        .find(|m| m.name == "models.people")
        .map_or(0, |m| m.rows);
    Ok(DemoSummary {
        warehouse,
        warehouse_path: dir.join("weft.duckdb"),
        stage_path: dir.join("stage"),
        config_path,
        dir,
        people,
        audience_members,
        crm_contacts,
        outcome,
    })
}

/// Writes the demo's files into `dir` for a running `sandbox`: its
/// credentials as secret files, the dedupe model, and a `weft.toml` with
/// `warehouse`, the Zoom, Salesforce and Stripe pipelines, the Mailchimp sync
/// (`mode`, optional `batch_size`), the Zendesk users sync (upsert, or
/// mirror when `mode` is mirror) and the Salesforce Contacts sync of
/// `models.crm_contacts` (always upsert: people leave that model once
/// Salesforce has them). Returns the config path. The end-to-end tests use
/// it too, so they run exactly the demo's configuration.
pub fn write_demo_config(
    dir: &Path,
    sandbox: &Sandbox,
    sandbox_config: &SandboxConfig,
    warehouse: &DemoWarehouse,
    mode: SyncWriteMode,
    batch_size: Option<usize>,
) -> Result<PathBuf, RunnerError> {
    let secrets = dir.join("sandbox-secrets");
    create_dir(&secrets)?;
    let secret = |name: &str, value: &str| -> Result<String, RunnerError> {
        let path = secrets.join(name);
        write(&path, value)?;
        Ok(format!("{{ file = {:?} }}", path.display().to_string()))
    };
    let stripe_key = secret("stripe.key", &sandbox_config.api_key)?;
    let zoom_secret = secret("zoom.secret", &sandbox_config.zoom_client_secret)?;
    let sf_secret = secret(
        "salesforce.secret",
        &sandbox_config.salesforce_client_secret,
    )?;
    let sf_refresh = secret(
        "salesforce.refresh",
        &sandbox_config.salesforce_refresh_token,
    )?;
    let mailchimp_key = secret("mailchimp.key", &sandbox_config.mailchimp_api_key)?;
    let zendesk_token = secret("zendesk.token", &sandbox_config.zendesk_token)?;
    let models = dir.join("models");
    create_dir(&models)?;
    write(&models.join("01_people.sql"), PEOPLE_MODEL)?;
    write(&models.join("02_crm_contacts.sql"), CRM_MODEL)?;
    let mode = mode.as_str();
    // Zendesk takes upserts and mirror deletes (suspensions) only.
    let zendesk_mode = if mode == "mirror" { "mirror" } else { "upsert" };
    let batch = batch_size.map_or(String::new(), |n| format!("batch_size = {n}"));
    let control = sandbox.control();
    let zoom = sandbox.base_url(Api::Zoom);
    let text = format!(
        r#"# Generated by `weft demo`: the built-in sandbox into a warehouse, then out to Mailchimp, Zendesk and Salesforce.
{warehouse}
[stage]
url = "stage"

[models]
dir = "models"

[[pipelines]]
name = "zoom"
connector = "zoom"
streams = ["users", "webinars", "webinar_registrants"]

[pipelines.config]
base_url = "{zoom}"
token_url = "{zoom}/oauth/token"
account_id = "{zoom_account}"
client_id = "{zoom_client}"
client_secret = {zoom_secret}

[[pipelines]]
name = "salesforce"
connector = "salesforce"

[pipelines.config]
login_url = "{salesforce}"
objects = ["Contact", "Account", "Lead"]
auth = {{ kind = "refresh_token", client_id = "{sf_client}", client_secret = {sf_secret}, refresh_token = {sf_refresh} }}

[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers", "charges"]

[pipelines.config]
base_url = "{stripe}"
api_key = {stripe_key}

[[syncs]]
name = "mailchimp_people"
connector = "mailchimp"
model = "models.people"
primary_key = "email"
mode = "{mode}"
{batch}

[syncs.mapping]
email_address = "email"
"merge_fields.FNAME" = "first_name"
"merge_fields.LNAME" = "last_name"

[syncs.config]
base_url = "{mailchimp}/3.0"
api_key = {mailchimp_key}
list_id = "{list_id}"

[[syncs]]
name = "zendesk_people"
connector = "zendesk"
model = "models.people"
primary_key = "email"
mode = "{zendesk_mode}"
{batch}

[syncs.mapping]
email = "email"
name = "full_name"

[syncs.config]
base_url = "{zendesk}"
email = "{zendesk_email}"
api_token = {zendesk_token}
requests_per_minute = 6000

[[syncs]]
name = "salesforce_contacts"
connector = "salesforce"
model = "models.crm_contacts"
primary_key = "email"
mode = "upsert"
{batch}

[syncs.mapping]
External_Id__c = "email"
Email = "email"
FirstName = "first_name"
LastName = "last_name"

[syncs.config]
login_url = "{salesforce}"
object = "Contact"
external_id_field = "External_Id__c"
auth = {{ kind = "refresh_token", client_id = "{sf_client}", client_secret = {sf_secret}, refresh_token = {sf_refresh} }}
"#,
        zoom_account = sandbox_config.zoom_account_id,
        zoom_client = sandbox_config.zoom_client_id,
        salesforce = sandbox.base_url(Api::Salesforce),
        sf_client = sandbox_config.salesforce_client_id,
        stripe = sandbox.base_url(Api::Stripe),
        mailchimp = sandbox.base_url(Api::Mailchimp),
        zendesk = sandbox.base_url(Api::Zendesk),
        zendesk_email = sandbox_config.zendesk_email,
        list_id = control.mailchimp_list_id(),
        warehouse = warehouse.toml(),
    );
    let config_path = dir.join("weft.toml");
    write(&config_path, &text)?;
    Ok(config_path)
}

fn create_dir(dir: &Path) -> Result<PathBuf, RunnerError> {
    std::fs::create_dir_all(dir).map_err(|source| RunnerError::Io {
        what: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    dir.canonicalize().map_err(|source| RunnerError::Io {
        what: "resolving",
        path: dir.to_path_buf(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), RunnerError> {
    std::fs::write(path, text).map_err(|source| RunnerError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}
