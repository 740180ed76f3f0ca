//! NetSuite serves each family of paths on its own account host
//! (`{account}.{service}.netsuite.com`): REST web services and SOAP (`/services/…`) on
//! `suitetalk.api`, RESTlets and the token services (`/rest/…`, `/app/site/hosting/restlet.nl`)
//! on `restlets.api`, the UI's pages (the authorize page, `/app/…`) on `app`. A client given one
//! of those hosts sends each call to its family's host, so one saved server serves every
//! surface. Other hosts are left as given: keycard's own server answers every path on every
//! account host, and names such as `1234567.suitetalk.api.localhost` need not resolve.

const DOMAIN: &str = ".netsuite.com";
const SERVICES: [&str; 4] = ["restlets.api", "suitetalk.api", "app", "extforms"];

/// `base_url` (scheme, host, optional port and path prefix; no trailing `/`) with its host
/// moved to the service that serves `path`, when it is a NetSuite account host.
pub fn service_base(base_url: &str, path: &str) -> String {
    let Some(service) = service_for(path) else {
        return base_url.to_owned();
    };
    let Ok(mut url) = reqwest::Url::parse(base_url) else {
        return base_url.to_owned();
    };
    // `Url` keeps http(s) host names in lower case.
    let Some(moved) = url.host_str().and_then(|host| moved_host(host, service)) else {
        return base_url.to_owned();
    };
    if url.set_host(Some(&moved)).is_err() {
        return base_url.to_owned();
    }
    url.as_str().trim_end_matches('/').to_owned()
}

/// The account a NetSuite account host names (`1234567-sb1` for
/// `https://1234567-sb1.restlets.api.netsuite.com`), `None` for any other host.
pub fn account_of(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url).ok()?;
    let services = url.host_str()?.strip_suffix(DOMAIN)?;
    let (account, service) = services.split_once('.')?;
    (SERVICES.contains(&service) && !account.is_empty()).then(|| account.to_owned())
}

/// The service whose host serves `path`, for the families NetSuite splits.
fn service_for(path: &str) -> Option<&'static str> {
    if path.starts_with("/services/") {
        Some("suitetalk.api")
    } else if path.starts_with("/rest/") || path.starts_with("/app/site/hosting/restlet.nl") {
        Some("restlets.api")
    } else if path.starts_with("/app/") {
        Some("app")
    } else {
        None
    }
}

/// `{account}.{service}.netsuite.com` for `host` = `{account}.{other service}.netsuite.com`.
fn moved_host(host: &str, service: &str) -> Option<String> {
    let services = host.strip_suffix(DOMAIN)?;
    let (account, current) = services.split_once('.')?;
    (SERVICES.contains(&current) && current != service && !account.is_empty())
        .then(|| format!("{account}.{service}{DOMAIN}"))
}

#[cfg(test)]
mod tests {
    use super::{account_of, service_base};

    #[test]
    fn an_account_host_names_its_account() {
        assert_eq!(
            account_of("https://1234567-SB1.restlets.api.netsuite.com/").as_deref(),
            Some("1234567-sb1")
        );
        assert_eq!(
            account_of("https://1234567.suitetalk.api.netsuite.com").as_deref(),
            Some("1234567")
        );
        for other in [
            "http://localhost:8910",
            "https://www.netsuite.com",
            "https://a.b.example.com",
            "not a url",
        ] {
            assert_eq!(account_of(other), None, "{other}");
        }
    }

    #[test]
    fn netsuite_account_hosts_follow_the_path_family() {
        let restlets = "https://1234567-sb1.restlets.api.netsuite.com";
        let suitetalk = "https://1234567-sb1.suitetalk.api.netsuite.com";
        let app = "https://1234567-sb1.app.netsuite.com";
        for base in [restlets, suitetalk, app] {
            assert_eq!(
                service_base(base, "/services/rest/record/v1/customer"),
                suitetalk
            );
            assert_eq!(
                service_base(base, "/services/NetSuitePort_2019_1"),
                suitetalk
            );
            assert_eq!(service_base(base, "/rest/tokeninfo"), restlets);
            assert_eq!(service_base(base, "/app/site/hosting/restlet.nl"), restlets);
            assert_eq!(
                service_base(base, "/app/login/secure/authorizetoken.nl"),
                app
            );
            // Paths of no family stay where the base says.
            assert_eq!(service_base(base, "/healthz"), base);
        }
        // Host names in any case; a port and a path prefix are kept.
        assert_eq!(
            service_base(
                "https://1234567.RESTlets.API.NetSuite.com:8443/x",
                "/services/rest/q"
            ),
            "https://1234567.suitetalk.api.netsuite.com:8443/x"
        );
    }

    #[test]
    fn other_hosts_are_left_as_given() {
        for base in [
            "http://localhost:8910",
            "https://1234567.restlets.api.localhost:8910",
            "https://rest.netsuite.com",
            "https://system.netsuite.com",
            "https://a.b.restlets.api.example.com",
            "https://1234567.restlets.api.netsuite.com.evil.example",
            "not a url",
        ] {
            assert_eq!(
                service_base(base, "/services/rest/record/v1/customer"),
                base
            );
        }
    }
}
