//! Bulk API 2.0: query jobs (create, poll, CSV results paged with
//! `Sforce-Locator`) and ingest jobs (create, upload CSV, close, poll,
//! successful/failed/unprocessed results). In an ingest CSV an empty field
//! leaves the value unchanged and `#N/A` sets it to null, as in Salesforce.
//! `Control::salesforce_hold_ingest` keeps closed jobs
//! `InProgress` until released (to test a client that resumes them).

use std::collections::HashMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::json::Obj;
use crate::state::lock;

use super::data::{make_id, push_datetime};
use super::errors::SfError;
use super::schema::SObject;
use super::soql;
use super::store::{Raw, RecordError, convert};
use super::{SalesforceState, Shared, respond_json, sobject};

/// Rows per results page when the client gives no `maxRecords`.
const DEFAULT_MAX_RECORDS: usize = 50_000;

/// A query job; its rows are fixed when it is created.
struct QueryJob {
    operation: String,
    object: SObject,
    created: i64,
    polls: u32,
    query: soql::Query,
    rows: Vec<u64>,
    delimiter: char,
    line_ending: &'static str,
    version: String,
}

/// One processed ingest row: the original CSV values and the outcome.
struct IngestResult {
    row: Vec<String>,
    outcome: Result<(String, bool), RecordError>,
}

/// An ingest job.
struct IngestJob {
    operation: String,
    object: SObject,
    external_id: Option<usize>,
    created: i64,
    state: &'static str,
    delimiter: char,
    line_ending: &'static str,
    data: String,
    header: Vec<String>,
    results: Vec<IngestResult>,
    version: String,
}

/// Every Bulk 2.0 job, by id.
#[derive(Default)]
pub(crate) struct Jobs {
    query: HashMap<String, QueryJob>,
    ingest: HashMap<String, IngestJob>,
    /// Closed ingest jobs are not reported complete while set.
    pub(crate) hold_ingest: bool,
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/services/data/{v}/jobs/query", post(create_query))
        .route("/services/data/{v}/jobs/query/{id}", get(query_info))
        .route(
            "/services/data/{v}/jobs/query/{id}/results",
            get(query_results),
        )
        .route("/services/data/{v}/jobs/ingest", post(create_ingest))
        .route(
            "/services/data/{v}/jobs/ingest/{id}",
            get(ingest_info).patch(close_ingest),
        )
        .route("/services/data/{v}/jobs/ingest/{id}/batches", put(upload))
        .route("/services/data/{v}/jobs/ingest/{id}/batches/", put(upload))
        .route(
            "/services/data/{v}/jobs/ingest/{id}/{which}",
            get(ingest_results),
        )
        .route(
            "/services/data/{v}/jobs/ingest/{id}/{which}/",
            get(ingest_results),
        )
}

fn job_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    // Bulk 2.0 errors carry the same two keys as REST errors.
    SfError::new(status, code, message).into_response()
}

fn missing_job(id: &str) -> Response {
    job_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The requested resource does not exist: job {id}"),
    )
}

fn delimiter(name: Option<&str>) -> Result<char, Box<Response>> {
    Ok(match name.unwrap_or("COMMA") {
        "COMMA" => ',',
        "TAB" => '\t',
        "PIPE" => '|',
        "SEMICOLON" => ';',
        "CARET" => '^',
        "BACKQUOTE" => '`',
        other => {
            return Err(Box::new(job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid columnDelimiter: {other}"),
            )));
        }
    })
}

fn delimiter_name(c: char) -> &'static str {
    match c {
        '\t' => "TAB",
        '|' => "PIPE",
        ';' => "SEMICOLON",
        '^' => "CARET",
        '`' => "BACKQUOTE",
        _ => "COMMA",
    }
}

fn line_ending(name: Option<&str>) -> &'static str {
    if name == Some("CRLF") { "\r\n" } else { "\n" }
}

