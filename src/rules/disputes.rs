//! The DISPUTE alert: one per new dispute, sent at once (never digested), naming the
//! dispute's id and its fields. Values are plain text here; each channel escapes them (the
//! Telegram channel HTML-escapes and shortens the body first when a message is too long).

use serde_json::Value;

use crate::rules::alert::Severity;
use crate::store::NewAlert;

/// A field value longer than this is cut, so that one huge column (a free-text reason, a
/// JSON blob) cannot push the other fields out of the message.
const MAX_FIELD_CHARS: usize = 300;
/// An id longer than this is cut in the title (the full one is in the body and the store).
const MAX_TITLE_ID_CHARS: usize = 80;

/// The alert for dispute `id` with `fields` in the source's order.
pub fn alert(id: &str, fields: &[(String, Value)]) -> NewAlert {
    let mut lines = vec![format!("id: {}", shorten(id, MAX_FIELD_CHARS))];
    for (name, value) in fields.iter().filter(|(n, _)| n != "id") {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => "—".to_owned(),
            other => other.to_string(),
        };
        lines.push(format!("{name}: {}", shorten(&text, MAX_FIELD_CHARS)));
    }
    NewAlert {
        dedup_key: format!("dispute:{id}"),
        severity: Severity::Dispute,
        source: "disputes".to_owned(),
        kind: "dispute".to_owned(),
        title: format!("New dispute {}", shorten(id, MAX_TITLE_ID_CHARS)),
        value: None,
        threshold: None,
        hint: Some(
            "Open the dispute in the app and answer it; the dashboard lists every dispute."
                .to_owned(),
        ),
        body: Some(lines.join("\n")),
        silenced: false,
    }
}

/// At most `max` characters, cut on a character boundary with an ellipsis and the count of
/// what was left out.
fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    let total = s.chars().count();
    if total <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}… ({} more characters)", total - max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_dispute_its_id_and_fields() {
        let a = alert(
            "42",
            &[
                ("id".into(), json!(42)),
                ("amount".into(), json!("12.50")),
                ("reason".into(), json!("<b>never arrived</b>")),
                ("note".into(), json!(null)),
            ],
        );
        assert_eq!(a.severity, Severity::Dispute);
        assert_eq!(a.dedup_key, "dispute:42");
        assert_eq!(a.title, "New dispute 42");
        let body = a.body.unwrap();
        assert_eq!(
            body,
            "id: 42\namount: 12.50\nreason: <b>never arrived</b>\nnote: —"
        );
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let a = alert("7", &[("reason".into(), json!(long))]);
        let body = a.body.unwrap();
        assert!(body.contains("… (700 more characters)"), "{body}");
        assert!(body.chars().count() < 400);
    }
}
