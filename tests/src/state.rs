//! The state table read directly (not through `StateStore`): the tests
//! check what the phases wrote, item by item.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use stepdeploy_shared::state::{claim_sk, CLAIMS_PK};

/// The state table's item at `pk`/`sk`, read consistently (tests read right after a run's writes).
pub async fn state_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    match ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
    {
        Ok(out) => out.item,
        // A fresh stack: bootstrap creates the table on the environment's first run.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("get {pk}/{sk}: {e:?}"),
    }
}

/// The priorities claimed for `tenant`, ascending: a query of the claims'
/// partition (every page), each claim's sort key checked to be the one
/// bootstrap writes for its priority.
pub async fn priority_claims(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &str,
) -> Vec<u32> {
    let items: Vec<HashMap<String, AttributeValue>> = ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .filter_expression("tenant = :t")
        .expression_attribute_values(":pk", AttributeValue::S(CLAIMS_PK.into()))
        .expression_attribute_values(":t", AttributeValue::S(tenant.into()))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("query priority claims");
    items
        .iter()
        .map(|item| {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .expect("claim sk");
            let priority: u32 = sk.parse().unwrap_or_else(|_| panic!("claim sk {sk:?}"));
            assert_eq!(
                *sk,
                claim_sk(priority),
                "a claim's sort key is its padded priority"
            );
            priority
        })
        .collect()
}
