//! `template.yaml` as the checks read it: short-form intrinsics in their long form, the
//! functions, the role each runs as and the IAM statements that role grants.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// The template with short-form intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub s`, `!If [...]`)
/// turned into their long form (`{Ref: X}`, `{Fn::GetAtt: [A, B]}`, `{Fn::Sub: s}`, ...), so
/// the checks see one shape whichever the template uses.
pub fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let value: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    long_form(value)
}

pub fn long_form(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').unwrap_or((&s, ""));
                        (
                            "Fn::GetAtt".to_string(),
                            Value::Sequence(vec![resource.into(), attribute.into()]),
                        )
                    }
                    other => ("Fn::GetAtt".to_string(), other),
                },
                other => (format!("Fn::{other}"), inner),
            };
            let mut map = Mapping::new();
            map.insert(Value::String(key), inner);
            Value::Mapping(map)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(long_form).collect()),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (long_form(k), long_form(v)))
                .collect(),
        ),
        other => other,
    }
}

pub fn intrinsic(name: &str, value: impl Into<Value>) -> Value {
    let mut map = Mapping::new();
    map.insert(Value::String(name.to_string()), value.into());
    Value::Mapping(map)
}

pub fn reference(logical_id: &str) -> Value {
    intrinsic("Ref", logical_id)
}

pub fn get_att(logical_id: &str, attribute: &str) -> Value {
    intrinsic(
        "Fn::GetAtt",
        Value::Sequence(vec![logical_id.into(), attribute.into()]),
    )
}

pub fn sub(template: &str) -> Value {
    intrinsic("Fn::Sub", template)
}

pub fn is_no_value(value: &Value) -> bool {
    value == &reference("AWS::NoValue")
}

/// A value that may be one item or a list of them, as IAM allows.
pub fn one_or_many(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

/// Every string inside a value, intrinsic arguments included.
pub fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Mapping(map) => map.values().for_each(|v| strings_in(v, out)),
        Value::Tagged(tagged) => strings_in(&tagged.value, out),
        _ => {}
    }
}

pub struct Template {
    pub root: Value,
}

/// One `AWS::Serverless::Function`.
pub struct Function<'a> {
    pub logical_id: &'a str,
    pub binary: String,
    pub resource: &'a Value,
}

impl<'a> Function<'a> {
    pub fn property(&self, name: &str) -> Option<&'a Value> {
        self.resource.get("Properties").and_then(|p| p.get(name))
    }
}

/// One IAM statement and where it was found.
#[derive(Clone, Debug)]
pub struct Statement {
    pub place: String,
    pub body: Value,
    /// A branch of an `Fn::If`: in force only under its condition.
    pub conditional: bool,
}

impl Statement {
    pub fn actions(&self) -> Vec<String> {
        one_or_many(self.body.get("Action").unwrap_or(&Value::Null))
            .iter()
            .map(text)
            .collect()
    }

    pub fn resources(&self) -> Vec<Value> {
        one_or_many(self.body.get("Resource").unwrap_or(&Value::Null))
    }

    pub fn allows(&self) -> bool {
        self.body.get("Effect").and_then(Value::as_str) == Some("Allow")
    }

    pub fn denies(&self) -> bool {
        self.body.get("Effect").and_then(Value::as_str) == Some("Deny")
    }
}

impl Template {
    pub fn load() -> Self {
        Self { root: template() }
    }

    pub fn resources(&self) -> &Mapping {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .expect("the template has Resources")
    }

