//! The source side: the template API's objects as streams.
//!
//! `widgets` is read with `GET /v1/widgets?updated_since=<cursor>` (inclusive,
//! sorted by `updated_at` ascending), paged by `next_page_token`. After each
//! page a checkpoint saves `{"updated_at": t}`, the safe watermark
//! ([`weft_core::Watermark`]: the largest `updated_at` read, held
//! `settle_secs` behind the extraction's start); a resumed or incremental
//! read re-reads the boundary second, which the merge by `id` absorbs.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use weft_core::{
    BoxError, Catalog, Connector, EventSender, ReadRequest, SourceEvent, StreamMetrics, StreamSpec,
    StreamState, Watermark,
};
use weft_http::{BudgetRegistry, HttpClient, HttpError, Pagination, RequestSpec, paginate};

use crate::{TemplateConfig, TemplateError};

/// The template API as a source (cheap to clone: clones share the client).
#[derive(Clone)]
pub struct TemplateSource {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    catalog: Catalog,
    page_size: u32,
    settle_secs: i64,
}

/// The one field a page's records are read for: the cursor.
#[derive(Deserialize)]
struct Cursor {
    updated_at: Option<i64>,
}

impl TemplateSource {
    /// A source for the account of `config.api_key`, its budget from `budgets`.
    pub fn new(
        config: &TemplateConfig,
        budgets: &BudgetRegistry,
    ) -> Result<TemplateSource, TemplateError> {
        Ok(TemplateSource {
            inner: Arc::new(Inner {
                http: crate::client::http_client(config, budgets)?,
                catalog: crate::catalog()?,
                page_size: config.page_size,
                settle_secs: i64::try_from(config.settle_secs).unwrap_or(i64::MAX),
            }),
        })
    }
}

#[async_trait]
impl Connector for TemplateSource {
    type Error = HttpError;
    const NAME: &'static str = "template";

    fn stream_specs(&self) -> Vec<StreamSpec> {
        self.inner
            .catalog
            .streams
            .iter()
            .map(|s| s.spec.clone())
            .collect()
    }

    async fn check_connection(&self) -> Result<(), BoxError> {
        let req = RequestSpec::get("v1/widgets").query("limit", "1");
        self.inner
            .http
            .send(&req, &StreamMetrics::default())
            .await?;
        Ok(())
    }

    async fn read_stream(self, request: ReadRequest, tx: EventSender) -> Result<(), HttpError> {
        let previous = request
            .state
            .as_ref()
            .and_then(|s| s.get::<i64>("updated_at"));
        let mut watermark = Watermark::new(
            previous,
            request.started_at.timestamp(),
            self.inner.settle_secs,
        );
        let mut first =
            RequestSpec::get("v1/widgets").query("limit", self.inner.page_size.to_string());
        if let Some(since) = previous {
            first = first.query("updated_since", since.to_string());
        }
        let style = Pagination::PageToken {
            items: "/data".into(),
            token: "/next_page_token".into(),
            param: "page_token".into(),
        };
        let mut pages = paginate(self.inner.http.clone(), first, style, request.metrics);
        while let Some(page) = pages.next().await {
            let page = page?;
            for record in &page.records {
                // A record without a readable cursor still loads; it just
                // cannot move the watermark.
                if let Ok(Cursor {
                    updated_at: Some(t),
                }) = serde_json::from_str(record.get())
                {
                    watermark.observe(t);
                }
            }
            let state = StreamState(json!({ "updated_at": watermark.value() }));
            let sent = tx.send(Ok(SourceEvent::Page(page.into_json_page()))).await;
            if sent.is_err() || tx.send(Ok(SourceEvent::Checkpoint(state))).await.is_err() {
                break; // the pipeline stopped reading
            }
            if request.cancel.is_cancelled() {
                break;
            }
        }
        Ok(())
    }
}
