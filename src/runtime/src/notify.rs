//! Readiness passthrough: an app whose image says it speaks sd_notify(3) runs as a
//! `Type=notify` unit in the pod, so that its unit is active only once it sent `READY=1`;
//! stage1 tells the host's systemd the pod is ready only when every such app is.

use rkt_schema::ImageManifest;

/// The appc annotation by which an image says its app sends `READY=1` (as in rkt).
pub const SUPPORTS_SYSTEMD_NOTIFY: &str = "appc.io/executor/supports-systemd-notify";

/// Whether the image's app sends `READY=1` itself (its annotation is `"true"`).
pub fn supports_notify(image: &ImageManifest) -> bool {
    image.annotation(SUPPORTS_SYSTEMD_NOTIFY) == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(annotations: &str) -> ImageManifest {
        let json = format!(
            r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app",
                "annotations":[{annotations}]}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn only_true_means_notify() {
        let yes = r#"{"name":"appc.io/executor/supports-systemd-notify","value":"true"}"#;
        let no = r#"{"name":"appc.io/executor/supports-systemd-notify","value":"false"}"#;
        assert!(supports_notify(&manifest(yes)));
        assert!(!supports_notify(&manifest(no)));
        assert!(!supports_notify(&manifest("")));
    }
}
