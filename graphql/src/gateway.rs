//! The one way a request reaches the schema, over HTTP and over the subscriptions' WebSocket:
//! its trusted document resolved and checked ([`trusted`]), its parsed document taken from the
//! cache ([`documents`]), then the schema.
//!
//! Both were schema extensions. Once a schema has any extension, async-graphql sends every
//! field of every answer through the extensions' `resolve` chain (a boxed future per extension
//! per field), whatever hooks they implement: for the home screen's few hundred fields that
//! was a few percent of the server's time, for two hooks that only look at the request. As an
//! [`Executor`] wrapped around the schema they run once per request, before it.

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt as _};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use crate::AppSchema;
use crate::access::Caller;
use crate::documents::DocumentCache;
use crate::trusted::{self, TrustedDocuments};

#[derive(Clone)]
pub struct Gateway {
    schema: AppSchema,
    trusted: TrustedDocuments,
    documents: DocumentCache,
}

impl Gateway {
    pub fn new(schema: AppSchema, trusted: TrustedDocuments, documents: DocumentCache) -> Self {
        Gateway { schema, trusted, documents }
    }

    /// The request as the schema runs it, or the refusal. HTTP puts the caller in the
    /// request's data, the WebSocket in the connection's (`session`).
    fn prepare(&self, mut request: Request, session: Option<&Data>) -> Result<Request, ServerError> {
        let app = trusted::app_caller(caller_in(&request.data).or_else(|| session.and_then(caller_in)));
        trusted::resolve(self.trusted, &mut request, app)?;
        self.documents.attach(&mut request);
        Ok(request)
    }
}

fn caller_in(data: &Data) -> Option<&Caller> {
    data.get(&TypeId::of::<Caller>()).and_then(|d| d.downcast_ref::<Caller>())
}

impl Executor for Gateway {
    async fn execute(&self, request: Request) -> Response {
        match self.prepare(request, None) {
            Ok(request) => self.schema.execute(request).await,
            Err(refusal) => Response::from_errors(vec![refusal]),
        }
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        match self.prepare(request, session_data.as_deref()) {
            Ok(request) => self.schema.execute_stream_with_session_data(request, session_data.unwrap_or_default()),
            Err(refusal) => stream::once(async move { Response::from_errors(vec![refusal]) }).boxed(),
        }
    }
}
