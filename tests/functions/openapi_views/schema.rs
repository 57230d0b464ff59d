//! A small checker of JSON values against the schemas of `openapi.yaml`, for response bodies.
//!
//! It knows the keywords the document's response schemas use (`type` with type lists for
//! nullable values, `properties`, `required`, `additionalProperties`, `items`, `enum`,
//! `const`, `format: uuid`, `allOf`, `anyOf`, `oneOf`, `$ref` within the document) and fails
//! on any other, so a schema it cannot check is never passed silently.
//!
//! Objects are checked exactly: an object sends every property its schema declares and no
//! other, unless the schema sets `additionalProperties: true` (or a schema); an object schema
//! without `properties` is free-form. The declared properties of a composed schema are those
//! of the node, of each `allOf` part and of the `anyOf`/`oneOf` branches the value matches.

use std::collections::BTreeSet;

use serde_json::Value;

/// Keywords that only describe, and are not checked.
const ANNOTATIONS: [&str; 5] = ["description", "title", "example", "examples", "default"];

/// Keywords the checker checks.
const CHECKED: [&str; 13] = [
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "format",
    "allOf",
    "anyOf",
    "oneOf",
    // Checked by the caller, which validates the embedded JSON against `contentSchema`.
    "contentSchema",
];

/// What a schema node declares about an object's keys.
#[derive(Debug, Clone, Default)]
struct Declared {
    names: BTreeSet<String>,
    /// Some part of the schema lists `properties`, so the object is not free-form.
    listed: bool,
    /// Some part allows other keys.
    open: bool,
}

impl Declared {
    fn merge(&mut self, other: Declared) {
        self.names.extend(other.names);
        self.listed |= other.listed;
        self.open |= other.open;
    }
}

/// Checks values against the schemas of one OpenAPI document.
pub struct Checker<'a> {
    document: &'a Value,
}

impl<'a> Checker<'a> {
    pub fn new(document: &'a Value) -> Self {
        Self { document }
    }

