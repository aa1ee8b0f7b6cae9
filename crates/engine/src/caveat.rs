//! Caveats: the three-valued result [`Tri`] the engine computes with, and evaluation of a
//! relationship's caveat with the `cel` crate against its context merged with the request's.
//!
//! SpiceDB builds a caveat expression while it walks the graph and evaluates it once at the
//! end. Its evaluation is Kleene logic over the caveats (AND/OR/NOT, a caveat whose
//! parameters are missing is "partial" and contributes its missing names), and Kleene logic
//! is compositional, so evaluating each relationship's caveat as soon as it is read and
//! combining three-valued results gives the same answer with less work and no expression
//! trees on the hot path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use cel::common::ast::Expr;
use cel::extractors::This;
use cel::objects::{Key, Opaque};
use cel::{Context, Env, ExecutionError, IdedExpr, Value};
use ostiary_schema::CompiledSchema;
use ostiary_schema::ir::{Caveat, CaveatType};
use ostiary_types::ContextualizedCaveat;
use serde_json::{Map, Value as Json};

use crate::EngineError;

/// A three-valued membership: yes, no, or "depends on these missing caveat parameters".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tri {
    /// Member.
    True,
    /// Not a member.
    False,
    /// Member if caveats not decidable with the given context hold; the names are the
    /// missing parameters, sorted and unique.
    Partial(Vec<String>),
}

impl Tri {
    /// Kleene OR.
    pub(crate) fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, other) | (other, Tri::False) => other,
            (Tri::Partial(left), Tri::Partial(right)) => Tri::Partial(merge(left, right)),
        }
    }

    /// Kleene AND.
    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, other) | (other, Tri::True) => other,
            (Tri::Partial(left), Tri::Partial(right)) => Tri::Partial(merge(left, right)),
        }
    }

    /// Kleene NOT.
    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            partial @ Tri::Partial(_) => partial,
        }
    }

    /// Whether this is `True`.
    pub(crate) fn is_true(&self) -> bool {
        matches!(self, Tri::True)
    }

    /// Whether this is `False`.
    pub(crate) fn is_false(&self) -> bool {
        matches!(self, Tri::False)
    }
}

/// Sorted union of two sorted, unique lists.
fn merge(mut left: Vec<String>, right: Vec<String>) -> Vec<String> {
    if left.is_empty() {
        return right;
    }
    for name in right {
        if let Err(idx) = left.binary_search(&name) {
            left.insert(idx, name);
        }
    }
    left
}

/// The CEL environment shared by every evaluation: the standard library (SpiceDB's
/// extensions are registered per evaluation as functions).
static CEL_ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Evaluates relationship caveats for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CaveatEvaluator<'a> {
    schema: &'a CompiledSchema,
    request: &'a Map<String, Json>,
}

impl<'a> CaveatEvaluator<'a> {
    /// An evaluator using `request` as the request context.
    pub(crate) fn new(schema: &'a CompiledSchema, request: &'a Map<String, Json>) -> Self {
        Self { schema, request }
    }

    /// Evaluates the caveat of a relationship (`None`: no caveat, so `True`).
    pub(crate) fn eval(&self, caveat: Option<&ContextualizedCaveat>) -> Result<Tri, EngineError> {
        let Some(caveat) = caveat else {
            return Ok(Tri::True);
        };
        let definition = self
            .schema
            .caveat_by_name(caveat.name().as_str())
            .ok_or_else(|| EngineError::UnknownCaveat(caveat.name().to_string()))?;
        evaluate(definition, caveat.context(), self.request)
    }
}

/// Evaluates `caveat` with the relationship's `stored` context merged over `request`.
pub(crate) fn evaluate(
    caveat: &Caveat,
    stored: &Map<String, Json>,
    request: &Map<String, Json>,
) -> Result<Tri, EngineError> {
    let mut ctx = Context::with_env(Arc::clone(&CEL_ENV));
    ctx.add_function("in_cidr", in_cidr)
        .map_err(|err| EngineError::Internal(format!("registering `in_cidr`: {err}")))?;
    let mut missing: Vec<&str> = Vec::new();
    for param in &caveat.params {
        // The value stored with the relationship wins over the request's.
        let json = stored.get(&param.name).or_else(|| request.get(&param.name));
        match json {
            Some(json) => {
                let value = to_cel(json, &param.param_type).map_err(|reason| {
                    EngineError::CaveatContext {
                        caveat: caveat.name.clone(),
                        param: param.name.clone(),
                        reason,
                    }
                })?;
                ctx.add_variable_from_value(param.name.clone(), value);
            }
            None => missing.push(&param.name),
        }
    }
    let root = caveat.expression.program.expression();
    eval_expr(root, &ctx, &missing).map_err(|reason| EngineError::CaveatEvaluation {
        caveat: caveat.name.clone(),
        reason,
    })
}

