//! A scripted API server, in process: the exact requests a step must make, in order, each with
//! its answer. For the request-sequence tests (what one reconcile sends, and nothing else) and
//! the odd error paths the real API server cannot be made to take on demand. It never replaces
//! the real-API suites.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;

type Answer = Box<dyn Fn(&Value) -> (u16, Value) + Send + Sync>;

struct Step {
    method: Method,
    path: String,
    answer: Answer,
}

/// One request as the scripted server saw it: method, path, body (`null` when empty).
pub type Seen = (Method, String, Value);

#[derive(Clone, Default)]
pub struct ScriptedApi {
    steps: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The query string of each request in `seen`, in the same order (empty when none).
    queries: Arc<Mutex<Vec<String>>>,
    unexpected: Arc<Mutex<Vec<String>>>,
}

impl ScriptedApi {
    pub fn new() -> ScriptedApi {
        ScriptedApi::default()
    }

    /// The next request must be `method path`; `answer` gives the status code and body from
    /// the request's body.
    pub fn expect(
        &self,
        method: Method,
        path: &str,
        answer: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static,
    ) -> &Self {
        self.steps.lock().unwrap().push_back(Step {
            method,
            path: path.to_string(),
            answer: Box::new(answer),
        });
        self
    }

    /// A client whose every request goes to this script.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(api.answer(req).await) }
        });
        kube::Client::new(service, namespace)
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.seen
            .lock()
            .unwrap()
            .push((method.clone(), path.clone(), body.clone()));
        self.queries.lock().unwrap().push(query);
        let next = {
            let mut steps = self.steps.lock().unwrap();
            match steps.front() {
                Some(s) if s.method == method && s.path == path => steps.pop_front(),
                _ => None,
            }
        };
        let (code, answer) = match next {
            Some(step) => (step.answer)(&body),
            None => {
                self.unexpected
                    .lock()
                    .unwrap()
                    .push(format!("{method} {path}"));
                (500, status(500, "InternalError", "not in the script"))
            }
        };
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap()
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The query string of the last `method path` request (empty when it had none).
    pub fn last_query(&self, method: Method, path: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        let queries = self.queries.lock().unwrap();
        seen.iter()
            .zip(queries.iter())
            .rev()
            .find(|((m, p, _), _)| *m == method && p == path)
            .map(|(_, q)| q.clone())
    }

    /// `METHOD path` of every request so far, in order.
    pub fn sequence(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }

    /// Fails unless every scripted request came, in order, and nothing else.
    pub fn assert_done(&self) {
        let unexpected = self.unexpected.lock().unwrap().clone();
        let left: Vec<String> = self
            .steps
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert!(
            unexpected.is_empty() && left.is_empty(),
            "requests not in the script: {unexpected:?}; scripted but not sent: {left:?}; sent: {:?}",
            self.sequence()
        );
    }
}

/// The Ready condition of a key set status as the operator sent it.
pub fn ready_condition(status: &Value) -> &Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or_else(|| panic!("no Ready condition in {status}"))
}

/// A Kubernetes `Status` body for an error answer.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "code": code, "message": message
    })
}
