//! JSON-RPC 2.0 as vdsm speaks it: named parameters, a single request or a batch
//! array (vdsm's own client sends arrays; the engine single objects), results
//! unwrapped (the value itself; a verb with nothing to return answers `true`), and
//! errors `{code, message}` with vdsm's codes.

use serde_json::{Map, Value, json};

/// vdsm's error codes the engine knows.
pub mod code {
    /// No VM of that id.
    pub const NO_SUCH_VM: i64 = 1;
    /// The method is not one of the verbs served.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are wrong.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The verb failed on the host.
    pub const GENERAL_EXCEPTION: i64 = 100;
}

/// A verb's failure: its code and what to say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }
}

/// What answers the verbs.
pub trait Verbs: Send + Sync {
    /// The result of `method` with `params` (an object; `{}` when none were given).
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError>;
}

/// One request of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `None` for a notification, which gets no answer.
    pub id: Option<Value>,
    pub method: String,
    pub params: Map<String, Value>,
}

/// Answers a message's body: `None` when there is nothing to send back (only
/// notifications), else the response (an array for a batch). Every request gets an
/// answer, errors included; nothing here panics or gives up on the connection.
pub fn answer(body: &[u8], verbs: &dyn Verbs) -> Option<Value> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(error(
                Value::Null,
                RpcError::new(code::PARSE_ERROR, format!("the request is not JSON: {e}")),
            ));
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Some(error(
            Value::Null,
            RpcError::new(code::INVALID_REQUEST, "an empty batch"),
        )),
        Value::Array(items) => {
            let answers: Vec<Value> = items.iter().filter_map(|i| one(i, verbs)).collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        v => one(&v, verbs),
    }
}

fn one(request: &Value, verbs: &dyn Verbs) -> Option<Value> {
    let call = match parse(request) {
        Ok(c) => c,
        Err((id, e)) => return Some(error(id, e)),
    };
    let result = verbs.call(&call.method, &call.params);
    if let Err(e) = &result {
        tracing::info!(method = %call.method, code = e.code, "{}", e.message);
    }
    let id = call.id?;
    Some(match result {
        Ok(value) => json!({"jsonrpc": "2.0", "id": id, "result": value}),
        Err(e) => error(id, e),
    })
}

/// Reads a request object; an error carries the id to answer it with.
pub fn parse(request: &Value) -> Result<Call, (Value, RpcError)> {
    let invalid = |id: Value, what: &str| {
        (
            id,
            RpcError::new(
                code::INVALID_REQUEST,
                format!("not a JSON-RPC 2.0 request: {what}"),
            ),
        )
    };
    let Value::Object(o) = request else {
        return Err(invalid(Value::Null, "not an object"));
    };
    let id = o.get("id").cloned();
    let answer_id = id.clone().unwrap_or(Value::Null);
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(answer_id, "\"jsonrpc\" is not \"2.0\""));
    }
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(invalid(
                Value::Null,
                "the id is neither a string nor a number",
            ));
        }
    }
    let Some(method) = o.get("method").and_then(Value::as_str) else {
        return Err(invalid(answer_id, "no method"));
    };
    let params = match o.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return Err((
                answer_id,
                RpcError::invalid_params("params must be an object (named parameters)"),
            ));
        }
    };
    Ok(Call {
        id,
        method: method.to_string(),
        params,
    })
}

fn error(id: Value, e: RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Verbs for Echo {
        fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError> {
            match method {
                "Host.ping2" => Ok(Value::Bool(true)),
                "Test.echo" => Ok(Value::Object(params.clone())),
                "VM.getStats" => Err(RpcError::new(
                    code::NO_SUCH_VM,
                    "Virtual machine does not exist",
                )),
                m => Err(RpcError::new(
                    code::METHOD_NOT_FOUND,
                    format!("no verb {m}"),
                )),
            }
        }
    }

    fn ask(text: &str) -> Option<Value> {
        answer(text.as_bytes(), &Echo)
    }

    #[test]
    fn results_are_unwrapped_and_ids_kept() {
        let a = ask(r#"{"jsonrpc":"2.0","method":"Host.ping2","params":{},"id":"a-1"}"#).unwrap();
        assert_eq!(a, json!({"jsonrpc":"2.0","id":"a-1","result":true}));
        let a = ask(r#"{"jsonrpc":"2.0","method":"Test.echo","params":{"x":1},"id":7}"#).unwrap();
        assert_eq!(a["result"], json!({"x": 1}));
        assert_eq!(a["id"], 7);
    }

    #[test]
    fn a_batch_is_answered_with_a_batch_and_notifications_with_nothing() {
        let a = ask(r#"[{"jsonrpc":"2.0","method":"Host.ping2","id":"1"},
                {"jsonrpc":"2.0","method":"Host.ping2"},
                {"jsonrpc":"2.0","method":"Nope.nope","id":"3"}]"#)
        .unwrap();
        let items = a.as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["result"], true);
        assert_eq!(items[1]["error"]["code"], code::METHOD_NOT_FOUND);
        assert_eq!(ask(r#"{"jsonrpc":"2.0","method":"Host.ping2"}"#), None);
    }

    #[test]
    fn errors_carry_vdsm_codes() {
        let a = ask(r#"{"jsonrpc":"2.0","method":"VM.getStats","params":{"vmID":"x"},"id":"1"}"#)
            .unwrap();
        assert_eq!(a["error"]["code"], code::NO_SUCH_VM);
        for (text, code) in [
            ("not json", code::PARSE_ERROR),
            ("[]", code::INVALID_REQUEST),
            ("42", code::INVALID_REQUEST),
            (r#"{"method":"Host.ping2","id":"1"}"#, code::INVALID_REQUEST),
            (r#"{"jsonrpc":"2.0","id":"1"}"#, code::INVALID_REQUEST),
            (
                r#"{"jsonrpc":"2.0","method":"Host.ping2","params":[1],"id":"1"}"#,
                code::INVALID_PARAMS,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"Host.ping2","id":{"a":1}}"#,
                code::INVALID_REQUEST,
            ),
        ] {
            let a = ask(text).unwrap();
            assert_eq!(a["error"]["code"], code, "{text}: {a}");
            assert_eq!(a["jsonrpc"], "2.0");
        }
    }
}