    pub fn resource(&self, logical_id: &str) -> &Value {
        self.resources()
            .get(logical_id)
            .unwrap_or_else(|| panic!("the template has no resource {logical_id}"))
    }

    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .iter()
            .filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, resource)| (id.as_str().expect("logical ids are strings"), resource))
    }

    pub fn parameter(&self, name: &str) -> &Value {
        self.root
            .get("Parameters")
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("the template has no parameter {name}"))
    }

    pub fn condition(&self, name: &str) -> &Value {
        self.root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .unwrap_or_else(|| panic!("the template has no condition {name}"))
    }

    pub fn global_function_property(&self, name: &str) -> Option<&Value> {
        self.root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get(name))
    }

    pub fn functions(&self) -> Vec<Function<'_>> {
        self.of_type("AWS::Serverless::Function")
            .map(|(logical_id, resource)| {
                let binary = resource
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|p| p.get("Binary"))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| {
                        panic!("{logical_id} has no Metadata.BuildProperties.Binary")
                    })
                    .to_string();
                Function {
                    logical_id,
                    binary,
                    resource,
                }
            })
            .collect()
    }

    /// A function property as deployed: the function's own value, else the Globals one.
    pub fn effective<'a>(&'a self, function: &Function<'a>, name: &str) -> Option<&'a Value> {
        function
            .property(name)
            .or_else(|| self.global_function_property(name))
    }

    /// The environment variables a function gets: Globals merged with its own.
    pub fn environment(&self, function: &Function<'_>) -> BTreeMap<String, Value> {
        let mut vars = BTreeMap::new();
        for source in [
            self.global_function_property("Environment"),
            function.property("Environment"),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(map) = source.get("Variables").and_then(Value::as_mapping) {
                for (k, v) in map {
                    vars.insert(text(k), v.clone());
                }
            }
        }
        vars
    }

    /// The logical id of the role a function runs as (its `Role: !GetAtt X.Arn`).
    pub fn role_of(&self, function: &Function<'_>) -> String {
        let role = function.property("Role").unwrap_or_else(|| {
            panic!(
                "{} has no Role: give every function its own role",
                function.logical_id
            )
        });
        let target = role
            .get("Fn::GetAtt")
            .and_then(Value::as_sequence)
            .filter(|parts| parts.get(1).and_then(Value::as_str) == Some("Arn"))
            .and_then(|parts| parts.first())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: Role must be !GetAtt <Role>.Arn", function.logical_id));
        assert_eq!(
            self.resource(target).get("Type").and_then(Value::as_str),
            Some("AWS::IAM::Role"),
            "{} runs as {target}, which is not an AWS::IAM::Role of this template",
            function.logical_id
        );
        target.to_string()
    }

    /// The statements of a role's inline policies, with `Fn::If` branches spread out.
    pub fn role_statements(&self, role: &str) -> Vec<Statement> {
        let mut out = Vec::new();
        let policies = self
            .resource(role)
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .map(one_or_many)
            .unwrap_or_default();
        for policy in policies {
            let name = policy.get("PolicyName").map(text).unwrap_or_default();
            let document = policy.get("PolicyDocument").cloned().unwrap_or_default();
            collect_statements(&format!("{role}/{name}"), &document, &mut out);
        }
        out
    }

    pub fn function_statements(&self, function: &Function<'_>) -> Vec<Statement> {
        let mut statements = self.role_statements(&self.role_of(function));
        // SAM policies on the function itself would be granted too.
        if let Some(policies) = function.property("Policies") {
            for (i, policy) in one_or_many(policies).iter().enumerate() {
                let place = format!("{}/Policies[{i}]", function.logical_id);
                match policy {
                    Value::Mapping(map) if map.contains_key("Statement") => {
                        collect_statements(&place, policy, &mut statements)
                    }
                    other => panic!(
                        "{place}: SAM policy templates and managed policies grant more than a function needs; write statements ({other:?})"
                    ),
                }
            }
        }
        statements
    }

    /// Every IAM statement of the template, wherever it is.
    pub fn all_statements(&self) -> Vec<Statement> {
        let mut out = Vec::new();
        for (id, resource) in self.resources() {
            let id = text(id);
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            let properties = resource.get("Properties").cloned().unwrap_or_default();
            match kind {
                "AWS::IAM::Role" => out.extend(self.role_statements(&id)),
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    let document = properties
                        .get("PolicyDocument")
                        .cloned()
                        .unwrap_or_default();
                    collect_statements(&id, &document, &mut out);
                }
                "AWS::Serverless::Function" => {
                    assert!(
                        properties.get("Policies").is_none(),
                        "{id}: put the function's permissions on its own role"
                    );
                }
                _ => {}
            }
        }
        out
    }
}

pub fn collect_statements(place: &str, document: &Value, out: &mut Vec<Statement>) {
    let statements = document
        .get("Statement")
        .map(one_or_many)
        .unwrap_or_default();
    for (i, statement) in statements.into_iter().enumerate() {
        let place = format!("{place}#{i}");
        if let Some(branches) = statement.get("Fn::If").and_then(Value::as_sequence) {
            for branch in branches.iter().skip(1) {
                if !is_no_value(branch) {
                    out.push(Statement {
                        place: place.clone(),
                        body: branch.clone(),
                        conditional: true,
                    });
                }
            }
        } else {
            out.push(Statement {
                place,
                body: statement,
                conditional: false,
            });
        }
    }
}
