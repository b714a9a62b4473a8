//! Everything a tenant has in an environment's account, by kind, so a run
//! can be compared with a clean one or with nothing.

use crate::clients::{environment, in_environment};
use crate::mysql::tenant_mysql_objects;
use crate::state::{priority_claims, state_item};
use aws_config::SdkConfig;
use std::collections::BTreeMap;
use stepdeploy_shared::listener::{ElbRules, ListenerRules};
use stepdeploy_shared::{EnvironmentName, ResourceNames, TenantName};

/// Everything of one tenant in an environment's account, by kind (ids, names
/// or keys): what tests compare before and after a run, or count after one.
pub type Inventory = BTreeMap<&'static str, Vec<String>>;

/// How many of each kind.
pub fn inventory_shape(inventory: &Inventory) -> BTreeMap<&'static str, usize> {
    inventory.iter().map(|(k, v)| (*k, v.len())).collect()
}

/// Every kind of `tenant`'s resources in `env` (empty kinds too), so a run
/// can be compared with a clean one or with nothing. A secret scheduled for
/// deletion counts as gone (rollback and teardown delete with a recovery
/// window; the next deployment restores it); verify's reports are left out
/// (a failed run's evidence, kept on purpose).
pub async fn tenant_inventory(env_name: &str, tenant: &str) -> Inventory {
    let env = environment(env_name);
    let names = ResourceNames::new(
        &EnvironmentName::parse(env_name).expect("environment"),
        &TenantName::parse(tenant).expect("tenant"),
        &env.domain,
    );
    let config = in_environment(env_name).await;
    let mut found = Inventory::new();

    let ecs = aws_sdk_ecs::Client::new(&config);
    let services = ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(&names.service)
        .send()
        .await
        .expect("describe services");
    found.insert(
        "ecs service",
        services
            .services()
            .iter()
            .filter(|s| s.status() == Some("ACTIVE"))
            .filter_map(|s| s.service_arn().map(str::to_string))
            .collect(),
    );
    // The exact family: a prefix would also match another tenant's longer name.
    let exact = format!("task-definition/{}:", names.task_family);
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(&names.task_family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("task definitions");
    found.insert(
        "task definition (ACTIVE)",
        revisions
            .into_iter()
            .filter(|a| a.contains(&exact))
            .collect(),
    );

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let groups = match elb
        .describe_target_groups()
        .names(&names.target_group)
        .send()
        .await
    {
        Ok(out) => out
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_target_group_not_found_exception()) =>
        {
            Vec::new()
        }
        Err(e) => panic!("describe target groups: {e:?}"),
    };
    found.insert("target group", groups);
    found.insert(
        "listener rule",
        listener_rules(&config, &env.alb_listener_arn, &names.host).await,
    );

    found.insert(
        "access point",
        access_points(&config, &env.efs_id, &names.efs_path)
            .await
            .iter()
            .filter_map(|ap| ap.access_point_id().map(str::to_string))
            .collect(),
    );

    let mut live = Vec::new();
    match aws_sdk_secretsmanager::Client::new(&config)
        .describe_secret()
        .secret_id(&names.db_secret)
        .send()
        .await
    {
        Ok(s) if s.deleted_date().is_some() => {}
        Ok(s) => live.push(s.arn().unwrap_or_default().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => panic!("describe secret: {e:?}"),
    }
    found.insert("secret", live);

    let fqdn = format!("{}.", names.host);
    let records = aws_sdk_route53::Client::new(&config)
        .list_resource_record_sets()
        .hosted_zone_id(&env.hosted_zone_id)
        .start_record_name(&fqdn)
        .start_record_type(aws_sdk_route53::types::RrType::A)
        .max_items(1)
        .send()
        .await
        .expect("records");
    found.insert(
        "route53 record",
        records
            .resource_record_sets()
            .iter()
            .filter(|r| r.name().eq_ignore_ascii_case(&fqdn))
            .map(|r| r.name().to_string())
            .collect(),
    );

    let counts = tenant_mysql_objects(env_name, tenant);
    let mut mysql = Vec::new();
    if counts.first().map(String::as_str) != Some("0") {
        mysql.push(format!("database {} ({counts:?})", names.database));
    }
    if counts.get(1).map(String::as_str) != Some("0") {
        mysql.push(format!("user {} ({counts:?})", names.db_user));
    }
    found.insert("mysql", mysql);

    let pages = match stepdeploy_shared::aws::s3_client(&config)
        .list_objects_v2()
        .bucket(&env.config_bucket)
        .prefix(format!("{env_name}/{tenant}"))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(pages) => pages,
        // A fresh stack: bootstrap creates the bucket on the environment's first run.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => Vec::new(),
        Err(e) => panic!("config bucket: {e:?}"),
    };
    found.insert(
        "config bucket",
        pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|o| o.key())
            .filter(|k| *k == names.config_key || k.starts_with(&format!("{env_name}/{tenant}/")))
            .filter(|k| !k.contains("/reports/"))
            .map(str::to_string)
            .collect(),
    );

    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let registry = state_item(
        &ddb,
        &env.state_table,
        &format!("TENANT#{tenant}"),
        "REGISTRY",
    )
    .await;
    found.insert(
        "registry entry",
        registry
            .map(|i| {
                let mut fields: Vec<&String> = i.keys().collect();
                fields.sort();
                format!("{fields:?}")
            })
            .into_iter()
            .collect(),
    );
    let lock = state_item(&ddb, &env.state_table, &format!("LOCK#{tenant}"), "LOCK").await;
    found.insert(
        "lock",
        lock.map(|i| format!("{:?}", i.get("owner")))
            .into_iter()
            .collect(),
    );
    found.insert(
        "priority claim",
        priority_claims(&ddb, &env.state_table, tenant)
            .await
            .iter()
            .map(u32::to_string)
            .collect(),
    );
    found
}

/// The file system's access points rooted at `path` (every page: the
/// environment's file system holds every tenant's access point).
pub async fn access_points(
    config: &SdkConfig,
    efs_id: &str,
    path: &str,
) -> Vec<aws_sdk_efs::types::AccessPointDescription> {
    aws_sdk_efs::Client::new(config)
        .describe_access_points()
        .file_system_id(efs_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("access points")
        .into_iter()
        .filter(|ap| ap.root_directory().and_then(|r| r.path()) == Some(path))
        .collect()
}

/// The ARNs of the listener's rules for `host`, read as the phases read
/// them (every page: the shared listener holds every tenant's rule).
pub async fn listener_rules(config: &SdkConfig, listener_arn: &str, host: &str) -> Vec<String> {
    ElbRules(aws_sdk_elasticloadbalancingv2::Client::new(config))
        .rules(listener_arn)
        .await
        .expect("rules")
        .into_iter()
        .filter(|r| r.hosts.iter().any(|h| h == host))
        .map(|r| r.arn)
        .collect()
}
