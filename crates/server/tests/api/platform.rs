//! The shared HTTP layer: request ids, problem+json for every failure, body
//! limits, request limits, CORS, health, metrics and the API description.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{PROBLEM_JSON, TestApp, expect_problem};

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let app = TestApp::spawn().await;

    let generated = app.get("/healthz", None).await;
    let echoed = app
        .http
        .get(app.url("/nowhere"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("an answer");

    let id = generated
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    assert!(id.is_some_and(|id| id.len() == 36));
    assert_eq!(
        echoed
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-42")
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;

    expect_problem(
        app.get("/api/v1/nothing-here", None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let wrong = app
        .request(Method::DELETE, "/api/v1/auth/signup", None, None)
        .await;
    assert!(wrong.headers().get("allow").is_some());
    expect_problem(wrong, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::spawn_with(|s| s.body_limit_bytes = 1024).await;
    let big = json!({"email": "a@example.com", "password": "x".repeat(4096)});

    expect_problem(
        app.post("/api/v1/auth/signup", None, big.clone()).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    expect_problem(
        app.post("/api/v1/auth/refresh", None, big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_400_and_a_wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let send = |content_type: &'static str, body: &'static str| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    expect_problem(
        send("application/json", "{\"email\":")
            .await
            .expect("answer"),
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        send("application/json", "{\"email\": 5, \"password\": []}")
            .await
            .expect("answer"),
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        send("application/json", "{}").await.expect("answer"),
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_problem(
        send("text/plain", "hello").await.expect("answer"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn no_request_body_however_malformed_produces_a_server_error() {
    let app = TestApp::spawn_with(|s| s.body_limit_bytes = 64 * 1024).await;
    let admin = app.admin().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let huge_string = format!(
        "{{\"email\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(60_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"str\"".to_vec(),
        b"{\"email\": null, \"password\": null}".to_vec(),
        b"{\"email\": \"\\u0000@x.io\", \"password\": \"\\ud800aaaaaaaa\"}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        deep.into_bytes(),
        huge_string.into_bytes(),
        vec![b'{'; 70_000],
        b"{\"roles\": [null, 1, {}]}".to_vec(),
        b"{\"refresh_token\": 12}".to_vec(),
    ];
    // Logout with a bearer token ignores the body, so it is sent without one.
    let targets = [
        (Method::POST, "/api/v1/auth/signup".to_owned(), None),
        (Method::POST, "/api/v1/auth/login".to_owned(), None),
        (Method::POST, "/api/v1/auth/refresh".to_owned(), None),
        (Method::POST, "/api/v1/auth/logout".to_owned(), None),
        (
            Method::PUT,
            format!("/api/v1/users/{}/roles", admin.user_id),
            Some(&admin.access_token),
        ),
    ];

    for (method, path, token) in &targets {
        for body in &bodies {
            let mut request = app.http.request(method.clone(), app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            let status = response.status();
            assert!(status.is_client_error(), "{method} {path} gave {status}");
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            assert_eq!(content_type, Some(PROBLEM_JSON), "{method} {path}");
        }
    }
    // The server is still well.
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let health: Value = app.get("/healthz", None).await.json().await.expect("json");
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"], "up", "{ready}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_api_answers_are_not_cached() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/api/v1/events", "/docs/", "/no-such-page"] {
        let response = app.get(path, None).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        if path.starts_with("/docs") {
            let csp = header("content-security-policy").unwrap_or_default();
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        } else {
            assert_eq!(
                header("cache-control").as_deref(),
                Some("no-store"),
                "{path}"
            );
        }
    }
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 200);
    assert_eq!(
        login
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[tokio::test]
async fn the_api_page_asks_no_outside_validator() {
    let app = TestApp::spawn().await;
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("text");
    assert!(init.contains(r#""validatorUrl": "none""#), "{init}");
    assert!(!init.contains("validator.swagger.io"), "{init}");
}

#[tokio::test]
async fn metrics_move_to_their_own_listener_when_metrics_listen_is_set() {
    let app = TestApp::spawn_with(|s| s.metrics_listen = Some("127.0.0.1:0".into())).await;
    let metrics = app.metrics_base.clone().expect("a metrics listener");
    let served = app
        .http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(served.status(), 200);
    assert!(served.text().await.expect("text").contains("# TYPE"));
    assert_eq!(app.get("/metrics", None).await.status(), 404);
}

#[tokio::test]
async fn metrics_label_requests_by_route_template_not_raw_path() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = admin.user_id.clone();
    assert_eq!(
        app.get(&format!("/api/v1/users/{id}"), Some(&admin.access_token))
            .await
            .status(),
        200
    );
    let made_up = Method::from_bytes(b"PURGE").expect("a method");
    let purged = app
        .http
        .request(made_up, app.url("/healthz"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(purged.status(), 405);

    let text = app.get("/metrics", None).await.text().await.expect("text");

    assert!(text.contains(r#"route="/api/v1/users/{id}""#), "{text}");
    assert!(!text.contains(&id), "raw ids must not become labels");
    assert!(
        text.contains(r#"method="OTHER",route="/healthz",status="405""#),
        "{text}"
    );
    assert!(
        !text.contains("PURGE"),
        "made-up methods must not become labels"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("db_pool_connections"));
    assert!(text.contains("bus_outbox_unpublished"), "{text}");
    assert!(text.contains("bus_inbox_pending"), "{text}");
    assert!(text.contains("bus_relay_lag_seconds"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;

    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users/{id}/roles", "put"),
        ("/.well-known/jwks.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/admin-api/dead-letters", "get"),
        ("/admin-api/dead-letters/{id}/replay", "post"),
        ("/admin-api/dead-letters/{id}", "delete"),
        ("/api/v1/events", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/{id}", "get"),
        ("/api/v1/events/{id}", "patch"),
        ("/api/v1/events/{id}", "delete"),
        ("/api/v1/rewards", "post"),
        ("/api/v1/rewards", "get"),
        ("/api/v1/rewards/{id}", "get"),
        ("/api/v1/events/{id}/rewards", "post"),
        ("/api/v1/events/{id}/rewards", "get"),
        ("/api/v1/events/{id}/rewards/{event_reward_id}", "patch"),
        ("/api/v1/events/{id}/rewards/{event_reward_id}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ProblemDetails"].is_object());
    assert!(doc["components"]["schemas"]["User"].is_object());
    assert!(doc["components"]["schemas"]["Event"].is_object());
    assert!(doc["components"]["schemas"]["EventReward"].is_object());
}

/// What the middleware answers is in the document on every route it can
/// happen on, so a generated client or a fuzzer meets no undocumented status.
#[tokio::test]
async fn every_route_documents_the_answers_of_the_middleware() {
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut seen_body = false;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let responses = &operation["responses"];
            let has = |status: &str| responses[status].is_object();
            for status in ["408", "429", "503"] {
                assert!(has(status), "{method} {path} documents {status}");
            }
            if operation["requestBody"].is_object() {
                seen_body = true;
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{method} {path} documents {status}");
                }
            }
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                assert!(has("401"), "{method} {path} documents 401");
            }
        }
    }
    assert!(seen_body, "some route takes a body");
}

/// An unsigned count is declared as one (`uint32`, 0 to 4,294,967,295), not
/// as an `int32` whose range stops at 2^31 − 1 while the server accepts more.
#[tokio::test]
async fn unsigned_counts_are_declared_with_their_range() {
    fn formats(value: &Value, path: &str, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                if let Some(format) = map.get("format").and_then(Value::as_str) {
                    found.push((path.to_owned(), format.to_owned()));
                }
                for (key, inner) in map {
                    formats(inner, &format!("{path}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    formats(inner, &format!("{path}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let doc = app.openapi().await;
    let mut found = Vec::new();
    formats(&doc, "", &mut found);
    let format_of = |suffix: &str| {
        found
            .iter()
            .find(|(path, _)| path.ends_with(suffix))
            .map(|(_, format)| format.as_str())
    };
    assert_eq!(
        format_of("/schemas/Reservation/properties/quantity"),
        Some("uint32")
    );
    assert_eq!(
        format_of("/schemas/RewardKind/oneOf/0/properties/points"),
        Some("uint32")
    );
    let quantity = doc
        .pointer("/components/schemas/Reservation/properties/quantity")
        .expect("a quantity");
    assert_eq!(quantity["maximum"], u32::MAX, "{quantity}");
    let points = doc
        .pointer("/components/schemas/RewardKind/oneOf/0/properties/points")
        .expect("points");
    assert_eq!(points["minimum"], 1, "a field's own bound stays: {points}");
    let unknown: Vec<&(String, String)> = found
        .iter()
        .filter(|(_, format)| {
            format.starts_with("u-")
                || format.contains("int") && {
                    ![
                        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                    ]
                    .contains(&format.as_str())
                }
        })
        .collect();
    assert!(unknown.is_empty(), "formats no tool knows: {unknown:?}");
}

#[tokio::test]
async fn the_api_page_works_without_the_internet() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");

    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} is referenced");
        let served = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(served.status(), 200, "{asset} is served locally");
    }
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no CDN links"
    );
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("js");
    assert!(init.contains("/openapi.json"));
}

#[tokio::test]
async fn request_limits_answer_429_with_retry_after_and_can_be_turned_off() {
    let limited = TestApp::spawn_with(|s| {
        s.rate_limit = server::config::Switch::On;
        s.rate_limit_per_address = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(limited.get("/healthz", None).await);
    }
    let refused = statuses
        .into_iter()
        .find(|r| r.status() == 429)
        .expect("a 429");
    assert!(refused.headers().get("retry-after").is_some());
    expect_problem(refused, 429, "RATE_LIMITED").await;

    let unlimited = TestApp::spawn().await;
    for _ in 0..50 {
        assert_eq!(unlimited.get("/healthz", None).await.status(), 200);
    }
}

#[tokio::test]
async fn a_signed_in_user_is_limited_by_their_own_quota() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit = server::config::Switch::On;
        s.rate_limit_per_address = 1000;
        s.rate_limit_per_user = 3;
    })
    .await;
    let user = app.new_user().await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            app.get("/api/v1/auth/me", Some(&user.access_token))
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(codes.contains(&429), "{codes:?}");
    // Another user is not affected.
    let other = app.new_user().await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&other.access_token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app =
        TestApp::spawn_with(|s| s.cors_allowed_origins = vec!["https://ops.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, app.url("/api/v1/auth/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };

    let allowed = preflight("https://ops.example").await.expect("answer");
    let refused = preflight("https://evil.example").await.expect("answer");

    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://ops.example")
    );
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn the_server_stops_cleanly() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.stop().await;
}