fn stamp(t: i64) -> String {
    let mut s = String::new();
    push_datetime(&mut s, t, "+0000");
    s
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    operation: String,
    query: String,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

async fn create_query(State(st): State<Shared>, Path(v): Path<String>, body: Bytes) -> Response {
    let req: CreateQuery = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid job request: {e}"),
            );
        }
    };
    let all = match req.operation.as_str() {
        "query" => false,
        "queryAll" => true,
        other => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid operation: {other}"),
            );
        }
    };
    let delim = match delimiter(req.column_delimiter.as_deref()) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let query = match soql::parse(&req.query) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    if query.count {
        // Bulk API 2.0 query jobs do not support aggregate functions.
        return job_error(
            StatusCode::BAD_REQUEST,
            "API_ERROR",
            "COUNT() is not supported in Bulk API 2.0 query jobs",
        );
    }
    let rows = st.run(&query, all);
    let id = make_id("750", st.next_seq());
    let job = QueryJob {
        operation: req.operation,
        object: query.object,
        created: st.clock.now(),
        polls: 0,
        query,
        rows,
        delimiter: delim,
        line_ending: line_ending(req.line_ending.as_deref()),
        version: v,
    };
    let body = query_job_json(&id, &job, "UploadComplete", false);
    lock(&st.jobs).query.insert(id, job);
    respond_json(StatusCode::OK, body)
}

fn query_job_json(id: &str, job: &QueryJob, state: &str, full: bool) -> String {
    let mut out = String::with_capacity(512);
    let mut o = Obj::new(&mut out);
    o.str("id", id)
        .str("operation", &job.operation)
        .str("object", job.object.name())
        .str("createdById", &make_id("005", 0))
        .str("createdDate", &stamp(job.created))
        .str("systemModstamp", &stamp(job.created))
        .str("state", state)
        .str("concurrencyMode", "Parallel")
        .str("contentType", "CSV")
        .raw("apiVersion", job.version.trim_start_matches('v'))
        .str(
            "lineEnding",
            if job.line_ending == "\r\n" {
                "CRLF"
            } else {
                "LF"
            },
        )
        .str("columnDelimiter", delimiter_name(job.delimiter));
    if full {
        let done = state == "JobComplete";
        o.str("jobType", "V2Query")
            .int(
                "numberRecordsProcessed",
                if done { job.rows.len() as i64 } else { 0 },
            )
            .int("retries", 0)
            .int("totalProcessingTime", if done { 250 } else { 0 })
            .bool("isPkChunkingSupported", true);
    }
    o.end();
    out
}

