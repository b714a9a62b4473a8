//! [`EfsResources`] on EFS.

use super::{EfsResources, Page, Removal};
use aws_sdk_efs::types::LifeCycleState;
use stepdeploy_shared::aws_error::AwsCallError;

/// EFS adapter.
#[derive(Clone)]
pub struct EfsAdapter(pub aws_sdk_efs::Client);

impl EfsResources for EfsAdapter {
    async fn access_points_page(
        &self,
        file_system: &str,
        path: &str,
        token: Option<String>,
    ) -> Result<Page<String>, AwsCallError> {
        let page = self
            .0
            .describe_access_points()
            .file_system_id(file_system)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsCallError::new("efs:DescribeAccessPoints", e))?;
        let ids = page
            .access_points()
            .iter()
            .filter(|ap| ap.root_directory().and_then(|r| r.path()) == Some(path))
            .filter(|ap| {
                !matches!(
                    ap.life_cycle_state(),
                    Some(LifeCycleState::Deleting | LifeCycleState::Deleted)
                )
            })
            .filter_map(|ap| ap.access_point_id())
            .map(str::to_string)
            .collect();
        Ok(Page::new(ids, page.next_token()))
    }

    async fn delete_access_point(&self, id: &str) -> Result<Removal, AwsCallError> {
        match self
            .0
            .delete_access_point()
            .access_point_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_access_point_not_found()) =>
            {
                Ok(Removal::AlreadyGone)
            }
            Err(e) => Err(AwsCallError::new("efs:DeleteAccessPoint", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_efs::operation::delete_access_point::DeleteAccessPointError;
    use aws_sdk_efs::operation::describe_access_points::DescribeAccessPointsOutput;
    use aws_sdk_efs::types::{AccessPointDescription, RootDirectory};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn ap(id: &str, path: &str, state: LifeCycleState) -> AccessPointDescription {
        AccessPointDescription::builder()
            .access_point_id(id)
            .root_directory(RootDirectory::builder().path(path).build())
            .life_cycle_state(state)
            .build()
    }

    #[tokio::test]
    async fn access_points_are_found_on_every_page_and_deleting_ones_skipped() {
        let first = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token().is_none() && r.file_system_id() == Some("fs-1"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(ap("fsap-other", "/other", LifeCycleState::Available))
                    .access_points(ap("fsap-old", "/acme", LifeCycleState::Deleting))
                    .next_token("2")
                    .build()
            });
        let second = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token() == Some("2"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(ap("fsap-1", "/acme", LifeCycleState::Available))
                    .build()
            });
        let client = mock_client!(aws_sdk_efs, RuleMode::MatchAny, [&first, &second]);
        let ids = crate::find::access_points(&EfsAdapter(client), "fs-1", "/acme")
            .await
            .expect("listed");
        assert_eq!(ids, ["fsap-1"]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_missing_access_point_is_already_gone() {
        let gone = mock!(aws_sdk_efs::Client::delete_access_point).then_error(|| {
            DeleteAccessPointError::AccessPointNotFound(
                aws_sdk_efs::types::error::AccessPointNotFound::builder()
                    .error_code("AccessPointNotFound")
                    .build()
                    .expect("error code set"),
            )
        });
        let client = mock_client!(aws_sdk_efs, [&gone]);
        assert_eq!(
            EfsAdapter(client)
                .delete_access_point("fsap-1")
                .await
                .expect("answered"),
            Removal::AlreadyGone
        );
    }
}
