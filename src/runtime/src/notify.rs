//! Readiness passthrough: an app whose image says it speaks sd_notify(3) runs as a
//! `Type=notify` unit in the pod, so that its unit is active only once it sent `READY=1`;
//! stage1 tells the host's systemd the pod is ready only when every such app is.

use zbus::zvariant::Value;

use rkt_schema::ImageManifest;

/// The appc annotation by which an image says its app sends `READY=1` (as in rkt).
pub const SUPPORTS_SYSTEMD_NOTIFY: &str = "appc.io/executor/supports-systemd-notify";

/// Whether the image's app sends `READY=1` itself (its annotation is `"true"`).
pub fn supports_notify(image: &ImageManifest) -> bool {
    image.annotation(SUPPORTS_SYSTEMD_NOTIFY) == Some("true")
}

/// Turns an app's unit properties (from [`super::app_unit_properties`]) into a `Type=notify`
/// unit: active once its main process sent `READY=1`, not as soon as it was executed.
pub fn make_notify_unit(properties: &mut Vec<(&'static str, Value<'static>)>) {
    properties.retain(|(name, _)| !matches!(*name, "Type" | "NotifyAccess" | "TimeoutStartUSec"));
    properties.push(("Type", Value::from("notify")));
    // Only the app itself may say it is ready, not whatever it runs.
    properties.push(("NotifyAccess", Value::from("main")));
    // As long as it takes (as in rkt): the caller's own start timeout is the bound.
    properties.push(("TimeoutStartUSec", Value::from(u64::MAX)));
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

    #[test]
    fn a_notify_unit_has_one_type() {
        let mut props = vec![
            ("Type", Value::from("exec")),
            ("ExecStart", Value::from("x")),
        ];
        make_notify_unit(&mut props);
        let types: Vec<String> = props
            .iter()
            .filter(|(n, _)| *n == "Type")
            .map(|(_, v)| v.to_string())
            .collect();
        assert_eq!(types, vec!["\"notify\"".to_owned()]);
        assert!(props.iter().any(|(n, _)| *n == "NotifyAccess"));
        assert!(props.iter().any(|(n, _)| *n == "ExecStart"));
    }
}