async fn query_info(State(st): State<Shared>, Path((_v, id)): Path<(String, String)>) -> Response {
    let now = st.clock.now();
    let mut jobs = lock(&st.jobs);
    let Some(job) = jobs.query.get_mut(&id) else {
        return missing_job(&id);
    };
    // Completes on the second poll, or once two seconds have passed.
    let state = if job.polls >= 1 || now >= job.created + 2 {
        "JobComplete"
    } else {
        "InProgress"
    };
    job.polls = job.polls.saturating_add(1);
    respond_json(StatusCode::OK, query_job_json(&id, job, state, true))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsParams {
    locator: Option<String>,
    max_records: Option<usize>,
}

/// Appends one CSV field, always quoted (as Bulk API 2.0 writes them).
fn push_csv_field(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

fn push_csv_row<'a>(
    out: &mut String,
    delim: char,
    line_ending: &str,
    fields: impl IntoIterator<Item = &'a str>,
) {
    for (n, f) in fields.into_iter().enumerate() {
        if n > 0 {
            out.push(delim);
        }
        push_csv_field(out, f);
    }
    out.push_str(line_ending);
}

fn csv_response(body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    resp
}

async fn query_results(
    State(st): State<Shared>,
    Path((_v, id)): Path<(String, String)>,
    QueryParams(p): QueryParams<ResultsParams>,
) -> Response {
    let jobs = lock(&st.jobs);
    let Some(job) = jobs.query.get(&id) else {
        return missing_job(&id);
    };
    if job.polls == 0 && st.clock.now() < job.created + 2 {
        return job_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOBSTATE",
            "Job is not in JobComplete state",
        );
    }
    let from = match p
        .locator
        .as_deref()
        .filter(|l| !l.is_empty() && *l != "null")
    {
        None => 0,
        Some(l) => match STANDARD_NO_PAD
            .decode(l.trim_end_matches('='))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n <= job.rows.len())
        {
            Some(n) => n,
            None => {
                return job_error(
                    StatusCode::BAD_REQUEST,
                    "INVALIDLOCATOR",
                    format!("Invalid locator: {l}"),
                );
            }
        },
    };
    let max = p.max_records.unwrap_or(DEFAULT_MAX_RECORDS).max(1);
    let end = (from + max).min(job.rows.len());
    let fields = job.object.fields();
    let mut out = String::with_capacity(64 + (end - from) * 300);
    push_csv_row(
        &mut out,
        job.delimiter,
        job.line_ending,
        job.query.fields.iter().map(|&f| fields[f].name),
    );
    {
        let store = st.read();
        for &i in &job.rows[from..end] {
            let values: Vec<String> = job
                .query
                .fields
                .iter()
                .map(|&f| store.get(&st.org, job.object, i, f).csv_text())
                .collect();
            push_csv_row(
                &mut out,
                job.delimiter,
                job.line_ending,
                values.iter().map(String::as_str),
            );
        }
    }
    let locator = if end < job.rows.len() {
        STANDARD_NO_PAD.encode(end.to_string())
    } else {
        "null".to_owned()
    };
    let mut resp = csv_response(out);
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&locator) {
        headers.insert("sforce-locator", v);
    }
    headers.insert("sforce-numberofrecords", HeaderValue::from(end - from));
    resp
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIngest {
    object: String,
    operation: String,
    external_id_field_name: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

async fn create_ingest(State(st): State<Shared>, Path(v): Path<String>, body: Bytes) -> Response {
    let req: CreateIngest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid job request: {e}"),
            );
        }
    };
    let object = match sobject(&req.object) {
        Ok(o) => o,
        Err(_) => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Unable to find object: {}", req.object),
            );
        }
    };
    let external_id = match req.operation.as_str() {
        "insert" => None,
        "update" | "delete" | "hardDelete" => object.field_index("Id"),
        "upsert" => {
            let Some(name) = req
                .external_id_field_name
                .as_deref()
                .filter(|n| !n.is_empty())
            else {
                return job_error(
                    StatusCode::BAD_REQUEST,
                    "INVALIDJOB",
                    format!(
                        "External ID was blank for {}. An External ID must be specified for upsert.",
                        object.name()
                    ),
                );
            };
            match object
                .field_index(name)
                .filter(|&k| object.fields()[k].external_id || object.fields()[k].name == "Id")
            {
                Some(k) => Some(k),
                None => {
                    return job_error(
                        StatusCode::BAD_REQUEST,
                        "INVALIDJOB",
                        format!(
                            "Field name provided, {name} is not an External ID or indexed field for {}",
                            object.name()
                        ),
                    );
                }
            }
        }
        other => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid operation: {other}"),
            );
        }
    };
    let delim = match delimiter(req.column_delimiter.as_deref()) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let id = make_id("750", st.next_seq());
    let job = IngestJob {
        operation: req.operation,
        object,
        external_id,
        created: st.clock.now(),
        state: "Open",
        delimiter: delim,
        line_ending: line_ending(req.line_ending.as_deref()),
        data: String::new(),
        header: Vec::new(),
        results: Vec::new(),
        version: v,
    };
    let body = ingest_job_json(&id, &job, false);
    lock(&st.jobs).ingest.insert(id, job);
    respond_json(StatusCode::OK, body)
}

