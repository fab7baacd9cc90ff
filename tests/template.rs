//! The SAM template (`template.yaml`) checked against the route table and the code: every route
//! is deployed on the function that serves it, every function binary is deployed once, and the
//! roles' statements are well-formed and narrow. Which actions each role must grant is proven by
//! running the functions (`tests/iam.rs`), not by a list kept here. Any drift fails here.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};
use shared::http::routes::{functions, Operation, ROUTES};
use test_support::template::*;

// ---------------------------------------------------------------------------------------------
// What the code does, written down once (see shared/src/ops and shared/src/adapters/dynamodb.rs)

/// Operations that deliver a message: a code (SES or SNS), or a notice of the change to the
/// account's address (binding a contact, binding or unbinding a provider, a new password).
fn delivers_messages(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::SendVerification
            | Operation::BindContact
            | Operation::BindProvider
            | Operation::UnbindProvider
            | Operation::DeleteAccount
            | Operation::EditBasicInfo
            | Operation::ChangePassword
            | Operation::ResetPassword
    )
}

/// Operations that hash or verify a password with Argon2id.
fn hashes_passwords(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::SignUp
            | Operation::SignIn
            | Operation::Sudo
            | Operation::ChangePassword
            | Operation::ResetPassword
    )
}

/// Operations that talk to WeChat with the app secret.
fn calls_wechat(operation: Operation) -> bool {
    matches!(operation, Operation::GrantProviderToken)
}

/// Operations that check custom-login tickets with the keys of `AUTH_CUSTOM_LOGIN_KEYS`.
fn checks_custom_tickets(operation: Operation) -> bool {
    matches!(operation, Operation::SignInCustom)
}

/// The CloudBase SDK gives up on a call after this many seconds.
const SDK_DEADLINE_SECS: u64 = 10;

// ---------------------------------------------------------------------------------------------
// Reading the template

fn operations_of(function: &str) -> Vec<Operation> {
    ROUTES
        .iter()
        .filter(|r| r.function == function)
        .map(|r| r.operation)
        .collect()
}

fn granted_actions(statements: &[Statement], prefix: &str) -> BTreeSet<String> {
    statements
        .iter()
        .filter(|s| s.allows())
        .flat_map(Statement::actions)
        .filter(|a| a.starts_with(prefix))
        .collect()
}

fn grants(statements: &[Statement], action: &str) -> Vec<Statement> {
    statements
        .iter()
        .filter(|s| s.allows() && s.actions().iter().any(|a| a == action))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Routes and functions

#[test]
fn every_route_is_one_http_api_event_on_the_function_that_serves_it() {
    let template = Template::load();
    let mut events: Vec<(String, String, String)> = Vec::new();
    for function in template.functions() {
        let Some(map) = function.property("Events").and_then(Value::as_mapping) else {
            continue;
        };
        for (name, event) in map {
            assert_eq!(
                event.get("Type").and_then(Value::as_str),
                Some("HttpApi"),
                "{}: event {} is not an HttpApi event",
                function.logical_id,
                text(name)
            );
            let properties = event.get("Properties").expect("event properties");
            assert_eq!(
                properties.get("ApiId"),
                Some(&reference("AuthApi")),
                "{}: event {} is not on the AuthApi HTTP API",
                function.logical_id,
                text(name)
            );
            let method = text(properties.get("Method").expect("event Method"));
            let path = text(properties.get("Path").expect("event Path"));
            events.push((method.to_uppercase(), path, function.binary.clone()));
        }
    }
    for route in ROUTES {
        let matching: Vec<_> = events
            .iter()
            .filter(|(method, path, _)| method == route.method && path == route.path)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{} {} must be exactly one HttpApi event, found {matching:?}",
            route.method,
            route.path
        );
        assert_eq!(
            matching[0].2, route.function,
            "{} {} is deployed on `{}`, but the route table serves it from `{}`",
            route.method, route.path, matching[0].2, route.function
        );
    }
    for (method, path, binary) in &events {
        assert!(
            ROUTES.iter().any(|r| r.method == method && r.path == path),
            "`{binary}` has an event {method} {path} that the route table does not have"
        );
    }
}

#[test]
fn the_template_deploys_exactly_the_function_binaries_of_the_route_table() {
    let template = Template::load();
    let deployed: Vec<String> = template.functions().into_iter().map(|f| f.binary).collect();
    let unique: BTreeSet<&String> = deployed.iter().collect();
    assert_eq!(
        unique.len(),
        deployed.len(),
        "a binary is deployed twice: {deployed:?}"
    );
    let deployed: BTreeSet<String> = deployed.into_iter().collect();
    let routed: BTreeSet<String> = functions().into_iter().map(str::to_string).collect();
    assert_eq!(
        deployed, routed,
        "template functions (left) differ from the route table's functions (right)"
    );
}

