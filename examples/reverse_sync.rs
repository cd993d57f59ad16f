//! Reverse ETL: a warehouse model synced into the sandbox's Mailchimp
//! audience. The diff runs in the warehouse as SQL; a re-run sends only what
//! changed.
//!
//! `cargo run -p weft-examples --example reverse_sync`

use weft_core::{SecretRef, SyncOptions, SyncReport, SyncSpec, SyncWriteMode, run_sync};
use weft_mailchimp::{MailchimpConfig, MailchimpTarget};
use weft_sandbox::{Api, Sandbox, SandboxConfig};
use weft_warehouse::{DuckDbWarehouse, Materialized, Model};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `models.people`: `n` people; with `renamed`, person 0 has a new first name.
fn people(n: u64, renamed: bool) -> Model {
    let first = if renamed {
        "CASE WHEN i = 0 THEN 'Renamed' ELSE 'Person' END"
    } else {
        "'Person'"
    };
    Model {
        name: "models.people".into(),
        sql: format!(
            "SELECT 'person' || i || '@example.com' AS email, {first} AS first_name, \
             'No. ' || i AS last_name FROM range({n}) t(i)"
        ),
        materialized: Materialized::Table,
    }
}

/// The sync: upsert members by email, mapping two merge fields.
fn spec() -> SyncSpec {
    SyncSpec {
        name: "people_to_mailchimp".into(),
        model: "models.people".into(),
        primary_key: "email".into(),
        mode: SyncWriteMode::Upsert,
        mapping: [
            ("email_address", "email"),
            ("merge_fields.FNAME", "first_name"),
            ("merge_fields.LNAME", "last_name"),
        ]
        .into_iter()
        .map(|(to, from)| (to.to_string(), from.to_string()))
        .collect(),
    }
}

/// The sandbox's Mailchimp audience as a sync target (its key in a file under `dir`).
fn target(
    sandbox: &Sandbox,
    config: &SandboxConfig,
    dir: &std::path::Path,
) -> Result<MailchimpTarget, Error> {
    let key_file = dir.join("mailchimp.key");
    std::fs::write(&key_file, &config.mailchimp_api_key)?;
    let mut mailchimp = MailchimpConfig::new(
        SecretRef::File { file: key_file },
        sandbox.control().mailchimp_list_id(),
    );
    mailchimp.base_url = Some(format!("{}/3.0", sandbox.base_url(Api::Mailchimp)));
    Ok(MailchimpTarget::new(
        &mailchimp,
        weft_http::BudgetRegistry::global(),
    )?)
}

/// Builds the model, syncs it, renames one person and syncs again.
async fn run(
    sandbox: &Sandbox,
    config: &SandboxConfig,
    dir: &std::path::Path,
) -> Result<(SyncReport, SyncReport, SyncReport), Error> {
    let warehouse = DuckDbWarehouse::open(&dir.join("weft.duckdb"))?;
    let target = target(sandbox, config, dir)?;
    warehouse.run_models(&[people(50, false)])?;
    let first = run_sync(&warehouse, &target, &spec(), SyncOptions::default()).await?;
    let unchanged = run_sync(&warehouse, &target, &spec(), SyncOptions::default()).await?;
    warehouse.run_models(&[people(50, true)])?;
    let changed = run_sync(&warehouse, &target, &spec(), SyncOptions::default()).await?;
    Ok((first, unchanged, changed))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = SandboxConfig::default();
    let sandbox = Sandbox::start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (first, unchanged, changed) = run(&sandbox, &config, dir.path()).await?;
    for (label, r) in [
        ("first sync", &first),
        ("nothing changed", &unchanged),
        ("one renamed", &changed),
    ] {
        println!(
            "{label:<16} created={} updated={} deleted={} rejected={} calls={}",
            r.created, r.updated, r.deleted, r.rejected, r.batches
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn syncs_everyone_then_nothing_then_only_the_change() {
        let config = SandboxConfig {
            mailchimp_members: 0,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (first, unchanged, changed) = run(&sandbox, &config, dir.path()).await.unwrap();
        assert_eq!((first.created, first.updated, first.rejected), (50, 0, 0));
        assert_eq!(
            (unchanged.created, unchanged.updated, unchanged.batches),
            (0, 0, 0)
        );
        assert_eq!(
            (changed.created, changed.updated, changed.batches),
            (0, 1, 1)
        );
        let control = sandbox.control();
        let members = control.mailchimp_members(&control.mailchimp_list_id());
        assert_eq!(members.len(), 50);
        let renamed = members
            .iter()
            .find(|m| m["email_address"] == "person0@example.com")
            .unwrap();
        assert_eq!(renamed["merge_fields"]["FNAME"], "Renamed");
        sandbox.shutdown().await;
    }
}