/// Kleene evaluation of a boolean CEL expression with some variables unknown: logical
/// operators combine three-valued results (so `true || unknown` is true, as cel-go's partial
/// evaluation gives), anything else is evaluated if it names no missing variable and is
/// partial otherwise.
fn eval_expr(expr: &IdedExpr, ctx: &Context<'_, '_>, missing: &[&str]) -> Result<Tri, String> {
    if let Expr::Call(call) = &expr.expr
        && call.target.is_none()
    {
        match (call.func_name.as_str(), call.args.as_slice()) {
            ("_&&_", [left, right]) => {
                let left = eval_expr(left, ctx, missing);
                if matches!(left, Ok(Tri::False)) {
                    return Ok(Tri::False);
                }
                let right = eval_expr(right, ctx, missing);
                return match (left, right) {
                    (_, Ok(Tri::False)) => Ok(Tri::False),
                    (Ok(left), Ok(right)) => Ok(left.and(right)),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                };
            }
            ("_||_", [left, right]) => {
                let left = eval_expr(left, ctx, missing);
                if matches!(left, Ok(Tri::True)) {
                    return Ok(Tri::True);
                }
                let right = eval_expr(right, ctx, missing);
                return match (left, right) {
                    (_, Ok(Tri::True)) => Ok(Tri::True),
                    (Ok(left), Ok(right)) => Ok(left.or(right)),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                };
            }
            ("!_", [operand]) => return eval_expr(operand, ctx, missing).map(Tri::not),
            ("_?_:_", [condition, then, otherwise]) => {
                return match eval_expr(condition, ctx, missing)? {
                    Tri::True => eval_expr(then, ctx, missing),
                    Tri::False => eval_expr(otherwise, ctx, missing),
                    Tri::Partial(names) => {
                        let mut all = Tri::Partial(names);
                        for branch in [then, otherwise] {
                            if let Tri::Partial(more) = eval_expr(branch, ctx, missing)? {
                                all = all.and(Tri::Partial(more));
                            }
                        }
                        Ok(all)
                    }
                };
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        let references = expr.references();
        let mut names: Vec<String> = missing
            .iter()
            .filter(|name| references.has_variable(name))
            .map(|name| (*name).to_owned())
            .collect();
        if !names.is_empty() {
            names.sort();
            names.dedup();
            return Ok(Tri::Partial(names));
        }
    }
    match ctx.resolve(expr) {
        Ok(Value::Bool(true)) => Ok(Tri::True),
        Ok(Value::Bool(false)) => Ok(Tri::False),
        Ok(other) => Err(format!("expected a boolean, got {other:?}")),
        Err(err) => Err(err.to_string()),
    }
}

/// SpiceDB's `ipaddress` caveat type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IpAddress(IpAddr);

impl Opaque for IpAddress {
    fn runtime_type_name(&self) -> &str {
        "ipaddress"
    }
}

/// `ip.in_cidr('10.0.0.0/8')`.
fn in_cidr(This(this): This<Arc<dyn Opaque>>, cidr: Arc<String>) -> Result<bool, ExecutionError> {
    let Some(IpAddress(address)) = this.downcast_ref::<IpAddress>() else {
        return Err(ExecutionError::function_error(
            "in_cidr",
            "the receiver is not an ipaddress",
        ));
    };
    let (network, prefix) = parse_cidr(&cidr).ok_or_else(|| {
        ExecutionError::function_error("in_cidr", format!("invalid CIDR `{cidr}`"))
    })?;
    Ok(cidr_contains(network, prefix, *address))
}

/// Parses `address/prefix`.
fn parse_cidr(text: &str) -> Option<(IpAddr, u32)> {
    let (address, prefix) = text.split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((address, prefix))
}

/// Whether `address` lies in `network/prefix` (never across address families).
fn cidr_contains(network: IpAddr, prefix: u32, address: IpAddr) -> bool {
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

/// Converts a JSON context value to the CEL value of a parameter type, as SpiceDB's type
/// converters do (JSON numbers arrive as doubles, so integral doubles are accepted for
/// `int` and `uint`).
fn to_cel(json: &Json, param_type: &CaveatType) -> Result<Value, String> {
    let mismatch = || format!("value `{json}` is not a valid {param_type}");
    Ok(match param_type {
        CaveatType::Any => any_to_cel(json),
        CaveatType::Bool => Value::Bool(json.as_bool().ok_or_else(mismatch)?),
        CaveatType::String => {
            Value::String(Arc::new(json.as_str().ok_or_else(mismatch)?.to_owned()))
        }
        CaveatType::Int => {
            if let Some(int) = json.as_i64() {
                Value::Int(int)
            } else {
                let double = json.as_f64().ok_or_else(mismatch)?;
                if double.fract() != 0.0 || !(-9.2e18..9.2e18).contains(&double) {
                    return Err(mismatch());
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "checked integral and in range"
                )]
                Value::Int(double as i64)
            }
        }
        CaveatType::Uint => {
            if let Some(uint) = json.as_u64() {
                Value::UInt(uint)
            } else {
                let double = json.as_f64().ok_or_else(mismatch)?;
                if double.fract() != 0.0 || !(0.0..1.8e19).contains(&double) {
                    return Err(mismatch());
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "checked integral, non-negative and in range"
                )]
                Value::UInt(double as u64)
            }
        }
        CaveatType::Double => Value::Float(json.as_f64().ok_or_else(mismatch)?),
        CaveatType::Bytes => Value::Bytes(Arc::new(
            json.as_str().ok_or_else(mismatch)?.as_bytes().to_vec(),
        )),
        CaveatType::Duration => {
            let text = json.as_str().ok_or_else(mismatch)?;
            Value::Duration(parse_go_duration(text).ok_or_else(mismatch)?)
        }
        CaveatType::Timestamp => {
            let text = json.as_str().ok_or_else(mismatch)?;
            Value::Timestamp(chrono::DateTime::parse_from_rfc3339(text).map_err(|_| mismatch())?)
        }
        CaveatType::IpAddress => {
            let text = json.as_str().ok_or_else(mismatch)?;
            let address: IpAddr = text.parse().map_err(|_| mismatch())?;
            Value::Opaque(Arc::new(IpAddress(address)))
        }
        CaveatType::List(inner) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let values = items
                .iter()
                .map(|item| to_cel(item, inner))
                .collect::<Result<Vec<_>, _>>()?;
            Value::List(Arc::new(values))
        }
        CaveatType::Map(inner) => {
            let object = json.as_object().ok_or_else(mismatch)?;
            let mut map = HashMap::with_capacity(object.len());
            for (key, item) in object {
                map.insert(Key::String(Arc::new(key.clone())), to_cel(item, inner)?);
            }
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    })
}

/// Converts a JSON value of an `any` parameter (numbers become doubles, as protobuf
/// `Struct` values do in SpiceDB).
fn any_to_cel(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(value) => Value::Bool(*value),
        Json::Number(number) => Value::Float(number.as_f64().unwrap_or(f64::NAN)),
        Json::String(text) => Value::String(Arc::new(text.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(any_to_cel).collect())),
        Json::Object(object) => {
            let map: HashMap<Key, Value> = object
                .iter()
                .map(|(key, item)| (Key::String(Arc::new(key.clone())), any_to_cel(item)))
                .collect();
            Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// Parses a Go duration string (`1h30m`, `1.5s`, `-300ms`, `0`).
fn parse_go_duration(text: &str) -> Option<chrono::Duration> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|ch: char| ch.is_ascii_digit() || ch == '.')
            .unwrap_or(rest.len());
        let unit_nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_nanos += number * unit_nanos;
    }
    if total_nanos > 9.2e18 {
        return None;
    }
    #[expect(clippy::cast_possible_truncation, reason = "range checked above")]
    let nanos = total_nanos.round() as i64;
    Some(chrono::Duration::nanoseconds(if negative {
        -nanos
    } else {
        nanos
    }))
}