#[test]
fn every_binary_of_the_functions_package_is_in_the_template_and_local_api_is_in_neither() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/functions/Cargo.toml");
    let manifest = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut binaries = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if in_bin {
            if let Some(value) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix('='))
            {
                binaries.insert(value.trim().trim_matches('"').to_string());
            }
        }
    }
    assert!(
        !binaries.contains("local-api"),
        "local-api has a package of its own (functions/local-api), so that what only it serves \
         never builds into a Lambda function: {binaries:?}"
    );

    let template = Template::load();
    let deployed: BTreeSet<String> = template.functions().into_iter().map(|f| f.binary).collect();
    assert!(
        !deployed.contains("local-api"),
        "local-api is the local server, not a Lambda function"
    );
    assert_eq!(
        binaries, deployed,
        "the [[bin]] targets of functions/Cargo.toml (left) differ from the template's functions (right)"
    );
}

#[test]
fn the_template_deploys_nothing_of_the_local_console() {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .expect("template.yaml is readable");
    for local_only in ["/_dev", "local-api", "console"] {
        let mentions: Vec<&str> = template
            .lines()
            .filter(|line| !line.trim_start().starts_with('#') && line.contains(local_only))
            .collect();
        assert!(
            mentions.is_empty(),
            "template.yaml deploys `{local_only}`: {mentions:?}"
        );
    }
}

#[test]
fn functions_are_rust_binaries_built_by_cargo_lambda_for_arm64() {
    let template = Template::load();
    for function in template.functions() {
        let id = function.logical_id;
        let metadata = function.resource.get("Metadata").expect("Metadata");
        assert_eq!(
            metadata.get("BuildMethod").and_then(Value::as_str),
            Some("rust-cargolambda"),
            "{id}: BuildMethod"
        );
        let code_uri = template.effective(&function, "CodeUri").map(text);
        assert!(
            matches!(
                code_uri.as_deref(),
                Some("functions" | "functions/" | "./functions" | "./functions/")
            ),
            "{id}: CodeUri must be the `functions` package directory, not {code_uri:?}"
        );
        let expect = |name: &str, want: Value| {
            assert_eq!(
                template.effective(&function, name),
                Some(&want),
                "{id}: {name}"
            );
        };
        expect("Runtime", "provided.al2023".into());
        expect("Handler", "bootstrap".into());
        expect("Architectures", Value::Sequence(vec!["arm64".into()]));
        assert!(
            function.property("InlineCode").is_none() && function.property("ImageUri").is_none(),
            "{id}: built from source only"
        );
    }
}

