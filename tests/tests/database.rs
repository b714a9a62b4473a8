//! The database phase on the local stack: the tenant secret in the
//! environment's account, the database and user on that environment's
//! MariaDB, the secrets policy on the task execution role; the user logs in
//! with the password from the secret, before and after a converging re-run.

use mysql_async::prelude::Queryable;
use serde_json::json;
use stepdeploy_tests::{bootstrap_input, in_environment, invoke, unique_tenant};

async fn secret_document(env: &str, name: &str) -> serde_json::Value {
    let sm = aws_sdk_secretsmanager::Client::new(&in_environment(env).await);
    let value = sm
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .expect("tenant secret");
    serde_json::from_str(value.secret_string().expect("string")).expect("json")
}

async fn login(doc: &serde_json::Value) -> Result<String, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(doc["host"].as_str().expect("host").to_string())
        .tcp_port(u16::try_from(doc["port"].as_u64().expect("port")).expect("port"))
        .user(doc["username"].as_str().map(str::to_string))
        .pass(doc["password"].as_str().map(str::to_string))
        .db_name(doc["database"].as_str().map(str::to_string))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await?;
    conn.query_drop("CREATE TABLE IF NOT EXISTS probe (id INT)")
        .await?;
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await?;
    conn.disconnect().await?;
    Ok(db.unwrap_or_default())
}

#[tokio::test]
async fn database_phase_creates_matching_secret_and_user_and_converges() {
    let tenant = unique_tenant("db");
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(&tenant, "dev", &format!("{tenant}-1"), json!({})),
    )
    .await
    .ok();
    let first = invoke("database", &json!({ "plan": plan })).await.ok();
    assert_eq!(first["database"], format!("{tenant}_db"));
    assert_eq!(first["username"], format!("{tenant}_user"));
    assert!(
        !first.to_string().contains("password\":"),
        "no password in the output: {first}"
    );
    // Secret, database, user: no IAM policy per tenant any more.
    assert_eq!(
        first["changes"].as_array().map(Vec::len),
        Some(3),
        "{first}"
    );

    let name = format!("dev-{tenant}-db-credentials");
    let doc = secret_document("dev", &name).await;
    assert_eq!(doc["username"], format!("{tenant}_user"));
    assert_eq!(doc["password"].as_str().map(str::len), Some(24));
    assert_eq!(
        login(&doc)
            .await
            .expect("tenant user logs in with the secret's password"),
        format!("{tenant}_db")
    );

    let dev = in_environment("dev").await;
    let described = aws_sdk_secretsmanager::Client::new(&dev)
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    let tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().into(),
                t.value().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(
        tags.contains(&("Tenant".into(), tenant.clone()))
            && tags.contains(&("Environment".into(), "dev".into())),
        "{tags:?}"
    );
    assert_eq!(described.arn(), first["secret_arn"].as_str());

    // No policy per tenant on the shared task execution role (a role's inline
    // policies total at most 10,240 characters): the environment's stack
    // grants it `{env}-*-db-credentials-*` once.
    let env = stepdeploy_tests::environment("dev");
    let role = env
        .task_execution_role_arn
        .rsplit('/')
        .next()
        .expect("role");
    let per_tenant = aws_sdk_iam::Client::new(&dev)
        .get_role_policy()
        .role_name(role)
        .policy_name(format!("dev-ecs-secrets-access-{tenant}"))
        .send()
        .await;
    assert!(
        per_tenant
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_no_such_entity_exception()),
        "{per_tenant:?}"
    );

    // Re-run: nothing changes and the password still works.
    let second = invoke("database", &json!({ "plan": plan })).await.ok();
    assert_eq!(second["changes"], json!([]), "{second}");
    assert_eq!(
        secret_document("dev", &name).await["password"],
        doc["password"]
    );
    login(&doc).await.expect("still logs in");
}

#[tokio::test]
async fn a_user_whose_password_drifted_is_realigned_with_the_secret() {
    let tenant = unique_tenant("dr");
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(&tenant, "sit", &format!("{tenant}-1"), json!({})),
    )
    .await
    .ok();
    invoke("database", &json!({ "plan": plan })).await.ok();
    let doc = secret_document("sit", &format!("sit-{tenant}-db-credentials")).await;
    // Someone changes the user's password behind stepdeploy's back.
    let mut wrong = doc.clone();
    wrong["password"] = json!("not-the-secret-password");
    let status = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-P",
            "3308",
            "-u",
            "root",
            "--socket",
        ])
        .arg(stepdeploy_tests::repo().join("local/.state/mariadb/sit/mysqld.sock"))
        .args([
            "-e",
            &format!("ALTER USER '{tenant}_user'@'%' IDENTIFIED BY 'drifted'"),
        ])
        .status()
        .expect("mariadb client");
    assert!(status.success());
    assert!(login(&doc).await.is_err(), "the drift is real");
    let again = invoke("database", &json!({ "plan": plan })).await.ok();
    assert!(
        again["changes"].to_string().contains("set the password"),
        "{again}"
    );
    login(&doc).await.expect("secret and user agree again");
    assert!(login(&wrong).await.is_err());
}

#[tokio::test]
async fn database_rejects_a_payload_that_is_not_a_plan() {
    let (error, message) = invoke("database", &json!({})).await.err();
    assert_eq!(error, "ValidationFailed");
    assert!(message.contains("plan: is missing"), "{message}");
}
