//! Dashboard login: the form, sessions in the store, CSRF, the rate limit, cookie flags, the
//! refusal to serve a non-loopback address without any login, and `opswatch user hash`.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::support::web::{Browser, app};
use opswatch::daemon::state::AppState;

static HASH: LazyLock<String> =
    LazyLock::new(|| opswatch::web::auth::password::hash_password("right-password").unwrap());

fn users_config(extra: &str) -> String {
    format!(
        "[[auth.users]]\nname = \"admin\"\npassword_hash = \"{}\"\n{extra}",
        *HASH
    )
}

/// The real router plus a stand-in page behind the page gate, as the dashboard will be.
fn router_with_page(app: &AppState) -> axum::Router {
    let pages = axum::Router::new()
        .route(
            "/stand-in",
            get(
                |s: Option<axum::Extension<opswatch::web::auth::Session>>| async move {
                    format!("overview for {}", s.map_or("nobody".into(), |s| s.0.user))
                },
            )
            .post(|| async { "changed".into_response() }),
        )
        .route("/test-page", get(|| async { "test page" }))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            opswatch::web::auth::require_session_for_pages,
        ))
        .with_state(app.clone());
    opswatch::web::router(app.clone()).merge(pages)
}

#[tokio::test]
async fn right_password_opens_a_session_wrong_or_unknown_answer_the_form_again() {
    let (app, _dir) = app(&users_config("")).await;
    let mut b = Browser::new(router_with_page(&app));

    let page = b.get("/test-page").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), Some("/login?next=%2Ftest-page"));

    let form = b.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"password\""));

    for (name, password) in [("admin", "wrong"), ("ghost", "right-password")] {
        let again = b.log_in(name, password).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(again.body.contains("Wrong name or password"), "{name}");
        assert!(again.body.contains("<form"), "{name}: the form again");
        assert!(!b.cookies.contains_key("opswatch_session"));
    }

    let ok = b.log_in("admin", "right-password").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/"));
    let cookie = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("opswatch_session="))
        .unwrap();
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    let page = b.get("/stand-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, "overview for admin");

    // The failures are in the store for the security report.
    let counted = app.store.count_failed_logins(0, i64::MAX).await.unwrap();
    assert_eq!(counted.total, 2);
    assert_eq!(
        counted.by_user,
        [("admin".to_owned(), 1), ("ghost".to_owned(), 1)]
    );
    assert_eq!(counted.by_address, [("192.0.2.10".to_owned(), 2)]);

    // /login and /health stay open; the API needs the session or a token.
    let mut stranger = Browser::new(router_with_page(&app));
    assert!(!stranger.get("/health").await.status.is_client_error());
    assert_eq!(
        stranger.get("/api/v1/checks").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.get("/api/v1/checks").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https_or_a_trusted_proxy_says_https() {
    let (app, _dir) = app(&format!(
        "[server]\npublic_url = \"https://ops.example.com\"\n{}",
        users_config("")
    ))
    .await;
    let mut b = Browser::new(router_with_page(&app));
    let ok = b.log_in("admin", "right-password").await;
    assert!(
        ok.set_cookies().iter().all(|c| c.contains("; Secure")),
        "{:?}",
        ok.set_cookies()
    );

    let (proxied, _dir2) = crate::support::web::app(&format!(
        "[server]\ntrusted_proxies = [\"192.0.2.0/24\"]\n{}",
        users_config("")
    ))
    .await;
    let mut b = Browser::new(router_with_page(&proxied));
    b.extra.push(("x-forwarded-proto".into(), "https".into()));
    let ok = b.log_in("admin", "right-password").await;
    assert!(
        ok.set_cookies().iter().all(|c| c.contains("; Secure")),
        "{:?}",
        ok.set_cookies()
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_too_long_or_logged_out() {
    let (app, dir) = app(&users_config("")).await;
    let mut b = Browser::new(router_with_page(&app));
    assert_eq!(
        b.log_in("admin", "right-password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.get("/stand-in").await.status, StatusCode::OK);

    // Idle for 13 hours (the default idle expiry is 12h): move the stored session back in time.
    let db = format!("sqlite://{}/o.db", dir.path().display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET last_seen_ms = last_seen_ms - 13 * 3600000")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        b.get("/stand-in").await.status,
        StatusCode::SEE_OTHER,
        "idle session still works"
    );

    // Logout: the old cookie no longer works, even replayed.
    b.cookies.clear();
    assert_eq!(
        b.log_in("admin", "right-password").await.status,
        StatusCode::SEE_OTHER
    );
    let old = b.cookies["opswatch_session"].clone();
    let csrf = csrf_of(&app, &old);
    let out = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), Some("/login"));
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("opswatch_session=;") && c.contains("Max-Age=0"))
    );
    b.cookies.insert("opswatch_session".into(), old);
    assert_eq!(
        b.get("/stand-in").await.status,
        StatusCode::SEE_OTHER,
        "logged-out cookie still works"
    );
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// The anti-CSRF token a page of this session would carry.
fn csrf_of(_app: &AppState, session_id: &str) -> String {
    opswatch::web::auth::session::csrf_for(session_id)
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_origin_are_refused() {
    let (app, _dir) = app(&users_config("")).await;
    let mut b = Browser::new(router_with_page(&app));

    // Login without the token, with another site's token, or from another origin.
    b.get("/login").await;
    let no_token = b
        .post_form(
            "/login",
            &[("name", "admin"), ("password", "right-password")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let forged = b
        .post_form(
            "/login",
            &[
                ("name", "admin"),
                ("password", "right-password"),
                ("csrf", "0123"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let form = b.get("/login").await;
        let csrf = form.csrf_field();
        b.extra = vec![(header.into(), value.into())];
        let r = b
            .post_form(
                "/login",
                &[
                    ("name", "admin"),
                    ("password", "right-password"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{header}: {value}");
        b.extra.clear();
    }
    // A browser on the same origin gets in.
    b.extra = vec![
        ("origin".into(), "http://opswatch.test".into()),
        ("sec-fetch-site".into(), "same-origin".into()),
    ];
    assert_eq!(
        b.log_in("admin", "right-password").await.status,
        StatusCode::SEE_OTHER
    );
    let csrf = csrf_of(&app, &b.cookies["opswatch_session"].clone());

    // A page's POST needs the session's token (form field or header) and the same origin.
    assert_eq!(
        b.post_form("/stand-in", &[("x", "1")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.post_form("/stand-in", &[("csrf", "nope")]).await.status,
        StatusCode::FORBIDDEN
    );
    let ok = b
        .post_form("/stand-in", &[("csrf", &csrf), ("x", "1")])
        .await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "changed"));
    b.extra = vec![("sec-fetch-site".into(), "cross-site".into())];
    assert_eq!(
        b.post_form("/stand-in", &[("csrf", &csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    // Logout is a form too.
    assert_eq!(
        b.post_form("/logout", &[("csrf", &csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    b.extra.clear();
    assert_eq!(
        b.post_form("/logout", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get("/stand-in").await.status,
        StatusCode::OK,
        "refused logouts left the session"
    );
}

#[tokio::test]
async fn five_failures_per_user_or_per_address_block_logins_for_15_minutes() {
    let (app, dir) = app(&format!(
        "{}[[auth.users]]\nname = \"second\"\npassword_hash = \"{}\"\n",
        users_config(""),
        *HASH
    ))
    .await;
    // Per user: failures from five different addresses.
    let mut b = Browser::new(router_with_page(&app));
    for i in 0..5 {
        b.peer = format!("198.51.100.{i}:4000").parse().unwrap();
        assert_eq!(
            b.log_in("admin", "nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    b.peer = "198.51.100.77:4000".parse().unwrap();
    let blocked = b.log_in("admin", "right-password").await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password too"
    );
    assert!(blocked.body.contains("Too many failed logins"));
    assert_eq!(
        b.log_in("second", "right-password").await.status,
        StatusCode::SEE_OTHER
    );

    // Per address: five names from one address block that address for everyone.
    let mut c = Browser::new(router_with_page(&app));
    c.peer = "203.0.113.5:4000".parse().unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        assert_eq!(c.log_in(name, "x").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        c.log_in("second", "right-password").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // 15 minutes later (the failures moved back 15 min + 1 s), logins work again.
    let db = format!("sqlite://{}/o.db", dir.path().display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE failed_logins SET at_ms = at_ms - 901000")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        b.log_in("admin", "right-password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        c.log_in("second", "right-password").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rate_limit_counts_the_forwarded_client() {
    let (app, _dir) = app(&format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{}",
        users_config("")
    ))
    .await;
    let mut b = Browser::new(router_with_page(&app));
    b.peer = "127.0.0.1:5555".parse().unwrap();
    b.extra = vec![("x-forwarded-for".into(), "203.0.113.44".into())];
    b.log_in("who", "x").await;
    // An untrusted peer's X-Forwarded-For is ignored.
    let mut c = Browser::new(router_with_page(&app));
    c.extra = vec![("x-forwarded-for".into(), "203.0.113.45".into())];
    c.log_in("who", "x").await;
    let counted = app.store.count_failed_logins(0, i64::MAX).await.unwrap();
    let mut addresses: Vec<String> = counted.by_address.into_iter().map(|(a, _)| a).collect();
    addresses.sort();
    assert_eq!(addresses, ["192.0.2.10", "203.0.113.44"]);
}

#[tokio::test]
async fn without_users_pages_are_open_but_cross_site_posts_are_not() {
    let (app, _dir) = app("").await;
    let mut b = Browser::new(router_with_page(&app));
    assert_eq!(b.get("/stand-in").await.body, "overview for nobody");
    assert_eq!(b.post_form("/stand-in", &[]).await.status, StatusCode::OK);
    b.extra = vec![("origin".into(), "https://evil.example".into())];
    assert_eq!(
        b.post_form("/stand-in", &[]).await.status,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn a_non_loopback_listen_without_any_login_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::support::sqlite_url(dir.path());
    let config =
        crate::support::write_config(dir.path(), &format!("[storage]\nurl = \"{store}\"\n"));
    let out = crate::support::run_cli(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            "0.0.0.0:0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.allow_anonymous"), "{stderr}");
    assert!(stderr.contains("0.0.0.0:0"), "{stderr}");
}

#[test]
fn user_hash_reads_one_line_and_prints_an_argon2id_hash() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::support::BIN)
        .args(["user", "hash"])
        .current_dir(dir.path())
        .env_remove("OPSWATCH_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pw with spaces\nsecond line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let checker = opswatch::web::auth::password::PasswordChecker::default();
    assert!(rt.block_on(checker.check(Some(phc), "pw with spaces")));
    assert!(!rt.block_on(checker.check(Some(phc), "second line")));
}