#[test]
fn each_function_logs_json_to_its_own_log_group_with_a_retention() {
    let template = Template::load();
    for function in template.functions() {
        let id = function.logical_id;
        let binary = &function.binary;
        assert_eq!(
            function.property("FunctionName"),
            Some(&sub(&format!("${{AWS::StackName}}-{binary}"))),
            "{id}: FunctionName"
        );
        let format = function
            .property("LoggingConfig")
            .and_then(|c| c.get("LogFormat"))
            .or_else(|| {
                template
                    .global_function_property("LoggingConfig")
                    .and_then(|c| c.get("LogFormat"))
            });
        assert_eq!(
            format.and_then(Value::as_str),
            Some("JSON"),
            "{id}: LogFormat"
        );

        let group_ref = function
            .property("LoggingConfig")
            .and_then(|c| c.get("LogGroup"))
            .and_then(|g| g.get("Ref"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup must !Ref its log group"));
        let group = template.resource(group_ref);
        assert_eq!(
            group.get("Type").and_then(Value::as_str),
            Some("AWS::Logs::LogGroup"),
            "{id}: {group_ref}"
        );
        let properties = group.get("Properties").expect("log group properties");
        assert_eq!(
            properties.get("LogGroupName"),
            Some(&sub(&format!("/aws/lambda/${{AWS::StackName}}-{binary}"))),
            "{id}: the log group is /aws/lambda/<function name>"
        );
        assert_eq!(
            properties.get("RetentionInDays"),
            Some(&reference("LogRetentionDays")),
            "{id}: RetentionInDays"
        );

        let statements = template.function_statements(&function);
        let log_writes = grants(&statements, "logs:PutLogEvents");
        assert!(!log_writes.is_empty(), "{id}: cannot write its logs");
        for statement in log_writes
            .iter()
            .chain(grants(&statements, "logs:CreateLogStream").iter())
        {
            assert_eq!(
                statement.resources(),
                vec![get_att(group_ref, "Arn")],
                "{}: logs only into the function's own group",
                statement.place
            );
        }
        assert!(
            grants(&statements, "logs:CreateLogGroup").is_empty(),
            "{id}: the template creates the log group"
        );
    }
}

#[test]
fn each_function_runs_as_a_role_of_its_own() {
    let template = Template::load();
    let mut seen = BTreeMap::new();
    for function in template.functions() {
        let role = template.role_of(&function);
        if let Some(other) = seen.insert(role.clone(), function.binary.clone()) {
            panic!("`{}` and `{other}` share the role {role}", function.binary);
        }
        let trust = template
            .resource(&role)
            .get("Properties")
            .and_then(|p| p.get("AssumeRolePolicyDocument"))
            .expect("AssumeRolePolicyDocument");
        let mut principals = Vec::new();
        strings_in(trust, &mut principals);
        assert!(
            principals.iter().any(|s| s == "lambda.amazonaws.com"),
            "{role} is not assumable by Lambda"
        );
        let managed = template
            .resource(&role)
            .get("Properties")
            .and_then(|p| p.get("ManagedPolicyArns"));
        assert!(
            managed.is_none(),
            "{role}: managed policies grant more than the function needs"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Least privilege

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let template = Template::load();
    let statements = template.all_statements();
    assert!(!statements.is_empty());
    for statement in statements {
        assert!(
            statement.body.get("NotAction").is_none()
                && statement.body.get("NotResource").is_none(),
            "{}: NotAction/NotResource grant everything else",
            statement.place
        );
        let actions = statement.actions();
        assert!(!actions.is_empty(), "{}: no Action", statement.place);
        for action in actions {
            assert!(
                !action.contains('*') && !action.contains('?') && action.contains(':'),
                "{}: `{action}` is a wildcard action",
                statement.place
            );
        }
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_resource_except_publishing_sms() {
    let template = Template::load();
    for statement in template.all_statements() {
        let resources = statement.resources();
        assert!(!resources.is_empty(), "{}: no Resource", statement.place);
        assert!(
            statement.allows() || statement.denies(),
            "{}: Effect is Allow or Deny",
            statement.place
        );
        if statement.denies() {
            // A Deny only takes away: its wildcards (every SNS topic) grant nothing.
            continue;
        }
        for resource in resources {
            if resource == Value::String("*".into()) {
                // Publishing an SMS to a phone number has no resource ARN: IAM can only
                // grant it on "*". That, alone in its statement, is the one exception.
                assert_eq!(
                    statement.actions(),
                    vec!["sns:Publish".to_string()],
                    "{}: only sns:Publish (SMS) may have Resource \"*\"",
                    statement.place
                );
                assert!(statement.allows());
                continue;
            }
            let mut strings = Vec::new();
            strings_in(&resource, &mut strings);
            for s in strings {
                assert!(
                    !s.contains('*'),
                    "{}: resource `{s}` contains a wildcard",
                    statement.place
                );
            }
        }
    }
}

#[test]
fn dynamodb_grants_name_only_the_table() {
    let template = Template::load();
    for statement in template.all_statements() {
        if statement
            .actions()
            .iter()
            .any(|a| a.starts_with("dynamodb:"))
        {
            assert!(
                statement
                    .actions()
                    .iter()
                    .all(|a| a.starts_with("dynamodb:")),
                "{}: keep DynamoDB grants in their own statement",
                statement.place
            );
            assert_eq!(
                statement.resources(),
                vec![get_att("AuthTable", "Arn")],
                "{}: DynamoDB grants name exactly the table",
                statement.place
            );
        }
    }
}

#[test]
fn only_functions_that_deliver_messages_may_send_email_and_sms() {
    let template = Template::load();
    for function in template.functions() {
        let statements = template.function_statements(&function);
        let delivers = operations_of(&function.binary)
            .into_iter()
            .any(delivers_messages);
        let ses = granted_actions(&statements, "ses:");
        let sns = granted_actions(&statements, "sns:");
        if delivers {
            assert_eq!(
                ses,
                BTreeSet::from(["ses:SendEmail".to_string()]),
                "`{}` sends email through SES v2 SendEmail",
                function.binary
            );
            assert_eq!(
                sns,
                BTreeSet::from(["sns:Publish".to_string()]),
                "`{}` sends SMS through SNS Publish",
                function.binary
            );
            for statement in grants(&statements, "ses:SendEmail") {
                let mut strings = Vec::new();
                strings_in(&statement.body["Resource"], &mut strings);
                assert!(
                    strings.iter().any(|s| s.starts_with(
                        "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
                    )),
                    "{}: SendEmail is granted on the configured SES identity only",
                    statement.place
                );
            }
        } else {
            assert!(
                ses.is_empty() && sns.is_empty(),
                "`{}` delivers no message but is granted {ses:?} {sns:?}",
                function.binary
            );
        }
    }
}

/// Each function's `main` links the adapters its operations use and no others: message
/// delivery (SES, SNS) where an operation sends, WeChat where one exchanges codes.
#[test]
fn each_function_main_wires_exactly_the_adapters_its_operations_use() {
    for function in functions() {
        let path = format!(
            "{}/functions/{function}/main.rs",
            env!("CARGO_MANIFEST_DIR")
        );
        let main = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let operations = operations_of(function);
        let serve = format!("shared::http::lambda::serve(\"{function}\", Wiring::LAMBDA");
        assert!(
            main.contains(&serve),
            "{path}: main must call `{serve}...)`"
        );
        for (needed, wiring) in [
            (
                operations.iter().copied().any(delivers_messages),
                ".with_message_delivery()",
            ),
            (
                operations.iter().copied().any(calls_wechat),
                ".with_wechat()",
            ),
            (
                operations.iter().copied().any(checks_custom_tickets),
                ".with_custom_login()",
            ),
        ] {
            assert_eq!(
                main.contains(wiring),
                needed,
                "{path}: `{wiring}` belongs exactly in the functions whose operations need it"
            );
        }
    }
}

#[test]
fn secrets_reach_the_functions_only_as_ssm_parameter_names() {
    let template = Template::load();
    let jwt_arn = sub(
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${JwtPrivateKeyParameterName}",
    );
    let wx_arn = sub(
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WxOpenAppSecretParameterName}",
    );
    let custom_arn = sub(
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${CustomLoginKeysParameterName}",
    );
    for function in template.functions() {
        let binary = function.binary.as_str();
        let env = template.environment(&function);
        for name in env.keys() {
            let secretish = ["SECRET", "PRIVATE_KEY", "PASSWORD", "TOKEN"]
                .iter()
                .any(|word| name.contains(word));
            assert!(
                !secretish || name.ends_with("_PARAMETER"),
                "`{binary}`: {name} looks like a secret in plain text; pass an SSM parameter name"
            );
        }
        assert_eq!(
            env.get("AUTH_JWT_PRIVATE_KEY_PARAMETER"),
            Some(&reference("JwtPrivateKeyParameterName")),
            "`{binary}` signs or verifies tokens and needs the JWT key"
        );
        assert_eq!(
            env.get("AUTH_SECRET_HASH_KEY_PARAMETER"),
            Some(&reference("SecretHashKeyParameterName")),
            "`{binary}` needs the secret that keys stored hashes"
        );
        for var in [
            "AUTH_TABLE_NAME",
            "AUTH_EMAIL_FROM",
            "AUTH_DEFAULT_COUNTRY_CODE",
        ] {
            assert!(env.contains_key(var), "`{binary}` needs {var} to start");
        }

        let statements = template.function_statements(&function);
        assert_eq!(
            granted_actions(&statements, "ssm:"),
            BTreeSet::from(["ssm:GetParameter".to_string()]),
            "`{binary}`: Parameter Store is only read, one named parameter at a time"
        );
        let mut parameters: Vec<Value> = grants(&statements, "ssm:GetParameter")
            .iter()
            .flat_map(Statement::resources)
            .collect();
        parameters.sort_by_key(text);

        let uses_wechat = operations_of(binary).into_iter().any(calls_wechat);
        // The signing key, the secret of stored hashes, and the verification-only keys when
        // the deployment names them.
        let mut want = vec![
            jwt_arn.clone(),
            sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SecretHashKeyParameterName}"),
            intrinsic(
                "Fn::If",
                Value::Sequence(vec![
                    "HasJwtVerificationKeys".into(),
                    sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${JwtVerificationKeysParameterName}"),
                    reference("AWS::NoValue"),
                ]),
            ),
        ];
        if uses_wechat {
            want.push(wx_arn.clone());
        }
        let checks_tickets = operations_of(binary).into_iter().any(checks_custom_tickets);
        if checks_tickets {
            want.push(custom_arn.clone());
        }
        want.sort_by_key(text);
        assert_eq!(parameters, want, "`{binary}`: the parameters it may read");
        for var in [
            "AUTH_WX_OPEN_APP_SECRET_PARAMETER",
            "AUTH_WECHAT_API_BASE",
            "AUTH_WX_OPEN_APP_ID",
        ] {
            assert_eq!(
                env.contains_key(var),
                uses_wechat,
                "`{binary}`: {var} belongs to the functions that call WeChat"
            );
        }
        for (var, parameter) in [
            ("AUTH_ENV_ID", "EnvId"),
            (
                "AUTH_CUSTOM_LOGIN_KEYS_PARAMETER",
                "CustomLoginKeysParameterName",
            ),
        ] {
            let expected = checks_tickets.then(|| reference(parameter));
            assert_eq!(
                env.get(var),
                expected.as_ref(),
                "`{binary}`: {var} belongs to the function that checks custom-login tickets"
            );
        }
        for statement in grants(&statements, "kms:Decrypt") {
            assert_eq!(
                statement.resources(),
                vec![reference("SecretsKmsKeyArn")],
                "{}: kms:Decrypt only on the configured key",
                statement.place
            );
            let mut strings = Vec::new();
            strings_in(&statement.body["Condition"], &mut strings);
            assert!(
                strings.iter().any(|s| s.starts_with("ssm.")),
                "{}: kms:Decrypt only through Parameter Store",
                statement.place
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sizing, the table, the API

#[test]
fn timeouts_end_before_the_sdk_gives_up_and_password_hashing_gets_cpu() {
    let template = Template::load();
    for function in template.functions() {
        let binary = &function.binary;
        let timeout = template
            .effective(&function, "Timeout")
            .and_then(Value::as_u64)
            .unwrap_or(3);
        assert!(
            (1..SDK_DEADLINE_SECS).contains(&timeout),
            "`{binary}`: Timeout {timeout} s must end before the SDK's {SDK_DEADLINE_SECS} s"
        );
        let memory = template
            .effective(&function, "MemorySize")
            .and_then(Value::as_u64)
            .unwrap_or(128);
        if operations_of(binary).into_iter().any(hashes_passwords) {
            assert!(
                memory >= 1024,
                "`{binary}` hashes passwords (Argon2id): give it CPU, at least 1024 MB, not {memory}"
            );
        }
        assert!(
            (256..=3008).contains(&memory),
            "`{binary}`: MemorySize {memory}"
        );
    }
}

#[test]
fn the_table_is_one_key_with_ttl_and_keeps_its_data() {
    let template = Template::load();
    let tables: Vec<_> = template.of_type("AWS::DynamoDB::Table").collect();
    assert_eq!(tables.len(), 1, "one table");
    let (id, table) = tables[0];
    assert_eq!(id, "AuthTable");
    assert_eq!(table["DeletionPolicy"], Value::from("Retain"));
    assert_eq!(table["UpdateReplacePolicy"], Value::from("Retain"));
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], Value::from("PAY_PER_REQUEST"));
    let key: serde_yaml::Value =
        serde_yaml::from_str("[{AttributeName: pk, KeyType: HASH}]").unwrap();
    assert_eq!(p["KeySchema"], key, "hash key pk, no sort key");
    let attributes: Value =
        serde_yaml::from_str("[{AttributeName: pk, AttributeType: S}]").unwrap();
    assert_eq!(p["AttributeDefinitions"], attributes);
    assert!(p.get("GlobalSecondaryIndexes").is_none() && p.get("LocalSecondaryIndexes").is_none());
    assert_eq!(
        p["TimeToLiveSpecification"],
        serde_yaml::from_str::<Value>("{AttributeName: expires_at, Enabled: true}").unwrap()
    );
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::Bool(true)
    );
    assert_eq!(p["DeletionProtectionEnabled"], Value::Bool(true));
    assert_eq!(p["SSESpecification"]["SSEEnabled"], Value::Bool(true));
    assert!(
        p.get("TableName").is_none(),
        "let CloudFormation name it, per stack"
    );
}

#[test]
fn the_http_api_allows_the_headers_and_methods_the_sdk_sends() {
    let template = Template::load();
    let apis: Vec<_> = template.of_type("AWS::Serverless::HttpApi").collect();
    assert_eq!(apis.len(), 1);
    assert_eq!(apis[0].0, "AuthApi");
    let cors = &apis[0].1["Properties"]["CorsConfiguration"];
    let list = |v: &Value| -> BTreeSet<String> {
        one_or_many(v)
            .iter()
            .map(|s| text(s).to_lowercase())
            .collect()
    };
    let set =
        |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        list(&cors["AllowHeaders"]),
        set(&[
            "authorization",
            "content-type",
            "x-request-id",
            "x-device-id",
            "x-sdk-version",
            "accept-language",
            "x-captcha-token"
        ])
    );
    assert_eq!(
        list(&cors["AllowMethods"]),
        set(&["get", "post", "patch", "delete", "options"])
    );
    assert_eq!(
        list(&cors["ExposeHeaders"]),
        set(&["x-request-id", "retry-after"])
    );
    assert!(!list(&cors["AllowOrigins"]).is_empty());
    let used: BTreeSet<String> = ROUTES.iter().map(|r| r.method.to_lowercase()).collect();
    assert!(used.is_subset(&list(&cors["AllowMethods"])));
}

#[test]
fn the_template_takes_its_settings_as_parameters_and_outputs_the_api_and_table() {
    let template = Template::load();
    let parameters = template.root["Parameters"]
        .as_mapping()
        .expect("Parameters");
    let default = |name: &str| {
        parameters
            .get(name)
            .and_then(|p| p.get("Default"))
            .map(text)
    };
    for name in [
        "SenderEmail",
        "SesIdentity",
        "DefaultCountryCode",
        "WxOpenAppId",
        "JwtPrivateKeyParameterName",
        "WxOpenAppSecretParameterName",
        "EnvId",
        "CustomLoginKeysParameterName",
        "LogRetentionDays",
    ] {
        assert!(parameters.contains_key(name), "parameter {name}");
    }
    assert_eq!(default("DefaultCountryCode").as_deref(), Some("86"));
    assert_eq!(
        default("WxOpenAppId").as_deref(),
        Some(""),
        "WeChat is off unless configured"
    );
    assert_eq!(default("WxOpenAppSecretParameterName").as_deref(), Some(""));
    assert_eq!(
        default("EnvId").as_deref(),
        Some(""),
        "custom login is off unless configured"
    );
    assert_eq!(default("CustomLoginKeysParameterName").as_deref(), Some(""));
    let outputs = template.root["Outputs"].as_mapping().expect("Outputs");
    assert!(outputs.contains_key("ApiUrl") && outputs.contains_key("TableName"));
}

/// `cargo lambda watch` routes by the table in `functions/Cargo.toml`: it must be the route
/// table, row for row.
#[test]
fn the_cargo_lambda_router_serves_exactly_the_route_table() {
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/functions/Cargo.toml"))
            .expect("functions/Cargo.toml is readable"),
    )
    .expect("functions/Cargo.toml is TOML");
    let router = manifest["package"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("functions/Cargo.toml has [package.metadata.lambda.watch.router]");
    let mut served = BTreeSet::new();
    for (path, entries) in router {
        for entry in entries
            .as_array()
            .expect("each router path lists its methods")
        {
            served.insert((
                entry["method"].as_str().expect("method").to_string(),
                path.clone(),
                entry["function"].as_str().expect("function").to_string(),
            ));
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                r.function.to_string(),
            )
        })
        .collect();
    assert_eq!(served, expected, "the router and ROUTES differ");
}

// ---------------------------------------------------------------------------------------------
// Caps on abuse: what one flood of requests can cost

fn if_value(condition: &str, then: Value, otherwise: Value) -> Value {
    intrinsic(
        "Fn::If",
        Value::Sequence(vec![condition.into(), then, otherwise]),
    )
}

/// A parameter's number (`Default`, `MinValue`, ...), whether written as a number or a string.
fn parameter_number(template: &Template, parameter: &str, key: &str) -> f64 {
    let value = template.parameter(parameter).get(key).unwrap_or_else(|| {
        panic!("parameter {parameter} has no {key}");
    });
    value
        .as_f64()
        .or_else(|| text(value).parse().ok())
        .unwrap_or_else(|| panic!("parameter {parameter}: {key} is not a number: {value:?}"))
}

fn expect_number_parameter(template: &Template, parameter: &str) {
    assert_eq!(
        template
            .parameter(parameter)
            .get("Type")
            .and_then(Value::as_str),
        Some("Number"),
        "parameter {parameter} is a Number"
    );
}

/// Whether a function serves an operation that sends a code or a notice.
fn sends_messages(function: &Function<'_>) -> bool {
    operations_of(&function.binary)
        .into_iter()
        .any(delivers_messages)
}

/// Publishing an SMS needs `sns:Publish` on "*", which alone would also let the role publish to
/// every SNS topic (and platform endpoint) of the account. Each role that has it also has an
/// unconditional Deny of `sns:Publish` on every SNS ARN: a phone number, which has no ARN, is
/// all that is left to publish to.
#[test]
fn sns_publish_cannot_reach_any_topic() {
    let template = Template::load();
    let every_sns_arn = sub("arn:${AWS::Partition}:sns:*:*:*");
    let mut publishers = Vec::new();
    for (role, _) in template.of_type("AWS::IAM::Role") {
        let statements = template.role_statements(role);
        if grants(&statements, "sns:Publish").is_empty() {
            continue;
        }
        publishers.push(role);
        let denied = statements.iter().any(|s| {
            s.denies()
                && !s.conditional
                && s.body.get("Condition").is_none()
                && s.actions().iter().any(|a| a == "sns:Publish")
                && s.resources().contains(&every_sns_arn)
        });
        assert!(
            denied,
            "{role} may publish to every SNS topic: add an unconditional Deny of sns:Publish on \
             {every_sns_arn:?}"
        );
    }
    let senders: Vec<_> = template
        .functions()
        .into_iter()
        .filter(sends_messages)
        .map(|f| template.role_of(&f))
        .collect();
    assert!(
        !publishers.is_empty() && publishers.len() == senders.len(),
        "the roles that may publish ({publishers:?}) are those of the sending functions ({senders:?})"
    );
}

/// The API's default route (every route) is throttled by API Gateway before any function runs,
/// with the limits taken from two parameters. A limit of 0 would refuse every request, so each
/// parameter's minimum is 1; a burst below the rate would cap the rate at the burst.
#[test]
fn the_http_api_throttles_its_default_route_from_parameters() {
    let template = Template::load();
    let settings = template
        .resource("AuthApi")
        .get("Properties")
        .and_then(|p| p.get("DefaultRouteSettings"))
        .expect("AuthApi has DefaultRouteSettings");
    for (property, parameter) in [
        ("ThrottlingBurstLimit", "ApiThrottlingBurstLimit"),
        ("ThrottlingRateLimit", "ApiThrottlingRateLimit"),
    ] {
        assert_eq!(
            settings.get(property),
            Some(&reference(parameter)),
            "AuthApi: DefaultRouteSettings.{property} comes from the parameter {parameter}"
        );
        expect_number_parameter(&template, parameter);
        assert!(
            parameter_number(&template, parameter, "MinValue") >= 1.0,
            "{parameter}: 0 would refuse every request; its MinValue is at least 1"
        );
        assert!(parameter_number(&template, parameter, "Default") >= 1.0);
    }
    assert!(
        parameter_number(&template, "ApiThrottlingBurstLimit", "Default")
            >= parameter_number(&template, "ApiThrottlingRateLimit", "Default"),
        "the default burst is at least the default rate"
    );
}

/// Every function that sends a code or a notice (SES, SNS: each one costs) has reserved
/// concurrency from one parameter, which caps how many run at once however many requests get
/// through the API's throttling. Lambda's reservation of 0 turns a function off; here the
/// parameter's 0 means "no reservation" (`AWS::NoValue`), and nothing lower is allowed, so no
/// value of it disables a function.
#[test]
fn functions_that_send_have_reserved_concurrency() {
    let template = Template::load();
    let parameter = "SendingReservedConcurrency";
    let condition = "HasSendingReservedConcurrency";
    expect_number_parameter(&template, parameter);
    assert_eq!(
        parameter_number(&template, parameter, "MinValue"),
        0.0,
        "{parameter}: 0 (no reservation) is the least value"
    );
    assert!(
        parameter_number(&template, parameter, "Default") >= 1.0,
        "{parameter}: the sending functions are capped unless the deployer says otherwise"
    );
    let not_zero = |zero: Value| {
        intrinsic(
            "Fn::Not",
            Value::Sequence(vec![intrinsic(
                "Fn::Equals",
                Value::Sequence(vec![reference(parameter), zero]),
            )]),
        )
    };
    let defined = template.condition(condition);
    assert!(
        defined == &not_zero(Value::from("0")) || defined == &not_zero(Value::from(0)),
        "{condition} is true exactly when {parameter} is not 0: {defined:?}"
    );
    let reserved = if_value(condition, reference(parameter), reference("AWS::NoValue"));
    let mut senders = BTreeSet::new();
    for function in template.functions() {
        let value = template.effective(&function, "ReservedConcurrentExecutions");
        assert!(
            value.and_then(Value::as_f64) != Some(0.0),
            "{}: a reserved concurrency of 0 turns the function off",
            function.logical_id
        );
        if sends_messages(&function) {
            assert_eq!(
                value,
                Some(&reserved),
                "`{}` sends messages: ReservedConcurrentExecutions is {parameter}, none when 0",
                function.binary
            );
            senders.insert(function.binary.clone());
        }
    }
    for binary in [
        "verification",
        "bind-contact",
        "bind-provider",
        "unbind-provider",
        "delete-user",
        "edit-profile",
        "change-password",
        "reset-password",
    ] {
        assert!(
            senders.contains(binary),
            "`{binary}` sends codes or notices"
        );
    }
}

/// SNS reports the account's SMS spend this month (`SMSMonthToDateSpentUSD`, a running total
/// with no dimensions); an alarm goes off above a threshold given as a parameter, before the
/// account's monthly SMS spend limit stops every code.
#[test]
fn an_alarm_watches_sms_spend() {
    let template = Template::load();
    let alarms: Vec<_> = template
        .of_type("AWS::CloudWatch::Alarm")
        .filter(|(_, alarm)| {
            let p = &alarm["Properties"];
            p["Namespace"] == "AWS/SNS" && p["MetricName"] == "SMSMonthToDateSpentUSD"
        })
        .collect();
    assert_eq!(
        alarms.len(),
        1,
        "one alarm on AWS/SNS SMSMonthToDateSpentUSD"
    );
    let (id, alarm) = alarms[0];
    let p = &alarm["Properties"];
    let parameter = "SmsSpendAlarmThresholdUsd";
    assert_eq!(
        p.get("Threshold"),
        Some(&reference(parameter)),
        "{id}: Threshold"
    );
    expect_number_parameter(&template, parameter);
    assert!(parameter_number(&template, parameter, "MinValue") >= 0.0);
    assert!(parameter_number(&template, parameter, "Default") > 0.0);
    assert!(
        matches!(
            p["ComparisonOperator"].as_str(),
            Some("GreaterThanThreshold" | "GreaterThanOrEqualToThreshold")
        ),
        "{id}: goes off when spend rises past the threshold"
    );
    assert_eq!(
        p["Statistic"],
        Value::from("Maximum"),
        "{id}: the month-to-date total is a running total: take its highest value"
    );
    assert!(
        one_or_many(p.get("Dimensions").unwrap_or(&Value::Null)).is_empty(),
        "{id}: the metric is the account's, without dimensions"
    );
    assert_eq!(
        p["TreatMissingData"],
        Value::from("notBreaching"),
        "{id}: no data is no SMS sent"
    );
    if let Some(actions) = p.get("AlarmActions") {
        let mut strings = Vec::new();
        strings_in(actions, &mut strings);
        assert!(
            strings.iter().any(|s| s == "AlarmTopicArn"),
            "{id}: AlarmActions notify the topic given as the parameter AlarmTopicArn"
        );
    }
}

/// The functions that send SMS get the countries an SMS may go to, the hourly budgets of all
/// SMS and all emails of the deployment, and the caps of change notices, from parameters (docs/DEPLOY.md; shared/src/config.rs reads them).
#[test]
fn functions_that_send_get_the_sms_countries_and_hourly_budget() {
    let template = Template::load();
    assert_eq!(
        template.parameter("SmsAllowedCountryCodes").get("Default"),
        Some(&Value::from("86"))
    );
    expect_number_parameter(&template, "SmsSendsPerHour");
    assert_eq!(
        parameter_number(&template, "SmsSendsPerHour", "Default"),
        500.0
    );
    assert!(parameter_number(&template, "SmsSendsPerHour", "MinValue") >= 1.0);
    // The budgets and caps of messages, with config.rs's defaults.
    for (parameter, default) in [
        ("EmailSendsPerHour", 2000.0),
        ("NoticesPerAddressPerHour", 5.0),
        ("NoticeSharePercent", 20.0),
    ] {
        expect_number_parameter(&template, parameter);
        assert_eq!(
            parameter_number(&template, parameter, "Default"),
            default,
            "{parameter}"
        );
    }
    assert_eq!(
        parameter_number(&template, "NoticeSharePercent", "MaxValue"),
        100.0
    );
    for function in template.functions() {
        let env = template.environment(&function);
        let sends = sends_messages(&function);
        for (var, parameter) in [
            ("AUTH_SMS_ALLOWED_COUNTRY_CODES", "SmsAllowedCountryCodes"),
            ("AUTH_SMS_SENDS_PER_HOUR", "SmsSendsPerHour"),
            ("AUTH_EMAIL_SENDS_PER_HOUR", "EmailSendsPerHour"),
            (
                "AUTH_NOTICES_PER_ADDRESS_PER_HOUR",
                "NoticesPerAddressPerHour",
            ),
            ("AUTH_SMS_NOTICE_SHARE_PERCENT", "NoticeSharePercent"),
        ] {
            if sends {
                assert_eq!(
                    env.get(var),
                    Some(&reference(parameter)),
                    "`{}` sends SMS: {var} is the parameter {parameter}",
                    function.binary
                );
            } else {
                assert!(
                    !env.contains_key(var),
                    "`{}` sends nothing: {var} belongs to the functions that send",
                    function.binary
                );
            }
        }
    }
}

/// The functions an app calls when it opens: they may be kept warm (BENCHMARKS.md, cold
/// requests, says when that pays).
const HOT_PATH: [&str; 3] = ["signin", "token", "user-me"];

#[test]
fn the_hot_path_offers_provisioned_concurrency_as_a_parameter_off_by_default() {
    let template = Template::load();
    let parameter = template.parameter("HotPathProvisionedConcurrency");
    assert_eq!(text(&parameter["Type"]), "Number");
    assert_eq!(
        parameter["Default"].as_u64(),
        Some(0),
        "off unless asked for"
    );
    assert_eq!(parameter["MinValue"].as_u64(), Some(0));
    // Lambda refuses a provisioned concurrency of 0: the setting is left out then.
    assert_eq!(
        template.condition("HasHotPathProvisionedConcurrency"),
        &intrinsic(
            "Fn::Not",
            vec![intrinsic(
                "Fn::Equals",
                vec![
                    reference("HotPathProvisionedConcurrency"),
                    Value::String("0".into())
                ]
            )]
        )
    );
    let mut setting = Mapping::new();
    setting.insert(
        "ProvisionedConcurrentExecutions".into(),
        reference("HotPathProvisionedConcurrency"),
    );
    let conditional = intrinsic(
        "Fn::If",
        vec![
            Value::String("HasHotPathProvisionedConcurrency".into()),
            Value::Mapping(setting),
            reference("AWS::NoValue"),
        ],
    );
    for function in template.functions() {
        let hot = HOT_PATH.contains(&function.binary.as_str());
        let provisioned = function.property("ProvisionedConcurrencyConfig");
        if hot {
            assert_eq!(
                provisioned,
                Some(&conditional),
                "`{}` is on the hot path",
                function.binary
            );
            // Provisioned concurrency applies to an alias, which the API must then call.
            assert!(
                function.property("AutoPublishAlias").is_some(),
                "`{}` needs an alias for provisioned concurrency",
                function.binary
            );
        } else {
            assert_eq!(
                provisioned, None,
                "`{}` is off the hot path",
                function.binary
            );
        }
    }
}
