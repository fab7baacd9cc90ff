//! Attribute values: encoding the parts items share, and decoding any item.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::PARTITION_KEY;
use crate::domain::{
    Address, AddressKind, DisplayName, Picture, ProviderId, ProviderIdentity, ProviderProfile,
    SecretHash,
};
use crate::ports::DependencyError;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn b(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

pub(super) fn key_of(pk: String) -> Item {
    HashMap::from([(PARTITION_KEY.to_string(), s(pk))])
}

pub(super) fn identity_attributes(identity: &ProviderIdentity, profile: &ProviderProfile) -> Item {
    let mut map = Item::new();
    map.insert("provider".into(), s(identity.provider.as_str()));
    map.insert("subject".into(), s(identity.subject.as_str()));
    map.insert("app_subject".into(), s(identity.app_subject.as_str()));
    if let Some(name) = &profile.name {
        map.insert("name".into(), s(name.as_str()));
    }
    if let Some(picture) = &profile.picture {
        map.insert("picture".into(), s(picture.as_str()));
    }
    map
}

pub(super) fn insert_address(item: &mut Item, address: &Address) {
    item.insert("address_kind".into(), s(address.kind().as_str()));
    item.insert("address".into(), s(address.stored()));
}

// ---------------------------------------------------------------------------------------------
// Decoding: a malformed item is a dependency failure, never a panic.

pub(super) struct Record<'a> {
    item: &'a Item,
    kind: &'static str,
}

impl<'a> Record<'a> {
    pub(super) fn new(item: &'a Item, kind: &'static str) -> Self {
        Self { item, kind }
    }

    pub(super) fn malformed(&self, attribute: &str) -> DependencyError {
        DependencyError(format!(
            "malformed {} item in DynamoDB: attribute `{attribute}`",
            self.kind
        ))
    }

    pub(super) fn value(&self, attribute: &str) -> Option<&'a AttributeValue> {
        match self.item.get(attribute) {
            None | Some(AttributeValue::Null(_)) => None,
            Some(value) => Some(value),
        }
    }

    pub(super) fn opt_str(&self, attribute: &str) -> Result<Option<&'a str>, DependencyError> {
        match self.value(attribute) {
            None => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(self.malformed(attribute)),
        }
    }

    pub(super) fn str(&self, attribute: &str) -> Result<&'a str, DependencyError> {
        self.opt_str(attribute)?
            .ok_or_else(|| self.malformed(attribute))
    }

    pub(super) fn opt_parse<T, E>(
        &self,
        attribute: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, DependencyError> {
        self.opt_str(attribute)?
            .map(|raw| parse(raw).map_err(|_| self.malformed(attribute)))
            .transpose()
    }

    pub(super) fn parse<T, E>(
        &self,
        attribute: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, DependencyError> {
        self.opt_parse(attribute, parse)?
            .ok_or_else(|| self.malformed(attribute))
    }

    pub(super) fn opt_number<T: FromStr>(
        &self,
        attribute: &str,
    ) -> Result<Option<T>, DependencyError> {
        match self.value(attribute) {
            None => Ok(None),
            Some(AttributeValue::N(raw)) => {
                raw.parse().map(Some).map_err(|_| self.malformed(attribute))
            }
            Some(_) => Err(self.malformed(attribute)),
        }
    }

    pub(super) fn number<T: FromStr>(&self, attribute: &str) -> Result<T, DependencyError> {
        self.opt_number(attribute)?
            .ok_or_else(|| self.malformed(attribute))
    }

    pub(super) fn bool(&self, attribute: &str) -> Result<bool, DependencyError> {
        match self.value(attribute) {
            Some(AttributeValue::Bool(value)) => Ok(*value),
            _ => Err(self.malformed(attribute)),
        }
    }

    /// What follows `prefix` in the partition key.
    pub(super) fn key_suffix(&self, prefix: &str) -> Result<&'a str, DependencyError> {
        self.str(PARTITION_KEY)?
            .strip_prefix(prefix)
            .ok_or_else(|| self.malformed(PARTITION_KEY))
    }

    pub(super) fn hash_in_key(&self, prefix: &str) -> Result<SecretHash, DependencyError> {
        SecretHash::from_hex(self.key_suffix(prefix)?).ok_or_else(|| self.malformed(PARTITION_KEY))
    }

    pub(super) fn hash(&self, attribute: &str) -> Result<SecretHash, DependencyError> {
        SecretHash::from_hex(self.str(attribute)?).ok_or_else(|| self.malformed(attribute))
    }

    pub(super) fn address(&self) -> Result<Address, DependencyError> {
        let kind = AddressKind::parse(self.str("address_kind")?)
            .ok_or_else(|| self.malformed("address_kind"))?;
        self.parse("address", |raw| Address::from_stored(kind, raw))
    }

    pub(super) fn identity(&self) -> Result<(ProviderIdentity, ProviderProfile), DependencyError> {
        let subject = self.str("subject")?.to_string();
        let identity = ProviderIdentity {
            provider: self.parse("provider", ProviderId::parse)?,
            // Items written before both ids were kept hold one, which served as both.
            app_subject: self.opt_str("app_subject")?.unwrap_or(&subject).to_string(),
            subject,
        };
        // Cleaned again on the way out: items written before profiles were cleaned at the
        // adapter hold WeChat's text as it came.
        let profile = ProviderProfile {
            name: self.opt_str("name")?.and_then(DisplayName::from_provider),
            picture: self
                .opt_str("picture")?
                .and_then(|url| Picture::parse("picture", url).ok()),
        };
        Ok((identity, profile))
    }
}