    /// Follows `$ref`s (`#/...` pointers into the document) to the schema they name.
    pub fn resolve<'s>(&'s self, mut schema: &'s Value) -> &'s Value {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { return schema };
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference}: not within the document"));
            schema = self.document.pointer(pointer).unwrap_or_else(|| panic!("{reference}: no such schema"));
        }
        panic!("a cycle of $refs");
    }

    /// Every way `value` differs from `schema`, with where (`at` names the value).
    pub fn check(&self, value: &Value, schema: &Value, at: &str) -> Vec<String> {
        let mut errors = Vec::new();
        self.whole(value, schema, at, &mut errors);
        errors
    }

    /// A complete value: its shape, then (for an object) exactly its declared keys.
    fn whole(&self, value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
        let declared = self.shape(value, schema, at, errors);
        exactly(value, &declared, at, errors);
    }

    /// Everything but the exact keys of `value` itself, which depend on the whole schema;
    /// returns what this node declares about them.
    fn shape(&self, value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) -> Declared {
        let schema = self.resolve(schema);
        let mut declared = Declared::default();
        let Some(keywords) = schema.as_object() else {
            errors.push(format!("{at}: the schema is not an object: {schema}"));
            return declared;
        };
        for keyword in keywords.keys() {
            if !CHECKED.contains(&keyword.as_str()) && !ANNOTATIONS.contains(&keyword.as_str()) {
                let supported = keyword == "contentMediaType" && keywords.contains_key("contentSchema");
                if !supported {
                    errors.push(format!("{at}: the checker does not know the keyword `{keyword}`"));
                }
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                other => panic!("{at}: a `type` of {other}"),
            };
            if !types.iter().any(|t| has_type(value, t)) {
                errors.push(format!("{at}: {} where the schema wants {}", type_of(value), types.join(" or ")));
                return declared;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {}", Value::Array(allowed.clone())));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            errors.push(format!("{at}: {value} where the schema wants {constant}"));
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => {
                if let Some(text) = value.as_str()
                    && uuid::Uuid::parse_str(text).is_err()
                {
                    errors.push(format!("{at}: {text:?} is not a UUID"));
                }
            }
            Some("binary") | None => {}
            Some(other) => errors.push(format!("{at}: the checker does not know the format `{other}`")),
        }
        if let Value::Object(object) = value {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                declared.listed = true;
                for (name, property) in properties {
                    declared.names.insert(name.clone());
                    if let Some(field) = object.get(name) {
                        self.whole(field, property, &format!("{at}.{name}"), errors);
                    }
                }
            }
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = name.as_str().expect("required names are strings");
                if !object.contains_key(name) {
                    errors.push(format!("{at}: the required `{name}` is missing"));
                }
            }
            match schema.get("additionalProperties") {
                None | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => declared.open = true,
                Some(other) => {
                    declared.open = true;
                    for (name, field) in object {
                        if !declared.names.contains(name) {
                            self.whole(field, other, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
        }
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for (index, element) in items.iter().enumerate() {
                self.whole(element, item, &format!("{at}[{index}]"), errors);
            }
        }
        for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            let part = self.shape(value, part, at, errors);
            declared.merge(part);
        }
        for (keyword, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(branches) = schema.get(keyword).and_then(Value::as_array) else { continue };
            let mut matched = Vec::new();
            let mut misses = Vec::new();
            for (index, branch) in branches.iter().enumerate() {
                let mut branch_errors = Vec::new();
                let branch_declared = self.shape(value, branch, at, &mut branch_errors);
                let mut combined = declared.clone();
                combined.merge(branch_declared.clone());
                exactly(value, &combined, at, &mut branch_errors);
                if branch_errors.is_empty() {
                    matched.push(branch_declared);
                } else {
                    misses.push(format!("branch {index}: {}", branch_errors.join("; ")));
                }
            }
            match matched.len() {
                0 => errors.push(format!("{at}: matches no branch of its {keyword} ({})", misses.join(" | "))),
                n if n > 1 && exactly_one => errors.push(format!("{at}: matches {n} branches of its oneOf")),
                _ => matched.into_iter().for_each(|branch| declared.merge(branch)),
            }
        }
        declared
    }
}

/// An object that lists its keys has exactly those keys (unless other keys are allowed).
fn exactly(value: &Value, declared: &Declared, at: &str, errors: &mut Vec<String>) {
    let Value::Object(object) = value else { return };
    if !declared.listed {
        return;
    }
    if !declared.open {
        for name in object.keys().filter(|name| !declared.names.contains(*name)) {
            errors.push(format!("{at}: sends `{name}`, which the schema does not declare"));
        }
    }
    for name in declared.names.iter().filter(|name| !object.contains_key(*name)) {
        errors.push(format!("{at}: the schema declares `{name}`, which is not sent"));
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    match wanted {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("an unknown type `{other}`"),
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        let document = json!({"components": {"schemas": {"Id": {"type": "string", "format": "uuid"}}}});
        let checker = Checker::new(&document);
        checker.check(&value, &schema, "body")
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        let object = json!({
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"$ref": "#/components/schemas/Id"}, "note": {"type": ["string", "null"]}},
        });
        let id = "3f2b9c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f";
        assert!(errors(object.clone(), json!({"id": id, "note": null})).is_empty());
        let cases = [
            (json!({"id": id}), "declares `note`, which is not sent"),
            (json!({"id": id, "note": 1}), "body.note: an integer where the schema wants string or null"),
            (json!({"id": "x", "note": "n"}), "is not a UUID"),
            (json!({"id": id, "note": "n", "more": 1}), "sends `more`"),
            (json!({"note": "n"}), "the required `id` is missing"),
        ];
        for (value, expected) in cases {
            let found = errors(object.clone(), value);
            assert!(found.iter().any(|e| e.contains(expected)), "{expected}: {found:?}");
        }

        let open = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": true});
        assert!(errors(open, json!({"a": 1, "b": 2})).is_empty());
        assert!(errors(json!({"type": "object"}), json!({"anything": [1]})).is_empty());

        let composed = json!({"allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            {"type": "object", "properties": {"b": {"type": "integer"}}},
        ]});
        assert!(errors(composed.clone(), json!({"a": 1, "b": 2})).is_empty());
        assert!(!errors(composed, json!({"a": 1, "b": 2, "c": 3})).is_empty());

        let events = json!({"oneOf": [
            {"type": "object", "properties": {"event": {"const": "a"}, "x": {"type": "integer"}}},
            {"type": "object", "properties": {"event": {"const": "b"}}},
        ]});
        assert!(errors(events.clone(), json!({"event": "a", "x": 1})).is_empty());
        assert!(errors(events.clone(), json!({"event": "b"})).is_empty());
        assert!(!errors(events.clone(), json!({"event": "b", "x": 1})).is_empty());
        assert!(!errors(events, json!({"event": "c"})).is_empty());

        let unknown = errors(json!({"type": "string", "nullable": true}), json!("x"));
        assert!(unknown.iter().any(|e| e.contains("does not know the keyword `nullable`")), "{unknown:?}");
    }
}
