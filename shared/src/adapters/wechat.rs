//! WeChat Open Platform web login: exchanges an OAuth code at `sns/oauth2/access_token` and
//! reads `sns/userinfo`. WeChat answers errors as HTTP 200 with `errcode` and `errmsg`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::adapters::trust;
use crate::domain::{DisplayName, Picture, ProviderId, ProviderIdentity, ProviderProfile};
use crate::ports::{IdentityProvider, ProviderError};

/// The Open Platform app the service exchanges codes as.
pub struct WeChatApp {
    pub app_id: String,
    pub app_secret: String,
}

impl std::fmt::Debug for WeChatApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatApp")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .finish()
    }
}

pub struct WeChat {
    settings: Option<WeChatApp>,
    api_base: String,
    /// Built with the app, during init (where Lambda gives full CPU), trusting the
    /// compiled-in roots alone: the first request does not pay for TLS set-up.
    client: Result<reqwest::Client, String>,
}

/// Codes WeChat uses for a bad, expired or used authorization code.
const INVALID_CODE_ERRCODES: &[i64] = &[40029, 40163, 41008, 40030, 42003];

#[derive(Deserialize)]
struct AccessTokenAnswer {
    errcode: Option<i64>,
    errmsg: Option<String>,
    access_token: Option<String>,
    openid: Option<String>,
    unionid: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct UserInfoAnswer {
    errcode: Option<i64>,
    nickname: Option<String>,
    headimgurl: Option<String>,
    unionid: Option<String>,
}

impl WeChat {
    pub fn new(settings: Option<WeChatApp>, api_base: String, timeout: Duration) -> Self {
        Self {
            settings,
            api_base,
            client: trust::reqwest_roots()
                .and_then(|roots| {
                    reqwest::Client::builder()
                        .tls_certs_only(roots)
                        .timeout(timeout)
                        .connect_timeout(timeout)
                        .build()
                })
                .map_err(|e| e.to_string()),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        self.client
            .as_ref()
            .map_err(|e| ProviderError::Unavailable(format!("building the HTTP client: {e}")))
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        let url = format!("{}/{path}", self.api_base);
        let response = self
            .client()?
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| {
                ProviderError::Unavailable(format!("WeChat {path}: {}", e.without_url()))
            })?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!(
                "WeChat {path} answered HTTP {}",
                response.status()
            )));
        }
        response.json::<T>().await.map_err(|e| {
            ProviderError::Unavailable(format!("WeChat {path} answer: {}", e.without_url()))
        })
    }
}

fn errcode_error(path: &str, errcode: i64, errmsg: Option<&str>) -> ProviderError {
    let detail = format!("WeChat {path} errcode {errcode}: {}", errmsg.unwrap_or(""));
    if INVALID_CODE_ERRCODES.contains(&errcode) {
        ProviderError::InvalidCode(detail)
    } else {
        ProviderError::Unavailable(detail)
    }
}

#[async_trait]
impl IdentityProvider for WeChat {
    async fn exchange_code(
        &self,
        provider: ProviderId,
        code: &str,
        _redirect_uri: Option<&str>,
    ) -> Result<(ProviderIdentity, ProviderProfile), ProviderError> {
        let ProviderId::WxOpen = provider;
        let settings = self.settings.as_ref().ok_or(ProviderError::NotConfigured)?;
        let token: AccessTokenAnswer = self
            .get(
                "sns/oauth2/access_token",
                &[
                    ("appid", settings.app_id.as_str()),
                    ("secret", settings.app_secret.as_str()),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        if let Some(errcode) = token.errcode.filter(|&c| c != 0) {
            return Err(errcode_error(
                "sns/oauth2/access_token",
                errcode,
                token.errmsg.as_deref(),
            ));
        }
        let (Some(access_token), Some(openid)) = (token.access_token, token.openid) else {
            return Err(ProviderError::Unavailable(
                "WeChat sns/oauth2/access_token answered without access_token or openid".into(),
            ));
        };
        let mut unionid = token.unionid;
        let mut profile = ProviderProfile::default();
        let scope = token.scope.unwrap_or_default();
        if scope.contains("snsapi_userinfo") || scope.contains("snsapi_login") {
            // The profile is a nicety: an identity without it still signs in.
            match self
                .get::<UserInfoAnswer>(
                    "sns/userinfo",
                    &[
                        ("access_token", access_token.as_str()),
                        ("openid", openid.as_str()),
                    ],
                )
                .await
            {
                Ok(info) if info.errcode.unwrap_or(0) == 0 => {
                    // WeChat's answer is the user's own text: cleaned and bounded here, once.
                    profile.name = info
                        .nickname
                        .as_deref()
                        .and_then(DisplayName::from_provider);
                    profile.picture = info
                        .headimgurl
                        .as_deref()
                        .and_then(|url| Picture::parse("headimgurl", url).ok());
                    unionid = unionid.or(info.unionid);
                }
                Ok(info) => tracing::warn!(errcode = info.errcode, "WeChat sns/userinfo refused"),
                Err(err) => tracing::warn!(error = %err, "WeChat sns/userinfo failed"),
            }
        }
        let openid = wechat_id(&openid).ok_or_else(|| {
            ProviderError::Unavailable("WeChat answered an openid of an unknown shape".into())
        })?;
        // A unionid of another shape is as good as none: the openid still finds the person.
        let unionid = unionid.as_deref().and_then(wechat_id);
        let identity = ProviderIdentity {
            provider,
            subject: unionid.unwrap_or(openid).to_string(),
            app_subject: openid.to_string(),
        };
        Ok((identity, profile))
    }
}

/// WeChat's ids (`openid`, `unionid`) are 28 characters of base64url; anything of 1 to 64
/// printable ASCII characters is taken, anything else is not an id (it goes into login keys
/// and, in base64url, into the provider token, which must stay within 512 bytes).
fn wechat_id(raw: &str) -> Option<&str> {
    let id = raw.trim();
    let shaped = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
    shaped.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_ids_are_short_printable_ascii() {
        assert_eq!(
            wechat_id(" o6_bmjrPTlm6_2sgVt7hMZOPfL2M "),
            Some("o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
        );
        let long = "o".repeat(65);
        for raw in [
            "",
            "  ",
            "o6 bm",
            "o6\u{0}",
            "\u{5FAE}\u{4FE1}",
            long.as_str(),
        ] {
            assert_eq!(wechat_id(raw), None, "{raw:?}");
        }
    }
}
