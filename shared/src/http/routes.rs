//! The route table, written once: the local server serves it, each Lambda function answers
//! its own rows, and the tests check the SAM template against it.

/// Every operation of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    SignUp,
    SignIn,
    RefreshToken,
    Revoke,
    SignOut,
    CurrentUser,
    Sudo,
    SendVerification,
    Verify,
    BindContact,
    GrantProviderToken,
    BindProvider,
    SignInWithProvider,
    ListProviders,
    UnbindProvider,
    /// `DELETE /user/me?sudo_token=`: the account, with every login key (issue 14).
    DeleteAccount,
    /// `POST /user/basic/edit`: `updateUser` / `updateUserBasicInfo`, the profile and an
    /// address this account just verified a code for (issue 14).
    EditBasicInfo,
    /// `PATCH /user/profile`: v1 `user.update` (issue 14).
    EditProfile,
    /// Passwords and sessions: `setPassword`, `resetPasswordForEmail`, `revokeAllDevices`.
    ChangePassword,
    ResetPassword,
    RevokeAll,
    /// The public keys that verify access tokens (JWKS).
    Jwks,
    /// The OpenID Connect discovery document: the issuer and where its keys are.
    OpenIdConfiguration,
    /// A new anonymous account and its session (`signInAnonymously`).
    SignInAnonymously,
    /// A custom-login ticket of the app's backend (`signInWithCustomTicket`, issue 25).
    SignInCustom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// `{name}` stands for one path segment.
    pub path: &'static str,
    pub operation: Operation,
    /// The Lambda function binary that serves this route.
    pub function: &'static str,
}

const fn route(
    method: &'static str,
    path: &'static str,
    operation: Operation,
    function: &'static str,
) -> Route {
    Route {
        method,
        path,
        operation,
        function,
    }
}

pub const ROUTES: &[Route] = &[
    route("POST", "/auth/v1/signup", Operation::SignUp, "signup"),
    route("POST", "/auth/v1/signin", Operation::SignIn, "signin"),
    route("POST", "/auth/v1/token", Operation::RefreshToken, "token"),
    route("POST", "/auth/v1/revoke", Operation::Revoke, "revoke"),
    route(
        "POST",
        "/auth/v1/user/signout",
        Operation::SignOut,
        "revoke",
    ),
    route("GET", "/auth/v1/user/me", Operation::CurrentUser, "user-me"),
    route("POST", "/auth/v1/user/sudo", Operation::Sudo, "sudo"),
    route(
        "POST",
        "/auth/v1/verification",
        Operation::SendVerification,
        "verification",
    ),
    route(
        "POST",
        "/auth/v1/verification/verify",
        Operation::Verify,
        "verify",
    ),
    route(
        "PATCH",
        "/auth/v1/user/contact",
        Operation::BindContact,
        "bind-contact",
    ),
    route(
        "POST",
        "/auth/v1/provider/token",
        Operation::GrantProviderToken,
        "provider-token",
    ),
    route(
        "POST",
        "/auth/v1/user/provider/bind",
        Operation::BindProvider,
        "bind-provider",
    ),
    route(
        "POST",
        "/auth/v1/signin/with/provider",
        Operation::SignInWithProvider,
        "signin-with-provider",
    ),
    route(
        "GET",
        "/auth/v1/user/provider",
        Operation::ListProviders,
        "list-providers",
    ),
    route(
        "DELETE",
        "/auth/v1/user/provider/{provider_id}",
        Operation::UnbindProvider,
        "unbind-provider",
    ),
    route(
        "DELETE",
        "/auth/v1/user/me",
        Operation::DeleteAccount,
        "delete-user",
    ),
    route(
        "POST",
        "/auth/v1/user/basic/edit",
        Operation::EditBasicInfo,
        "edit-profile",
    ),
    route(
        "PATCH",
        "/auth/v1/user/profile",
        Operation::EditProfile,
        "edit-profile",
    ),
    route(
        "PATCH",
        "/auth/v1/user/password",
        Operation::ChangePassword,
        "change-password",
    ),
    route(
        "POST",
        "/auth/v1/reset",
        Operation::ResetPassword,
        "reset-password",
    ),
    route(
        "DELETE",
        "/auth/v1/user/revoke/all",
        Operation::RevokeAll,
        "revoke-all",
    ),
    route(
        "GET",
        "/auth/v1/.well-known/jwks.json",
        Operation::Jwks,
        "jwks",
    ),
    route(
        "GET",
        "/auth/v1/.well-known/openid-configuration",
        Operation::OpenIdConfiguration,
        "jwks",
    ),
    route(
        "POST",
        "/auth/v1/signin/anonymously",
        Operation::SignInAnonymously,
        "signin-anonymously",
    ),
    route(
        "POST",
        "/auth/v1/signin/custom",
        Operation::SignInCustom,
        "signin-custom",
    ),
];

