//! Every metadata path, its content type and its failures, against an in-memory pod.

use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const UUID: &str = "6e9c4ad4-6f5a-4b84-9bfa-5f1c5f8f0a11";

fn image_id() -> ImageId {
    ImageId::parse(&format!("sha512-{}", "ab".repeat(64))).unwrap()
}

fn pod_json() -> String {
    format!(
        r#"{{"acVersion":"0.8.11","acKind":"PodManifest",
            "apps":[{{"name":"web","image":{{"name":"example.com/web","id":"{}"}},
                      "annotations":[{{"name":"role","value":"pod-wins"}},
                                     {{"name":"extra","value":"from-pod"}}]}}],
            "annotations":[{{"name":"team","value":"infra"}}]}}"#,
        image_id().as_str()
    )
}

const IMAGE_MANIFEST: &str = r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/web",
  "annotations":[{"name":"role","value":"image"},{"name":"authors","value":"someone"}]}"#;

struct Fixed;

impl PodSource for Fixed {
    fn pod_by_token(&self, token: &str) -> Option<PodData> {
        (token == TOKEN).then(|| PodData {
            uuid: UUID.parse().unwrap(),
            manifest_json: pod_json().into_bytes(),
            manifest: PodManifest::from_json(pod_json().as_bytes()).unwrap(),
        })
    }

    fn image_manifest(&self, id: &ImageId) -> Option<Vec<u8>> {
        (*id == image_id()).then(|| IMAGE_MANIFEST.as_bytes().to_vec())
    }
}

fn service() -> Service<Fixed> {
    Service::new(Fixed, HmacKey::from_bytes([9u8; 64]))
}

fn call(method: &str, path: &str, body: &str) -> Response {
    let target = format!("/{TOKEN}/acMetadata/v1{path}");
    service().handle(&Request {
        method,
        target: &target,
        body: body.as_bytes(),
    })
}

fn get(path: &str) -> Response {
    call("GET", path, "")
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn pod_annotations_are_the_manifests_list() {
    let r = get("/pod/annotations");
    assert_eq!((r.status, r.content_type), (200, "application/json"));
    assert_eq!(
        json(&r),
        serde_json::json!([{"name": "team", "value": "infra"}])
    );
}

#[test]
fn pod_manifest_is_served_byte_for_byte() {
    let r = get("/pod/manifest");
    assert_eq!((r.status, r.content_type), (200, "application/json"));
    assert_eq!(r.body, pod_json().as_bytes());
}

#[test]
fn pod_uuid_is_plain_ascii() {
    let r = get("/pod/uuid");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/plain; charset=us-ascii")
    );
    assert_eq!(r.body, UUID.as_bytes());
}

#[test]
fn app_annotations_merge_pod_over_image() {
    let r = get("/apps/web/annotations");
    assert_eq!((r.status, r.content_type), (200, "application/json"));
    assert_eq!(
        json(&r),
        serde_json::json!([
            {"name": "role", "value": "pod-wins"},
            {"name": "authors", "value": "someone"},
            {"name": "extra", "value": "from-pod"},
        ])
    );
}

#[test]
fn app_image_manifest_and_id() {
    let r = get("/apps/web/image/manifest");
    assert_eq!((r.status, r.content_type), (200, "application/json"));
    assert_eq!(r.body, IMAGE_MANIFEST.as_bytes());
    let r = get("/apps/web/image/id");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/plain; charset=us-ascii")
    );
    assert_eq!(r.body, image_id().as_str().as_bytes());
}

#[test]
fn unknown_app_is_404() {
    for path in [
        "/apps/db/annotations",
        "/apps/db/image/manifest",
        "/apps/db/image/id",
    ] {
        assert_eq!(get(path).status, 404, "{path}");
    }
}

#[test]
fn sign_then_verify_round_trip() {
    let r = call("POST", "/pod/hmac/sign", "content=hello+world%21");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/plain; charset=us-ascii")
    );
    let signature = String::from_utf8(r.body).unwrap();
    // The signature is over the uuid's bytes and the decoded content.
    let expected = HmacKey::from_bytes([9u8; 64]).sign(&UUID.parse().unwrap(), b"hello world!");
    assert_eq!(signature, expected);

    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("content", "hello world!")
        .append_pair("uuid", UUID)
        .append_pair("signature", &signature)
        .finish();
    let r = call("POST", "/pod/hmac/verify", &form);
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/plain; charset=us-ascii")
    );

    let tampered = form.replace("world", "there");
    let r = call("POST", "/pod/hmac/verify", &tampered);
    assert_eq!(
        (r.status, r.content_type),
        (403, "text/plain; charset=us-ascii")
    );

    let other_pod = form.replace(UUID, "00000000-0000-4000-8000-000000000000");
    assert_eq!(call("POST", "/pod/hmac/verify", &other_pod).status, 403);
}

#[test]
fn hmac_form_errors_are_400() {
    assert_eq!(call("POST", "/pod/hmac/sign", "").status, 400);
    assert_eq!(call("POST", "/pod/hmac/sign", "content=").status, 400);
    assert_eq!(
        call("POST", "/pod/hmac/verify", "content=x&signature=AA==").status,
        400
    );
    assert_eq!(
        call(
            "POST",
            "/pod/hmac/verify",
            &format!("content=x&uuid={UUID}&signature=%%%")
        )
        .status,
        400
    );
    assert_eq!(
        call(
            "POST",
            "/pod/hmac/verify",
            &format!("uuid={UUID}&signature=AA==")
        )
        .status,
        400
    );
}

#[test]
fn wrong_method_is_405() {
    assert_eq!(call("POST", "/pod/uuid", "").status, 405);
    assert_eq!(get("/pod/hmac/sign").status, 405);
}

#[test]
fn unknown_token_is_401_and_unknown_path_404() {
    let r = service().handle(&Request {
        method: "GET",
        target: "/ffffffffffffffffffffffffffffffff/acMetadata/v1/pod/uuid",
        body: b"",
    });
    assert_eq!(r.status, 401);
    assert!(!r.body.windows(UUID.len()).any(|w| w == UUID.as_bytes()));
    for path in ["/pod", "/pod/uuid/x", "/apps/web", "/nothing", ""] {
        assert_eq!(get(path).status, 404, "{path:?}");
    }
    for target in [
        "/",
        "/x",
        &format!("/{TOKEN}"),
        &format!("/{TOKEN}/acMetadata/v2/pod/uuid"),
    ] {
        let r = service().handle(&Request {
            method: "GET",
            target,
            body: b"",
        });
        assert_eq!(r.status, 404, "{target}");
    }
}

#[test]
fn query_strings_are_ignored_for_routing() {
    assert_eq!(get("/pod/uuid?x=1").body, UUID.as_bytes());
}

#[test]
fn tokens_are_256_random_bits_in_hex() {
    let a = new_token().unwrap();
    let b = new_token().unwrap();
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn metadata_url_shape() {
    assert_eq!(
        metadata_url("10.1.0.1".parse().unwrap(), "tok"),
        "http://10.1.0.1:18112/tok"
    );
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let big = vec![b'a'; MAX_BODY as usize + 1];
    assert_eq!(read_body(big.as_slice()).unwrap(), None);
    let ok = vec![b'a'; 10];
    assert_eq!(read_body(ok.as_slice()).unwrap(), Some(ok));
}

#[test]
fn constant_time_eq_compares_whole_strings() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}
