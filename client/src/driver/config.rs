//! Reading a task's driver `config` map with clear errors: a missing `command`, an `args`
//! that is not a list of strings or an unknown key becomes a `Driver Failure` event that
//! says which key and what was expected, never a panic.

use std::time::Duration;

use serde_json::Value;
use stead_model::{Nanos, OpaqueMap};

use super::DriverError;

/// The `config` of one task for one driver.
pub struct ConfigFields<'a> {
    driver: &'static str,
    map: &'a OpaqueMap,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl<'a> ConfigFields<'a> {
    /// Fails on keys outside `known`, as Nomad's drivers reject what their schema lacks.
    pub fn new(driver: &'static str, map: &'a OpaqueMap, known: &[&str]) -> Result<Self, DriverError> {
        if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(DriverError::Config(format!(
                "invalid {driver} config: unknown key \"{key}\" ({driver} accepts: {})",
                known.join(", ")
            )));
        }
        Ok(Self { driver, map })
    }

    fn err(&self, key: &str, what: &str, got: &Value) -> DriverError {
        DriverError::Config(format!("invalid {} config: \"{key}\" must be {what}, not {}", self.driver, kind(got)))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, DriverError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(key, "a string", other)),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, DriverError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(DriverError::Config(format!("invalid {} config: \"{key}\" is required", self.driver))),
        }
    }

    pub fn string_list(&self, key: &str) -> Result<Vec<String>, DriverError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    // HCL numbers in an args list are meant as text.
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(self.err(key, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(self.err(key, "a list of strings", other)),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, DriverError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
            Some(other) => Err(self.err(key, "an integer", other)),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, DriverError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(self.err(key, "a boolean", other)),
        }
    }

    /// A Go duration string (`"10s"`) or integer nanoseconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, DriverError> {
        let nanos = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s
                .parse::<Nanos>()
                .map_err(|e| DriverError::Config(format!("invalid {} config: \"{key}\": {e}", self.driver)))?,
            Some(Value::Number(n)) if n.as_i64().is_some() => Nanos(n.as_i64().unwrap_or(0)),
            Some(other) => return Err(self.err(key, "a duration such as \"10s\"", other)),
        };
        nanos.to_std().map(Some).ok_or_else(|| {
            DriverError::Config(format!("invalid {} config: \"{key}\" must not be negative", self.driver))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> OpaqueMap {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn typed_fields_read_and_wrong_types_say_what_was_expected() {
        let m = map(json!({"command": "/bin/sh", "args": ["-c", 1], "n": "3", "d": "1.5s", "b": true}));
        let f = ConfigFields::new("raw_exec", &m, &["command", "args", "n", "d", "b"]).unwrap();
        assert_eq!(f.required_string("command").unwrap(), "/bin/sh");
        assert_eq!(f.string_list("args").unwrap(), vec!["-c", "1"]);
        assert_eq!(f.int("n").unwrap(), Some(3));
        assert_eq!(f.duration("d").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(f.bool("b").unwrap(), Some(true));
        assert_eq!(f.string("missing").unwrap(), None);

        let bad = map(json!({"command": 5, "args": "x"}));
        let f = ConfigFields::new("raw_exec", &bad, &["command", "args"]).unwrap();
        assert_eq!(
            f.required_string("command").unwrap_err().to_string(),
            "invalid raw_exec config: \"command\" must be a string, not a number"
        );
        assert_eq!(
            f.string_list("args").unwrap_err().to_string(),
            "invalid raw_exec config: \"args\" must be a list of strings, not a string"
        );
    }

    #[test]
    fn missing_required_and_unknown_keys_are_config_errors() {
        let m = map(json!({"args": []}));
        let f = ConfigFields::new("raw_exec", &m, &["command", "args"]).unwrap();
        let e = f.required_string("command").unwrap_err();
        assert_eq!(e.to_string(), "invalid raw_exec config: \"command\" is required");
        assert!(!e.recoverable());
        let m = map(json!({"comand": "x"}));
        let e = ConfigFields::new("raw_exec", &m, &["command", "args"]).err().unwrap();
        assert_eq!(e.to_string(), "invalid raw_exec config: unknown key \"comand\" (raw_exec accepts: command, args)");
    }
}