/// The function binaries, each once, in table order.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if !names.contains(&route.function) {
            names.push(route.function);
        }
    }
    names
}

/// What matching a path found.
pub enum Match<'a> {
    Found(&'a Route, Option<String>),
    /// The path exists, but not for this method.
    WrongMethod,
    None,
}

/// Finds the route among `routes` for a method and path; returns the value of a `{param}`.
pub fn find<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    method: &str,
    path: &str,
) -> Match<'a> {
    let candidates = matching(routes, path);
    match candidates
        .iter()
        .find(|(route, _)| route.method.eq_ignore_ascii_case(method))
    {
        Some((route, param)) => Match::Found(route, param.clone()),
        None if candidates.is_empty() => Match::None,
        None => Match::WrongMethod,
    }
}

/// The methods the table serves on a path, for the `Allow` header of a 405.
pub fn methods_of<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    path: &str,
) -> Vec<&'static str> {
    matching(routes, path)
        .into_iter()
        .map(|(route, _)| route.method)
        .collect()
}

/// The routes whose pattern matches `path`. A path that some pattern names literally (such as
/// `/auth/v1/user/provider/bind`) is that route's path only: `{param}` patterns do not claim it.
fn matching<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    path: &str,
) -> Vec<(&'a Route, Option<String>)> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let all: Vec<(&Route, Option<String>)> = routes
        .into_iter()
        .filter_map(|route| match_path(route.path, path).map(|param| (route, param)))
        .collect();
    if all.iter().any(|(_, param)| param.is_none()) {
        all.into_iter()
            .filter(|(_, param)| param.is_none())
            .collect()
    } else {
        all
    }
}

fn match_path(pattern: &str, path: &str) -> Option<Option<String>> {
    let mut pattern_parts = pattern.split('/');
    let mut path_parts = path.split('/');
    let mut param = None;
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return Some(param),
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') && !s.is_empty() => {
                param = Some(s.to_string());
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_and_without_a_trailing_slash() {
        assert!(
            matches!(find(ROUTES, "POST", "/auth/v1/signin"), Match::Found(r, None) if r.operation == Operation::SignIn)
        );
        assert!(matches!(
            find(ROUTES, "POST", "/auth/v1/signin/"),
            Match::Found(..)
        ));
        assert!(matches!(
            find(ROUTES, "GET", "/auth/v1/signin"),
            Match::WrongMethod
        ));
        assert!(matches!(
            find(ROUTES, "GET", "/auth/v1/nothing"),
            Match::None
        ));
    }

    #[test]
    fn path_parameters_are_captured() {
        match find(ROUTES, "DELETE", "/auth/v1/user/provider/wx_open") {
            Match::Found(route, Some(param)) => {
                assert_eq!(route.operation, Operation::UnbindProvider);
                assert_eq!(param, "wx_open");
            }
            _ => panic!("no match"),
        }
        assert!(matches!(
            find(ROUTES, "DELETE", "/auth/v1/user/provider/"),
            Match::WrongMethod | Match::None
        ));
    }

    #[test]
    fn a_literal_path_is_not_claimed_by_a_parameter() {
        assert!(matches!(
            find(ROUTES, "DELETE", "/auth/v1/user/provider/bind"),
            Match::WrongMethod
        ));
        assert_eq!(methods_of(ROUTES, "/auth/v1/user/provider/bind"), ["POST"]);
        assert!(matches!(
            find(ROUTES, "DELETE", "/auth/v1/user/provider/wx_open"),
            Match::Found(..)
        ));
    }

    #[test]
    fn every_method_and_path_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "{a:?} twice");
            }
        }
    }
}
