//! The ecs phase on the local stack: bootstrap's plan in, the tenant's
//! resources out, in the environment's account; a second run converges.

use serde_json::json;
use stepdeploy_tests::{
    access_points, bootstrap_input, in_environment, invoke, listener_rules, site_status,
    unique_tenant, wait_site_status,
};

#[tokio::test]
async fn ecs_creates_the_tenant_and_a_rerun_converges() {
    let tenant = unique_tenant("ec");
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(&tenant, "dev", &format!("{tenant}-1"), json!({})),
    )
    .await
    .ok();
    let host = plan["names"]["host"].as_str().expect("host").to_string();
    assert_eq!(
        site_status(&host, "/"),
        "404",
        "nothing serves the tenant yet"
    );

    // database runs first in a deployment: the task reads its secret.
    let database = invoke("database", &json!({ "plan": plan })).await.ok();
    let first = invoke("ecs", &json!({ "plan": plan, "database": database }))
        .await
        .ok();
    assert_eq!(
        first["changes"].as_array().map(Vec::len),
        Some(5),
        "{first}"
    );

    // Checked through the AWS APIs, in dev's account.
    let dev = in_environment("dev").await;
    let env = stepdeploy_tests::environment("dev");
    let ecs = aws_sdk_ecs::Client::new(&dev);
    // Fargate starts the task after a while (the local stack models the delay).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let service = loop {
        let services = ecs
            .describe_services()
            .cluster(&env.cluster)
            .services(format!("dev-{tenant}-service"))
            .send()
            .await
            .expect("services");
        let service = services.services().first().expect("service exists").clone();
        if service.running_count() == 1 || std::time::Instant::now() > deadline {
            break service;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(service.desired_count(), 1);
    assert_eq!(service.running_count(), 1);
    assert_eq!(
        service.task_definition(),
        first["task_definition_arn"].as_str()
    );
    let td = ecs
        .describe_task_definition()
        .task_definition(format!("dev-{tenant}"))
        .send()
        .await
        .expect("task definition");
    let td = td.task_definition().expect("td");
    let container = td.container_definitions().first().expect("container");
    assert_eq!(container.name(), Some("wordpress"));
    assert_eq!(container.image(), Some("wordpress:6.4-apache"));
    // The secret's full ARN (with its random suffix), as ECS documents.
    let secret_arn = database["secret_arn"].as_str().expect("secret arn");
    assert!(secret_arn.contains(&format!("secret:dev-{tenant}-db-credentials-")));
    assert!(container
        .secrets()
        .iter()
        .any(|s| s.name() == "WORDPRESS_DB_PASSWORD"
            && s.value_from() == format!("{secret_arn}:password::")));
    let efs_volume = td
        .volumes()
        .first()
        .and_then(|v| v.efs_volume_configuration())
        .expect("efs volume");
    assert_eq!(
        efs_volume
            .authorization_config()
            .and_then(|a| a.access_point_id()),
        first["access_point_id"].as_str()
    );

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&dev);
    let tgs = elb
        .describe_target_groups()
        .names(format!("dev-{tenant}-tg"))
        .send()
        .await
        .expect("target group");
    let tg = tgs.target_groups().first().expect("tg");
    assert_eq!(
        tg.matcher().and_then(|m| m.http_code()),
        Some("200,301,302")
    );
    let ours = access_points(&dev, &env.efs_id, &format!("/{tenant}")).await;
    assert_eq!(ours.len(), 1);
    assert_eq!(
        ours[0].posix_user().map(|u| (u.uid(), u.gid())),
        Some((33, 33))
    );

    // The stand-in now serves the host (rule + running service).
    assert_eq!(wait_site_status(&host, "/", "200"), "200");
    assert_eq!(site_status(&host, "/wp-admin/"), "302");

    // A second run changes nothing and duplicates nothing.
    let second = invoke("ecs", &json!({ "plan": plan, "database": database }))
        .await
        .ok();
    assert_eq!(second["changes"], json!([]), "{second}");
    assert_eq!(second["task_definition_arn"], first["task_definition_arn"]);
    assert_eq!(
        listener_rules(&dev, &env.alb_listener_arn, &host)
            .await
            .len(),
        1,
        "one listener rule for {host}"
    );
    assert_eq!(
        access_points(&dev, &env.efs_id, &format!("/{tenant}"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn ecs_rejects_a_payload_that_is_not_a_plan() {
    let (error, message) = invoke("ecs", &json!({"plan": {"tenant": "x"}})).await.err();
    assert_eq!(error, "ValidationFailed");
    // The guard reads the plan before the phase does, and names the field.
    assert!(message.contains("plan: tenant"), "{message}");
}

/// Why database runs before ecs: a service whose task reads a secret that
/// does not exist yet fails to start, and ECS backs off relaunching for
/// longer than verify waits (the local stack models both). Here the old
/// order is replayed by hand: the service comes first, the secret right
/// after, and the service still does not come up within a verify loop.
#[tokio::test]
async fn a_service_created_before_its_secret_does_not_start_within_a_verify_loop() {
    let tenant = unique_tenant("or");
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(&tenant, "dev", &format!("{tenant}-1"), json!({})),
    )
    .await
    .ok();
    let env = stepdeploy_tests::environment("dev");
    // The name the secret will have (what the task definition named before
    // the fix), before database has created it.
    let not_yet = format!(
        "arn:aws:secretsmanager:{}:{}:secret:dev-{tenant}-db-credentials",
        env.region, env.account_id
    );
    invoke(
        "ecs",
        &json!({ "plan": plan, "database": { "secret_arn": not_yet, "database": format!("{tenant}_db"), "username": format!("{tenant}_user"), "changes": [] } }),
    )
    .await
    .ok();
    invoke("database", &json!({ "plan": plan })).await.ok();

    let ecs = aws_sdk_ecs::Client::new(&in_environment("dev").await);
    let service_name = format!("dev-{tenant}-service");
    // dev's local verify loop: 10 rounds, 1 s apart.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(12);
    while std::time::Instant::now() < until {
        let described = ecs
            .describe_services()
            .cluster(&env.cluster)
            .services(&service_name)
            .send()
            .await
            .expect("describe services");
        let service = described.services().first().expect("service");
        assert_eq!(service.running_count(), 0, "{service:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let stopped = ecs
        .list_tasks()
        .cluster(&env.cluster)
        .service_name(&service_name)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("list tasks");
    let tasks = ecs
        .describe_tasks()
        .cluster(&env.cluster)
        .set_tasks(Some(stopped.task_arns().to_vec()))
        .send()
        .await
        .expect("describe tasks");
    assert!(
        tasks.tasks().iter().any(|t| t
            .stopped_reason()
            .is_some_and(|r| r.contains("ResourceInitializationError"))),
        "{:?}",
        tasks.tasks()
    );
}
