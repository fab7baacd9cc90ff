//! Creating the table, for the local server and tests.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::{build_error, sdk_error, DynamoStore, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::ports::DependencyError;

impl DynamoStore {
    /// Creates the table when it is missing (on-demand billing, hash key `pk`), waits until it
    /// is active and turns TTL on for `expires_at`. For the local server and tests; deployments
    /// create the table from the SAM template.
    pub async fn ensure_table(&self) -> Result<(), DependencyError> {
        let mut status = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => out.table.and_then(|t| t.table_status),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create_table().await?
            }
            Err(err) => return Err(sdk_error("DescribeTable", &err)),
        };
        let mut polls = 0;
        while !matches!(status, Some(TableStatus::Active) | None) {
            if polls >= 120 {
                return Err(DependencyError(format!(
                    "DynamoDB table {} did not become active",
                    self.table
                )));
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|err| sdk_error("DescribeTable", &err))?
                .table
                .and_then(|t| t.table_status);
        }
        self.ensure_ttl().await
    }

    async fn create_table(&self) -> Result<Option<TableStatus>, DependencyError> {
        let op = "CreateTable";
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PARTITION_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| build_error(op, e))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PARTITION_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| build_error(op, e))?,
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.table_description.and_then(|t| t.table_status)),
            // Someone else created it meanwhile: wait for it like for ours.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(Some(TableStatus::Creating))
            }
            Err(err) => Err(sdk_error(op, &err)),
        }
    }

    async fn ensure_ttl(&self) -> Result<(), DependencyError> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeTimeToLive", &err))?;
        if let Some(ttl) = described.time_to_live_description {
            let on = matches!(
                ttl.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            );
            match ttl.attribute_name() {
                Some(TTL_ATTRIBUTE) if on => return Ok(()),
                Some(other) if on => {
                    return Err(DependencyError(format!(
                        "DynamoDB table {} has TTL on `{other}`, not `{TTL_ATTRIBUTE}`",
                        self.table
                    )))
                }
                _ => {}
            }
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| build_error("UpdateTimeToLive", e))?;
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A concurrent `ensure_table` got there first.
            Err(err)
                if err.code() == Some("ValidationException")
                    && err.message().is_some_and(|m| m.contains("already enabled")) =>
            {
                Ok(())
            }
            Err(err) => Err(sdk_error("UpdateTimeToLive", &err)),
        }
    }
}
