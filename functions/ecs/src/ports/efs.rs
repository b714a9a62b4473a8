//! The tenant's EFS access point (its `wp-content` directory) and its EFS adapter.

use super::{build_err, no_retries, Tags};
use aws_sdk_efs::types as efs;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// An EFS access point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// `fsap-…`.
    pub id: String,
    /// Its ARN.
    pub arn: String,
}

/// The tenant's access point on the environment's file system.
pub trait AccessPoints: Send + Sync {
    /// The access point rooted at `path` on `efs_id`; `known` (the one the
    /// current task definition mounts) is checked first, with one call, before
    /// the file system's access points are listed.
    fn find_access_point(
        &self,
        efs_id: &str,
        path: &str,
        known: Option<&str>,
    ) -> impl Future<Output = Result<Option<AccessPoint>, AwsCallError>> + Send;
    /// Creates it (idempotent through `token`).
    fn create_access_point(
        &self,
        efs_id: &str,
        path: &str,
        token: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<AccessPoint, AwsCallError>> + Send;
}

/// The EFS adapter.
#[derive(Clone)]
pub struct AwsEfs(pub aws_sdk_efs::Client);

impl AccessPoints for AwsEfs {
    async fn find_access_point(
        &self,
        efs_id: &str,
        path: &str,
        known: Option<&str>,
    ) -> Result<Option<AccessPoint>, AwsCallError> {
        let usable = |ap: &efs::AccessPointDescription| {
            ap.root_directory().and_then(|r| r.path()) == Some(path)
                && ap.life_cycle_state() != Some(&efs::LifeCycleState::Deleting)
                && ap.life_cycle_state() != Some(&efs::LifeCycleState::Deleted)
        };
        let found = |ap: &efs::AccessPointDescription| AccessPoint {
            id: ap.access_point_id().unwrap_or_default().to_string(),
            arn: ap.access_point_arn().unwrap_or_default().to_string(),
        };
        if let Some(id) = known {
            match self
                .0
                .describe_access_points()
                .access_point_id(id)
                .send()
                .await
            {
                Ok(page) => {
                    let on_our_fs = |ap: &&efs::AccessPointDescription| {
                        ap.file_system_id() == Some(efs_id) && usable(ap)
                    };
                    if let Some(ap) = page.access_points().iter().find(on_our_fs) {
                        return Ok(Some(found(ap)));
                    }
                }
                // Gone (or never ours): look for the tenant's by path below.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_access_point_not_found()) => {}
                Err(e) => return Err(AwsCallError::new("efs:DescribeAccessPoints (by id)", e)),
            }
        }
        let mut token = None;
        loop {
            let page = self
                .0
                .describe_access_points()
                .file_system_id(efs_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsCallError::new("efs:DescribeAccessPoints", e))?;
            if let Some(ap) = page.access_points().iter().find(|ap| usable(ap)) {
                return Ok(Some(found(ap)));
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn create_access_point(
        &self,
        efs_id: &str,
        path: &str,
        token: &str,
        tags: &Tags,
    ) -> Result<AccessPoint, AwsCallError> {
        let op = "efs:CreateAccessPoint";
        let mut create = self
            .0
            .create_access_point()
            .client_token(token)
            .file_system_id(efs_id)
            .posix_user(
                efs::PosixUser::builder()
                    .uid(33)
                    .gid(33)
                    .build()
                    .map_err(build_err(op))?,
            )
            .root_directory(
                efs::RootDirectory::builder()
                    .path(path)
                    .creation_info(
                        efs::CreationInfo::builder()
                            .owner_uid(33)
                            .owner_gid(33)
                            .permissions("755")
                            .build()
                            .map_err(build_err(op))?,
                    )
                    .build(),
            );
        for (key, value) in tags {
            create = create.tags(
                efs::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(build_err(op))?,
            );
        }
        let out = create
            .customize()
            .config_override(aws_sdk_efs::config::Builder::default().retry_config(no_retries()))
            .send()
            .await
            .map_err(|e| AwsCallError::new(op, e))?;
        Ok(AccessPoint {
            id: out.access_point_id().unwrap_or_default().to_string(),
            arn: out.access_point_arn().unwrap_or_default().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_efs::operation::describe_access_points::DescribeAccessPointsOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    /// goldencrust's access point on fs-1, as EFS describes it.
    fn goldencrust_ap() -> efs::AccessPointDescription {
        efs::AccessPointDescription::builder()
            .access_point_id("fsap-1")
            .access_point_arn("arn:fsap-1")
            .file_system_id("fs-1")
            .root_directory(efs::RootDirectory::builder().path("/goldencrust").build())
            .build()
    }

    #[tokio::test]
    async fn access_points_are_found_by_id_or_across_pages() {
        let page1 = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(
                        efs::AccessPointDescription::builder()
                            .access_point_id("fsap-other")
                            .root_directory(efs::RootDirectory::builder().path("/other").build())
                            .build(),
                    )
                    .next_token("2")
                    .build()
            });
        let page2 = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token() == Some("2"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(goldencrust_ap())
                    .build()
            });
        // The known id answers in one call; a stale one falls back to the listing.
        let by_id = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.access_point_id() == Some("fsap-1"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(goldencrust_ap())
                    .build()
            });
        let stale = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.access_point_id() == Some("fsap-gone"))
            .then_error(|| {
                aws_sdk_efs::operation::describe_access_points::DescribeAccessPointsError::AccessPointNotFound(
                    aws_sdk_efs::types::error::AccessPointNotFound::builder()
                        .error_code("AccessPointNotFound")
                        .build()
                        .expect("error code set"),
                )
            });
        let efs = AwsEfs(mock_client!(
            aws_sdk_efs,
            RuleMode::MatchAny,
            [&by_id, &stale, &page1, &page2]
        ));
        for known in [Some("fsap-1"), Some("fsap-gone"), None] {
            let ap = efs
                .find_access_point("fs-1", "/goldencrust", known)
                .await
                .expect("answered");
            assert_eq!(
                ap,
                Some(AccessPoint {
                    id: "fsap-1".into(),
                    arn: "arn:fsap-1".into()
                }),
                "{known:?}"
            );
        }
        assert_eq!(by_id.num_calls(), 1);
        assert_eq!(stale.num_calls(), 1);
        assert_eq!(page2.num_calls(), 2, "listed for the stale id and for none");
    }
}