#[cfg(test)]
mod tests {
    use ostiary_schema::compile_str;
    use serde_json::json;

    use super::*;

    fn run(caveat_text: &str, stored: Json, request: Json) -> Result<Tri, EngineError> {
        let schema = compile_str("t.zed", &format!("definition user {{}}\n\n{caveat_text}\n"))
            .unwrap()
            .schema;
        let caveat = &schema.caveats[0];
        let stored = stored.as_object().cloned().unwrap_or_default();
        let request = request.as_object().cloned().unwrap_or_default();
        evaluate(caveat, &stored, &request)
    }

    #[test]
    fn kleene_logic() {
        assert_eq!(Tri::True.or(Tri::Partial(vec!["a".into()])), Tri::True);
        assert_eq!(Tri::False.and(Tri::Partial(vec!["a".into()])), Tri::False);
        assert_eq!(
            Tri::Partial(vec!["b".into()]).or(Tri::Partial(vec!["a".into(), "c".into()])),
            Tri::Partial(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            Tri::Partial(vec!["a".into()]).not(),
            Tri::Partial(vec!["a".into()])
        );
        assert_eq!(Tri::True.not(), Tri::False);
    }

    #[test]
    fn ints_and_missing_params() {
        let caveat = "caveat c(limit int, used int) { used < limit }";
        assert_eq!(
            run(caveat, json!({"limit": 10}), json!({"used": 3})).unwrap(),
            Tri::True
        );
        assert_eq!(
            run(caveat, json!({"limit": 10}), json!({"used": 30})).unwrap(),
            Tri::False
        );
        assert_eq!(
            run(caveat, json!({"limit": 10}), json!({})).unwrap(),
            Tri::Partial(vec!["used".into()])
        );
        // The stored value wins over the request's.
        assert_eq!(
            run(
                caveat,
                json!({"limit": 10}),
                json!({"limit": 100, "used": 30})
            )
            .unwrap(),
            Tri::False
        );
        assert!(matches!(
            run(caveat, json!({"limit": "ten"}), json!({"used": 1})),
            Err(EngineError::CaveatContext { .. })
        ));
    }

    #[test]
    fn partial_logic_inside_expressions() {
        let caveat = "caveat c(a bool, b bool) { a || b }";
        assert_eq!(
            run(caveat, json!({}), json!({"b": true})).unwrap(),
            Tri::True
        );
        assert_eq!(
            run(caveat, json!({}), json!({"b": false})).unwrap(),
            Tri::Partial(vec!["a".into()])
        );
        let caveat = "caveat c(a bool, b bool) { a && b }";
        assert_eq!(
            run(caveat, json!({}), json!({"b": false})).unwrap(),
            Tri::False
        );
        assert_eq!(
            run(caveat, json!({}), json!({})).unwrap(),
            Tri::Partial(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn ip_addresses() {
        let caveat = "caveat c(ip ipaddress, cidr string) { ip.in_cidr(cidr) }";
        assert_eq!(
            run(
                caveat,
                json!({"cidr": "10.0.0.0/8"}),
                json!({"ip": "10.2.3.4"})
            )
            .unwrap(),
            Tri::True
        );
        assert_eq!(
            run(
                caveat,
                json!({"cidr": "10.1.0.0/16"}),
                json!({"ip": "10.2.3.4"})
            )
            .unwrap(),
            Tri::False
        );
        assert_eq!(
            run(caveat, json!({"cidr": "::1/128"}), json!({"ip": "::1"})).unwrap(),
            Tri::True
        );
    }

    #[test]
    fn timestamps_durations_lists_maps() {
        let caveat = "caveat c(now timestamp, start timestamp, ttl duration) { now < start + ttl }";
        let stored = json!({"start": "2024-01-01T00:00:00Z", "ttl": "1h30m"});
        assert_eq!(
            run(
                caveat,
                stored.clone(),
                json!({"now": "2024-01-01T01:00:00Z"})
            )
            .unwrap(),
            Tri::True
        );
        assert_eq!(
            run(caveat, stored, json!({"now": "2024-01-01T02:00:00Z"})).unwrap(),
            Tri::False
        );
        let caveat = "caveat c(allowed list<string>, who string) { who in allowed }";
        assert_eq!(
            run(caveat, json!({"allowed": ["a", "b"]}), json!({"who": "b"})).unwrap(),
            Tri::True
        );
        let caveat = "caveat c(attrs map<any>) { attrs.level > 2.0 }";
        assert_eq!(
            run(caveat, json!({"attrs": {"level": 3}}), json!({})).unwrap(),
            Tri::True
        );
        assert_eq!(
            parse_go_duration("-1.5s"),
            Some(chrono::Duration::milliseconds(-1500))
        );
        assert_eq!(parse_go_duration("1x"), None);
    }
}
