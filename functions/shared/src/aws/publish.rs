//! Telling people and systems: an SNS message (subject fitted to SNS's
//! limit) and one stepdeploy event on the bus. notify, trigger (Request Not
//! Understood) and rollback (a cleanup's outcome) all say things this way.

use crate::aws_error::AwsCallError;
use aws_sdk_sns::types::MessageAttributeValue;

/// Publishes `message` to `topic` with string `attributes` (subscribers
/// filter on them); `operation` names the call in errors.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    operation: &'static str,
    topic: &str,
    subject: &str,
    message: &str,
    attributes: &[(&str, &str)],
) -> Result<(), AwsCallError> {
    let mut publish = sns
        .publish()
        .topic_arn(topic)
        .subject(crate::names::sns_subject(subject))
        .message(message);
    for (name, value) in attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(*value)
            .build()
            .map_err(|e| AwsCallError::other(operation, e))?;
        publish = publish.message_attributes(*name, attribute);
    }
    publish
        .send()
        .await
        .map_err(|e| AwsCallError::new(operation, e))?;
    Ok(())
}

/// Puts one event from `stepdeploy` on `bus`. EventBridge answers a refused
/// entry with success and a failed count: that is an error here, naming why.
pub async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    operation: &'static str,
    bus: &str,
    detail_type: &str,
    detail: &serde_json::Value,
) -> Result<(), AwsCallError> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(crate::request::EVENT_SOURCE)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build();
    let out = events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| AwsCallError::new(operation, e))?;
    if out.failed_entry_count() > 0 {
        let why = out
            .entries()
            .iter()
            .filter_map(|e| e.error_message())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AwsCallError::other(operation, std::io::Error::other(why)));
    }
    Ok(())
}
