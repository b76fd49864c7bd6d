//! Parsed documents kept by their text, so a query the server has seen is not parsed again.
//!
//! The apps and club software send the same few documents all day (registered ones, or their
//! own), and parsing was 7 % of the server's time on the parent home query (`perf` during
//! `spending-bench`). The schema still checks the limits (recursion, directives) and validates
//! on every request: validation depends on the variables. Only documents that parsed are kept;
//! the cache is bounded in entries and in the size of what it keeps, so hostile traffic can only
//! evict entries, never grow memory.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::Request;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Documents kept (the contract registers 57; staff tools and club software add their own).
const ENTRIES: NonZeroUsize = NonZeroUsize::new(256).expect("non-zero");
/// Longer documents are parsed every time (the longest registered one is 614 bytes): the worst
/// case is 256 syntax trees of 8 KiB documents. In production only staff and club software can
/// send documents of their own (the apps send registered hashes).
const MAX_LEN: usize = 8 * 1024;

#[derive(Clone)]
pub struct DocumentCache(Arc<Mutex<LruCache<String, Arc<ExecutableDocument>>>>);

impl Default for DocumentCache {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(LruCache::new(ENTRIES))))
    }
}

impl DocumentCache {
    /// The cache holds no invariant a panicking holder could break: a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, LruCache<String, Arc<ExecutableDocument>>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many documents are kept (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DocumentCache {
    /// Gives `request` its parsed document: a copy of the one kept for its text (execution
    /// removes `@skip`ped fields from it), or a new parse, kept. A text that does not parse is
    /// left to the schema, which parses it again and answers with its error.
    pub fn attach(&self, request: &mut Request) {
        let kept = self.lock().get(&request.query).cloned();
        if let Some(document) = kept {
            request.set_parsed_query((*document).clone());
            return;
        }
        if request.query.len() > MAX_LEN {
            return;
        }
        if let Ok(document) = parse_query(&request.query) {
            self.lock().put(request.query.clone(), Arc::new(document.clone()));
            request.set_parsed_query(document);
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Executor as _, Request, Variables};
    use serde_json::json;

    use super::DocumentCache;

    /// A kept document answers like a fresh parse for every set of variables: the `@skip`
    /// of one request does not stay in the copy the next one gets.
    #[tokio::test]
    async fn a_kept_document_answers_each_request_by_its_own_variables() {
        let cache = DocumentCache::default();
        let schema = crate::offline_gateway(cache.clone());
        let query = "query($s: Boolean!) { __typename ... @skip(if: $s) { a: __typename } }";
        let run = |skip: bool| {
            let schema = schema.clone();
            async move {
                let request = Request::new(query).variables(Variables::from_json(json!({ "s": skip })));
                let response = schema.execute(request).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
                response.data.into_json().expect("json")
            }
        };
        assert_eq!(run(true).await, json!({ "__typename": "Query" }));
        assert_eq!(cache.len(), 1);
        assert_eq!(run(false).await, json!({ "__typename": "Query", "a": "Query" }));
        assert_eq!(run(true).await, json!({ "__typename": "Query" }));
        assert_eq!(cache.len(), 1, "one text, one entry");
        // A document that does not parse is not kept, and still answers with its error.
        let broken = schema.execute(Request::new("query { __typename")).await;
        assert!(!broken.errors.is_empty());
        assert_eq!(cache.len(), 1);
    }
}