fn ingest_job_json(id: &str, job: &IngestJob, full: bool) -> String {
    let mut out = String::with_capacity(512);
    let mut o = Obj::new(&mut out);
    o.str("id", id)
        .str("operation", &job.operation)
        .str("object", job.object.name())
        .str("createdById", &make_id("005", 0))
        .str("createdDate", &stamp(job.created))
        .str("systemModstamp", &stamp(job.created))
        .str("state", job.state);
    if let Some(k) = job.external_id.filter(|_| job.operation == "upsert") {
        o.str("externalIdFieldName", job.object.fields()[k].name);
    }
    o.str("concurrencyMode", "Parallel")
        .str("contentType", "CSV")
        .raw("apiVersion", job.version.trim_start_matches('v'))
        .str(
            "contentUrl",
            &format!("services/data/{}/jobs/ingest/{id}/batches", job.version),
        )
        .str(
            "lineEnding",
            if job.line_ending == "\r\n" {
                "CRLF"
            } else {
                "LF"
            },
        )
        .str("columnDelimiter", delimiter_name(job.delimiter));
    if full {
        let failed = job.results.iter().filter(|r| r.outcome.is_err()).count();
        o.str("jobType", "V2Ingest")
            .int("numberRecordsProcessed", job.results.len() as i64)
            .int("numberRecordsFailed", failed as i64)
            .int("retries", 0)
            .int(
                "totalProcessingTime",
                if job.results.is_empty() { 0 } else { 120 },
            )
            .int(
                "apiActiveProcessingTime",
                if job.results.is_empty() { 0 } else { 80 },
            )
            .int("apexProcessingTime", 0);
    }
    o.end();
    out
}

async fn ingest_info(State(st): State<Shared>, Path((_v, id)): Path<(String, String)>) -> Response {
    let mut jobs = lock(&st.jobs);
    let hold = jobs.hold_ingest;
    let Some(job) = jobs.ingest.get_mut(&id) else {
        return missing_job(&id);
    };
    if job.state == "UploadComplete" && !hold {
        job.state = "JobComplete";
    }
    respond_json(StatusCode::OK, ingest_job_json(&id, job, true))
}

