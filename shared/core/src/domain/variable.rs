use serde_json::Value;

use super::{AppId, ConversationId, Invalid, Timestamp, VariableId};

/// A conversation variable (Chatflow memory) with a typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationVariable {
    pub id: VariableId,
    pub app_id: AppId,
    pub conversation_id: ConversationId,
    pub name: String,
    pub value_type: ValueType,
    pub value: Value,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Dify's segment types a conversation variable can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Secret,
    Number,
    Integer,
    Float,
    Boolean,
    Object,
    File,
    ArrayString,
    ArrayNumber,
    ArrayBoolean,
    ArrayObject,
    ArrayFile,
    ArrayAny,
}

impl ValueType {
    const NAMES: [(ValueType, &'static str); 14] = [
        (Self::String, "string"),
        (Self::Secret, "secret"),
        (Self::Number, "number"),
        (Self::Integer, "integer"),
        (Self::Float, "float"),
        (Self::Boolean, "boolean"),
        (Self::Object, "object"),
        (Self::File, "file"),
        (Self::ArrayString, "array[string]"),
        (Self::ArrayNumber, "array[number]"),
        (Self::ArrayBoolean, "array[boolean]"),
        (Self::ArrayObject, "array[object]"),
        (Self::ArrayFile, "array[file]"),
        (Self::ArrayAny, "array[any]"),
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(t, _)| *t == self).map(|(_, n)| *n).unwrap_or("string")
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::NAMES
            .iter()
            .find(|(_, name)| *name == raw)
            .map(|(t, _)| *t)
            .ok_or_else(|| Invalid(format!("unknown variable type '{raw}'")))
    }

    /// The value a variable of this type starts with when none is given.
    pub fn empty_value(self) -> Value {
        match self {
            Self::String | Self::Secret => Value::String(String::new()),
            Self::Number | Self::Integer | Self::Float => Value::from(0),
            Self::Boolean => Value::Bool(false),
            Self::Object | Self::File => Value::Object(serde_json::Map::new()),
            _ => Value::Array(Vec::new()),
        }
    }

    /// Whether `value` fits this type. Integers are widened to numbers, as Dify does.
    pub fn accepts(self, value: &Value) -> bool {
        let all = |check: fn(&Value) -> bool| value.as_array().is_some_and(|items| items.iter().all(check));
        match self {
            Self::String | Self::Secret => value.is_string(),
            Self::Number | Self::Integer | Self::Float => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Object | Self::File => value.is_object(),
            Self::ArrayString => all(Value::is_string),
            Self::ArrayNumber => all(Value::is_number),
            Self::ArrayBoolean => all(Value::is_boolean),
            Self::ArrayObject | Self::ArrayFile => all(Value::is_object),
            Self::ArrayAny => value.is_array(),
        }
    }
}

/// The JSON type name of a value, in the words of Dify's type-mismatch message.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "none",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Renders a value as Python's `str()` does, which is what Dify's variable `value` field
/// holds: strings as-is, `True`/`False`/`None`, and containers as their Python repr.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => python_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python_string_repr(k), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn python_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        let text = format!("{f:?}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp:0>2}"),
            Some((mantissa, exp)) => format!("{mantissa}e-{:0>2}", &exp[1..]),
            None => text,
        }
    }
}

fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `variable_name` of the variables list: a case-insensitive substring filter restricted
/// to letters, digits, `-`, `_` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableNameFilter(String);

impl VariableNameFilter {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.chars().count() > 255 {
            return Err(Invalid("variable_name: must be 1 to 255 characters".into()));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(Invalid(
                "Variable name can only contain letters, numbers, hyphens (-), underscores (_), and periods (.)".into(),
            ));
        }
        let lower = raw.to_ascii_lowercase();
        if ["--", "sp_", "xp_"].iter().any(|pattern| lower.contains(pattern)) {
            return Err(Invalid("Variable name contains invalid characters".into()));
        }
        Ok(Self(lower))
    }

    pub fn matches(&self, name: &str) -> bool {
        name.to_lowercase().contains(&self.0)
    }

    /// The lower-cased needle, for adapters that filter in their query language.
    pub fn needle(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_checks() {
        assert!(ValueType::Integer.accepts(&json!(1.5)));
        assert!(ValueType::Number.accepts(&json!(3)));
        assert!(!ValueType::Number.accepts(&json!("3")));
        assert!(ValueType::ArrayString.accepts(&json!(["a", "b"])));
        assert!(!ValueType::ArrayString.accepts(&json!(["a", 1])));
        assert!(ValueType::Object.accepts(&json!({"a": 1})));
        assert!(!ValueType::String.accepts(&Value::Null));
        assert_eq!(ValueType::parse("array[number]").unwrap(), ValueType::ArrayNumber);
        assert!(ValueType::parse("list").is_err());
    }

    #[test]
    fn values_render_like_python_str() {
        assert_eq!(python_str(&json!("plain")), "plain");
        assert_eq!(python_str(&json!(1)), "1");
        assert_eq!(python_str(&json!(1.5)), "1.5");
        assert_eq!(python_str(&json!(2.0)), "2.0");
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!({"a": 1, "b": [true, null, "x"]})), "{'a': 1, 'b': [True, None, 'x']}");
        assert_eq!(python_str(&json!(["it's"])), "[\"it's\"]");
        assert_eq!(python_str(&json!(["a\nb"])), "['a\\nb']");
    }

    #[test]
    fn name_filters() {
        let filter = VariableNameFilter::parse("Mem").unwrap();
        assert!(filter.matches("long_memory"));
        assert!(!filter.matches("other"));
        assert!(VariableNameFilter::parse("a b").is_err());
        assert!(VariableNameFilter::parse("a--b").is_err());
        assert!(VariableNameFilter::parse("").is_err());
        assert!(VariableNameFilter::parse("user.name-1_x").is_ok());
    }
}