async fn upload(
    State(st): State<Shared>,
    Path((_v, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut jobs = lock(&st.jobs);
    let Some(job) = jobs.ingest.get_mut(&id) else {
        return missing_job(&id);
    };
    if job.state != "Open" {
        return job_error(
            StatusCode::CONFLICT,
            "INVALIDJOBSTATE",
            "Job is not in Open state",
        );
    }
    let text = String::from_utf8_lossy(&body);
    if job.data.is_empty() {
        job.data.push_str(&text);
    } else {
        // Later uploads repeat the header row.
        let rest = text.split_once('\n').map_or("", |(_, r)| r);
        if !job.data.ends_with('\n') {
            job.data.push('\n');
        }
        job.data.push_str(rest);
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::CREATED;
    resp
}

#[derive(Deserialize)]
struct CloseJob {
    state: String,
}

async fn close_ingest(
    State(st): State<Shared>,
    Path((_v, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<CloseJob>(&body) else {
        return job_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            "Invalid request body",
        );
    };
    let now = st.clock.now();
    let mut jobs = lock(&st.jobs);
    let Some(job) = jobs.ingest.get_mut(&id) else {
        return missing_job(&id);
    };
    if job.state != "Open" {
        return job_error(
            StatusCode::CONFLICT,
            "INVALIDJOBSTATE",
            format!("Job is already {}", job.state),
        );
    }
    match req.state.as_str() {
        "Aborted" => job.state = "Aborted",
        "UploadComplete" => {
            let rows = parse_csv(&job.data, job.delimiter);
            let mut rows = rows.into_iter();
            job.header = rows.next().unwrap_or_default();
            let mut store = st.write();
            for row in rows {
                let outcome = process_row(&st, &mut store, job, &row, now);
                job.results.push(IngestResult { row, outcome });
            }
            job.state = "UploadComplete";
        }
        other => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Invalid state: {other}"),
            );
        }
    }
    respond_json(StatusCode::OK, ingest_job_json(&id, job, false))
}

fn process_row(
    st: &SalesforceState,
    store: &mut super::store::Store,
    job: &IngestJob,
    row: &[String],
    now: i64,
) -> Result<(String, bool), RecordError> {
    let obj = job.object;
    if job.operation == "delete" || job.operation == "hardDelete" {
        let id = job
            .header
            .iter()
            .position(|h| h.eq_ignore_ascii_case("Id"))
            .and_then(|k| row.get(k))
            .cloned()
            .unwrap_or_default();
        let key = obj.field_index("Id").unwrap_or(0);
        return match store.lookup(&st.org, obj, key, &id) {
            Some(i) => {
                store.delete(obj, i, now);
                Ok((st.org.id(obj, i), false))
            }
            None => Err(RecordError {
                code: "ENTITY_IS_DELETED",
                message: "entity is deleted".to_owned(),
                fields: vec![],
            }),
        };
    }
    // Bulk 2.0: an empty field leaves the value as it is, `#N/A` sets null.
    let values = convert(
        obj,
        job.external_id,
        job.header
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| {
                let text = if v.as_str() == "#N/A" { "" } else { v.as_str() };
                (h.as_str(), Raw::Text(text))
            }),
    )?;
    let insert_allowed = job.operation != "update";
    store
        .write(&st.org, obj, job.external_id, values, now, insert_allowed)
        .map(|(i, created)| (st.org.id(obj, i), created))
}

async fn ingest_results(
    State(st): State<Shared>,
    Path((_v, id, which)): Path<(String, String, String)>,
) -> Response {
    let jobs = lock(&st.jobs);
    let Some(job) = jobs.ingest.get(&id) else {
        return missing_job(&id);
    };
    let mut out = String::new();
    let header = job.header.iter().map(String::as_str);
    match which.as_str() {
        "successfulResults" => {
            push_csv_row(
                &mut out,
                job.delimiter,
                job.line_ending,
                ["sf__Id", "sf__Created"].into_iter().chain(header),
            );
            for r in &job.results {
                if let Ok((sf_id, created)) = &r.outcome {
                    let created = if *created { "true" } else { "false" };
                    push_csv_row(
                        &mut out,
                        job.delimiter,
                        job.line_ending,
                        [sf_id.as_str(), created]
                            .into_iter()
                            .chain(r.row.iter().map(String::as_str)),
                    );
                }
            }
        }
        "failedResults" => {
            push_csv_row(
                &mut out,
                job.delimiter,
                job.line_ending,
                ["sf__Id", "sf__Error"].into_iter().chain(header),
            );
            for r in &job.results {
                if let Err(e) = &r.outcome {
                    let error = format!("{}:{}:{} --", e.code, e.message, e.fields.join(","));
                    push_csv_row(
                        &mut out,
                        job.delimiter,
                        job.line_ending,
                        ["", error.as_str()]
                            .into_iter()
                            .chain(r.row.iter().map(String::as_str)),
                    );
                }
            }
        }
        "unprocessedrecords" => {
            push_csv_row(&mut out, job.delimiter, job.line_ending, header);
            if job.state == "Open" || job.state == "Aborted" {
                for row in parse_csv(&job.data, job.delimiter).into_iter().skip(1) {
                    push_csv_row(
                        &mut out,
                        job.delimiter,
                        job.line_ending,
                        row.iter().map(String::as_str),
                    );
                }
            }
        }
        _ => return missing_job(&id),
    }
    csv_response(out)
}

/// Parses CSV text (RFC 4180 quoting, LF or CRLF line endings).
pub(crate) fn parse_csv(text: &str, delim: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut any = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                any = true;
            }
            c if c == delim => {
                row.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                any = false;
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if any || !field.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quotes_commas_and_newlines() {
        let mut out = String::new();
        push_csv_row(&mut out, ',', "\n", ["a", "b,\"c\"\nd", ""]);
        assert_eq!(out, "\"a\",\"b,\"\"c\"\"\nd\",\"\"\n");
        assert_eq!(
            parse_csv(&format!("{out}x,y,z\r\n"), ','),
            vec![
                vec!["a".to_owned(), "b,\"c\"\nd".to_owned(), String::new()],
                vec!["x".to_owned(), "y".to_owned(), "z".to_owned()],
            ]
        );
    }
}
